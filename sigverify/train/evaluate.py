"""Writer-independent evaluation exactly as ../shared/EVALUATION.md defines it.

Per writer W (genuine set G, skilled forgeries F):
- positives: every unordered pair of two different images of G (byte-identical files count once)
- skilled negatives: every (g, f), g in G, f in F
- random negatives: (g, h), h a genuine image of another writer, seeded sample of |positives| pairs
Pairs of all writers are pooled; score = distance (lower = same writer).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

from sigverify.metrics import EER, auc, eer, roc_curve  # noqa: F401  (EER, roc_curve: re-exported)
from sigverify.verify.distances import paired_distances


@dataclass
class PairSet:
    pos: list[tuple[int, int]] = field(default_factory=list)
    skilled: list[tuple[int, int]] = field(default_factory=list)
    random: list[tuple[int, int]] = field(default_factory=list)


def make_pairs(writers: np.ndarray, genuine: np.ndarray, digests: np.ndarray | None = None, seed: int = 0) -> PairSet:
    """Index pairs over arrays of per-image writer ids / genuine flags, per EVALUATION.md."""
    rng = random.Random(seed)
    ps = PairSet()
    idx_by_writer: dict[str, tuple[list[int], list[int]]] = {}
    for i, (w, g) in enumerate(zip(writers, genuine)):
        idx_by_writer.setdefault(str(w), ([], []))[0 if g else 1].append(i)
    all_genuine = [i for i, g in enumerate(genuine) if g]
    for w in sorted(idx_by_writer):
        G, F = idx_by_writer[w]
        if digests is not None:  # byte-identical files count once
            seen, uniq = set(), []
            for i in G:
                if digests[i] not in seen:
                    seen.add(digests[i])
                    uniq.append(i)
            G = uniq
        pos = [(G[a], G[b]) for a in range(len(G)) for b in range(a + 1, len(G))]
        ps.pos += pos
        ps.skilled += [(g, f) for g in G for f in F]
        others = [i for i in all_genuine if str(writers[i]) != w]
        if others and G:
            for _ in range(len(pos)):
                ps.random.append((rng.choice(G), rng.choice(others)))
    return ps


def pair_distances(emb: np.ndarray, pairs: list[tuple[int, int]], metric: str) -> np.ndarray:
    if not pairs:
        return np.zeros(0)
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    return paired_distances(emb[a], emb[b], metric)


@dataclass
class EvalResult:
    eer: float
    eer_random: float
    auc: float
    auc_random: float
    far: float | None
    frr: float | None
    far_random: float | None
    threshold: float | None
    eer_threshold: float
    writers: int
    pairs: dict
    metric: str
    distances: dict = field(default_factory=dict, repr=False)  # pos / skilled / random arrays (for curves)

    def to_dict(self) -> dict:
        return {
            "eer": self.eer,
            "eer_random": self.eer_random,
            "auc": self.auc,
            "auc_random": self.auc_random,
            "far": self.far,
            "frr": self.frr,
            "far_random": self.far_random,
            "threshold": self.threshold,
            "eer_threshold": self.eer_threshold,
            "writers": self.writers,
            "pairs": self.pairs,
            "metric": self.metric,
        }


def evaluate_embeddings(
    emb: np.ndarray,
    writers: np.ndarray,
    genuine: np.ndarray,
    digests: np.ndarray | None = None,
    metric: str = "euclidean",
    threshold: float | None = None,
    seed: int = 0,
) -> EvalResult:
    ps = make_pairs(writers, genuine, digests, seed)
    pos = pair_distances(emb, ps.pos, metric)
    sk = pair_distances(emb, ps.skilled, metric)
    rd = pair_distances(emb, ps.random, metric)
    e_s, e_r = eer(pos, sk), eer(pos, rd)
    far = frr = far_r = None
    if threshold is not None:
        far = float((sk <= threshold).mean()) if len(sk) else None
        far_r = float((rd <= threshold).mean()) if len(rd) else None
        frr = float((pos > threshold).mean()) if len(pos) else None
    return EvalResult(
        e_s.eer,
        e_r.eer,
        auc(pos, sk),
        auc(pos, rd),
        far,
        frr,
        far_r,
        threshold,
        e_s.threshold,
        len(set(map(str, writers))),
        {"positive": len(pos), "skilled": len(sk), "random": len(rd)},
        metric,
        {"pos": pos, "skilled": sk, "random": rd},
    )


def save_curves(results: dict[str, "EvalResult"], out_prefix: str, title: str = "") -> list[str]:
    """ROC and DET curves (skilled and random negatives) for one or more results, as PNG files.

    ``results`` maps a label (e.g. "base", "fine-tuned") to an EvalResult. Returns the paths written.
    """
    import matplotlib

    matplotlib.use("Agg")
    from statistics import NormalDist

    from matplotlib.figure import Figure

    from sigverify.atomic import atomic_path

    nd = NormalDist()

    def probit(p):
        return np.array([nd.inv_cdf(min(max(x, 1e-4), 1 - 1e-4)) for x in p])

    paths = []
    for kind in ("roc", "det"):
        fig = Figure(figsize=(5.5, 5), dpi=110)
        ax = fig.add_subplot(111)
        for label, r in results.items():
            for neg_key, style in (("skilled", "-"), ("random", "--")):
                pos, neg = r.distances.get("pos"), r.distances.get(neg_key)
                if pos is None or neg is None or not len(pos) or not len(neg):
                    continue
                _, far, frr = roc_curve(pos, neg)
                e = r.eer if neg_key == "skilled" else r.eer_random
                name = f"{label} {neg_key} (EER {100 * e:.1f}%)"
                if kind == "roc":
                    ax.plot(far, 1 - frr, style, label=name)
                else:
                    ax.plot(probit(far), probit(frr), style, label=name)
        if kind == "roc":
            ax.plot([0, 1], [0, 1], ":", color="grey")
            ax.set_xlabel("False accept rate")
            ax.set_ylabel("True accept rate")
        else:
            ticks = [0.001, 0.01, 0.05, 0.2, 0.5]
            ax.set_xticks(probit(ticks), [f"{100 * t:g}%" for t in ticks])
            ax.set_yticks(probit(ticks), [f"{100 * t:g}%" for t in ticks])
            ax.set_xlabel("False accept rate")
            ax.set_ylabel("False reject rate")
        ax.set_title(f"{kind.upper()} {title}".strip())
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right" if kind == "roc" else "upper right")
        fig.tight_layout()
        path = f"{out_prefix}_{kind}.png"
        with atomic_path(path) as tmp:
            fig.savefig(str(tmp), format="png")
        paths.append(path)
    return paths
