"""Which writer-dependent decision transfers? Measured on embeddings of ../shared/data.

For a model (default: the shipped one) this embeds every collection once, then for each candidate
decision score fits thresholds on *validation* writers (of the collections the thresholds may see)
and reports the clerk's protocol (K specimens) on *test* writers of every collection, plus a
leave-one-collection-out run of the threshold fit (fit on the validation writers of the other
collections, report on the test writers of the one left out).

    python benchmarks/decision_study.py --data ../shared/data --split runs/split5.json --cache-dir cache

Candidates: ``mean`` (mean distance / bounded per-person scale: the shipped rule), ``min``, ``cohort``
(Z-normalised against a cohort of training writers' genuine embeddings), ``spread`` (mean distance over
the specimens' own spread, unbounded), ``cohort_spread`` (both), ``lda[_spread]:REG[:MIX]`` (exemplar-LDA
against the cohort: the shipped ``writer`` policy is ``lda_spread:0.3:0.5``), ``logreg[_spread]:LAMBDA[:MIX]``
(a per-customer logistic regression, specimens vs cohort, fitted at decision time).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sigverify.model.embedder import open_model, resolve_device  # noqa: E402
from sigverify.train.clerk import clerk_protocol, clerk_scores  # noqa: E402
from sigverify.train.datasets import WriterSplit, scan_root  # noqa: E402
from sigverify.train.identities import name_identities  # noqa: E402
from sigverify.train.pipeline import cached_set  # noqa: E402
from sigverify.train.trainer import embed_cached  # noqa: E402
from sigverify.verify.calibration import fit_calibration  # noqa: E402
from sigverify.verify.distances import pairwise_distances  # noqa: E402
from sigverify.verify.reference import SCALE_LIMITS  # noqa: E402


def make_score(policy: str, cohort: np.ndarray, ref_spread: float):
    reg, mix = 0.1, 0.5
    if ":" in policy:  # lda:REG or lda_spread:REG:MIX
        parts = policy.split(":")
        policy, reg = parts[0], float(parts[1])
        mix = float(parts[2]) if len(parts) > 2 else mix

    def score(q, refs):
        d = pairwise_distances(q[None], refs)[0]
        k = len(refs)
        mean = float(d.mean())
        spread = None
        if k >= 2:
            rr = pairwise_distances(refs, refs)
            spread = float(rr[np.triu_indices(k, 1)].mean())
        if policy == "mean":
            s = 1.0
            if k >= 3:
                s = float(np.clip(spread / ref_spread, *SCALE_LIMITS))
            return mean / s
        if policy == "min":
            s = 1.0
            if k >= 3:
                s = float(np.clip(spread / ref_spread, *SCALE_LIMITS))
            return float(d.min()) / s
        if policy in ("cohort", "cohort_spread"):
            dc = pairwise_distances(cohort, refs).mean(1)
            z = (mean - dc.mean()) / (dc.std() + 1e-6)
            if policy == "cohort_spread" and k >= 3:
                z = z / float(np.clip(spread / ref_spread, *SCALE_LIMITS))
            return float(z)
        if policy == "tnorm":
            dc = pairwise_distances(q[None], cohort)[0]
            return float((mean - dc.mean()) / (dc.std() + 1e-6))
        if policy == "spread":
            return mean / (spread if spread else ref_spread) * ref_spread
        if policy == "spread_half":
            return mean / np.sqrt((spread if spread else ref_spread) / ref_spread)
        if policy in ("logreg", "logreg_spread"):
            key = refs.tobytes()
            if key not in memo:  # one fit per customer's specimen set, as the app would keep it per case
                memo.clear()
                w = _logreg(refs, cohort, reg)[0]
                memo[key] = w, float((cohort @ w).mean()), float((refs @ w).mean())
            w, a, b = memo[key]
            s = 1.0 - (float(w @ q) - a) / max(b - a, 1e-9)
            if policy == "logreg_spread":
                s = (1 - mix) * s + mix * mean / (spread if spread else ref_spread) * ref_spread
            return s
        if policy in ("lda", "lda_spread"):
            mu_r = refs.mean(0)
            w = lda_inv @ (mu_r - mu_c)
            a, b = float(w @ mu_c), float(w @ mu_r)
            s = 1.0 - (float(w @ q) - a) / max(b - a, 1e-9)  # 0 at the specimens' mean, 1 at the cohort's
            if policy == "lda_spread":
                s = (1 - mix) * s + mix * mean / (spread if spread else ref_spread) * ref_spread
            return s
        raise ValueError(policy)

    memo: dict = {}
    mu_c = cohort.mean(0)
    cov = np.cov(cohort.T)
    lda_inv = np.linalg.inv(cov + reg * np.trace(cov) / len(cov) * np.eye(len(cov)))
    return score


def _logreg(pos: np.ndarray, neg: np.ndarray, lam: float, iters: int = 8) -> tuple[np.ndarray, float]:
    """Class-balanced L2 logistic regression, specimens (1) vs cohort (0), by Newton steps (the
    writer-dependent classifier of the SigNet-features recipe, with logistic loss in place of the SVM's hinge)."""
    x = np.vstack([pos, neg]).astype(np.float64)
    x = np.hstack([x, np.ones((len(x), 1))])
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    sw = np.r_[np.full(len(pos), 0.5 / len(pos)), np.full(len(neg), 0.5 / len(neg))]
    w = np.zeros(x.shape[1])
    r = np.full(x.shape[1], lam)
    r[-1] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        g = x.T @ (sw * (p - y)) + r * w
        h = (x * (sw * p * (1 - p))[:, None]).T @ x + np.diag(r + 1e-9)
        w -= np.linalg.solve(h, g)
    return w[:-1], float(w[-1])


POLICIES = (
    "mean",
    "min",
    "cohort",
    "cohort_spread",
    "tnorm",
    "spread",
    "spread_half",
    "lda",
    "lda_spread",
    "logreg",
    "logreg_spread",
)


def fit(score_fn, cs_emb, cs, k_fit=(3, 5), far=0.10, frr=0.10):
    pos, sk, rd = [], [], []
    for k in k_fit:
        sc, _, _ = clerk_scores(cs_emb, cs.writers, cs.genuine, lambda q, r: ("", score_fn(q, r)), k, cs.digests)
        pos.append(sc["genuine"])
        sk.append(sc["skilled"])
        rd.append(sc["random"])
    return fit_calibration(np.concatenate(pos), np.concatenate(sk), np.concatenate(rd), far, frr)


def decide_with(score_fn, cal):
    def decide(q, refs):
        s = score_fn(q, refs)
        return ("genuine" if s <= cal.accept else "forgery" if s > cal.reject else "refer"), s

    return decide


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--split", default="runs/split5.json")
    ap.add_argument("--model")
    ap.add_argument("--cache-dir", default="cache")
    ap.add_argument("--cohort", type=int, default=400)
    ap.add_argument(
        "--cohort-datasets", nargs="*", help="collections the cohort may come from (default: the model's training sets)"
    )
    ap.add_argument("--fit-datasets", nargs="*", help="collections whose validation writers fit thresholds (default: all)")
    ap.add_argument("--policies", nargs="*", default=list(POLICIES))
    ap.add_argument("--out", default="runs/decision_study.json")
    ap.add_argument("--far", type=float, default=0.10, help="skilled-forgery FAR target of the accept threshold")
    ap.add_argument("--frr", type=float, default=0.10, help="genuine FRR target of the reject threshold")
    ap.add_argument(
        "--report-part",
        default="test",
        choices=["val", "test"],
        help="writers reported: choose on val (thresholds then fitted on val too), report on test",
    )
    ap.add_argument("--emb-cache", help="reuse/save the embeddings of every image here (.npy)")
    a = ap.parse_args()
    t0 = time.time()
    dev = resolve_device("cpu")
    model = open_model(a.model, dev)
    data = scan_root(a.data)
    cs = cached_set(data, model.card.preprocess_config, a.cache_dir)
    if a.emb_cache and Path(a.emb_cache).exists():
        emb_all = np.load(a.emb_cache)
    else:
        emb_all = embed_cached(model.network, cs.images, dev)
        if a.emb_cache:
            np.save(a.emb_cache, emb_all)
    print(f"embedded {len(emb_all)} in {time.time() - t0:.0f}s", flush=True)
    split = WriterSplit.load(a.split)
    train_ds = a.cohort_datasets or model.card.training.get("datasets") or sorted(set(map(str, cs.datasets)))

    def part(writers):
        m = np.isin(cs.writers, list(writers))
        sub = cs.select(m)
        sub_emb = emb_all[m]
        rel = name_identities(sub, 8, 1)
        return rel, sub_emb[sub.rows_of(rel.paths)]

    trn_mask = np.isin(cs.writers, split.train) & cs.genuine & np.isin(cs.datasets, train_ds)
    rng = np.random.default_rng(0)
    idx = np.nonzero(trn_mask)[0]
    per_ds = {d: idx[cs.datasets[idx] == d] for d in sorted(set(cs.datasets[idx]))}
    take = np.concatenate([rng.choice(v, min(len(v), a.cohort // len(per_ds)), replace=False) for v in per_ds.values()])
    cohort = emb_all[take]
    cal0 = model.card.metric_calibration("euclidean")
    val, val_emb = part(split.val)
    tst, tst_emb = part(split.test if a.report_part == "test" else split.val)
    dss = sorted(set(map(str, cs.datasets)))
    fit_ds = a.fit_datasets or dss
    out = {"model": model.model_id, "cohort": {"n": len(cohort), "datasets": list(per_ds)}, "policies": {}}
    for pol in a.policies:
        fn = make_score(pol, cohort, cal0.ref_spread)
        vm = np.isin(val.datasets, fit_ds)
        cal = fit(fn, val_emb[vm], val.select(vm), far=a.far, frr=a.frr)
        res = {"thresholds": {"accept": cal.accept, "reject": cal.reject}, "test": {}, "loco": {}}
        for ds in dss:
            m = tst.datasets == ds
            res["test"][ds] = clerk_protocol(
                tst_emb[m], tst.writers[m], tst.genuine[m], decide_with(fn, cal), (1, 3, 5), tst.digests[m]
            )
            vm2 = (val.datasets != ds) & np.isin(val.datasets, fit_ds)
            cal_l = fit(fn, val_emb[vm2], val.select(vm2), far=a.far, frr=a.frr)
            res["loco"][ds] = clerk_protocol(
                tst_emb[m], tst.writers[m], tst.genuine[m], decide_with(fn, cal_l), (5,), tst.digests[m]
            )
        out["policies"][pol] = res
        print(f"== {pol}  accept {cal.accept:.3f} reject {cal.reject:.3f}", flush=True)
        for ds in dss:
            r5 = res["test"][ds].get("5") or res["test"][ds].get("3") or {}
            l5 = res["loco"][ds].get("5", {})
            f = lambda x: "  -  " if x is None else f"{100 * x:5.1f}"  # noqa: E731
            print(
                f"  {ds:18s} K=5 EER {f(r5.get('eer'))} rnd {f(r5.get('eer_random'))} | gen acc {f(r5.get('genuine_accepted'))} "
                f"ref {f(r5.get('genuine_referred'))} "
                f"rej {f(r5.get('genuine_rejected'))} | skl acc {f(r5.get('skilled_accepted'))} | LOCO gen acc "
                f"{f(l5.get('genuine_accepted'))} rej {f(l5.get('genuine_rejected'))} skl acc {f(l5.get('skilled_accepted'))}",
                flush=True,
            )
    Path(a.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {a.out} in {time.time() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
