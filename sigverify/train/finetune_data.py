"""Fine-tuning, step 1: what a reference folder holds and what is wrong with it (the wizard's first page,
``sigverify-cli finetune``'s data check), and the writer split into training and held-out writers. No Qt."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sigverify.errors import DataError
from sigverify.progress import Progress, ShouldStop

MIN_GENUINE_PER_WRITER = 4  # below this the wizard warns: too few references to learn a writer
MIN_VAL_WRITERS = 2  # a held-out group needs 2+ writers (random forgeries come from other writers)
MIN_TRAIN_WRITERS = 2


@dataclass
class DataReport:
    """What a reference folder holds, and what is wrong with it (shown before fine-tuning)."""

    folder: str
    data: object  # SignatureSet
    cached: object  # CachedSet (preprocessed with ``preprocess``)
    preprocess: dict
    counts: dict[str, dict[str, int]]  # writer -> {"genuine", "forgery", "usable_genuine"}
    warnings: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    blank: list[str] = field(default_factory=list)
    duplicates: list[list[str]] = field(default_factory=list)
    few_genuine: list[str] = field(default_factory=list)

    @property
    def n_writers(self) -> int:
        return len(self.counts)

    @property
    def n_images(self) -> int:
        return int(len(self.cached.images))

    @property
    def trainable_writers(self) -> int:
        return sum(1 for c in self.counts.values() if c["usable_genuine"] >= 2)

    @property
    def ok(self) -> bool:
        return self.trainable_writers >= MIN_TRAIN_WRITERS

    def summary(self) -> dict:
        g = int(self.cached.genuine.sum()) if len(self.cached.genuine) else 0
        return {
            "folder": Path(self.folder).name,
            "writers": self.n_writers,
            "images": self.n_images,
            "genuine": g,
            "forgeries": self.n_images - g,
            "unreadable": len(self.unreadable),
            "blank": len(self.blank),
            "duplicate_groups": len(self.duplicates),
        }


def writer_label(writer: str) -> str:
    """'dataset/writer' -> 'writer' for display."""
    return writer.split("/", 1)[1] if "/" in writer else writer


def check_data(
    folder,
    preprocess=None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    workers: int = 0,
    name: str | None = None,
) -> DataReport:
    """Scan and preprocess a reference folder (or a ``SignatureSet``); list per-writer counts and the problems a clerk should
    fix first: writers with fewer than 4 genuine images, unreadable files, blank scans and
    byte-identical duplicate files."""
    from sigverify.imaging.preprocess import PreprocessConfig
    from sigverify.train.cache import build_cache
    from sigverify.train.datasets import SignatureSet, scan_root

    cfg = preprocess if preprocess is not None else PreprocessConfig()
    if isinstance(folder, SignatureSet):  # an already scanned set (benchmarks: a subset of writers)
        data, folder = folder, name or "selected-writers"
        if not data.samples:
            raise DataError("no signatures selected")
    else:
        data = scan_root(folder)
    say = (lambda f, m: progress(f, m, {})) if progress else None
    cached = build_cache(data, cfg, workers, say, should_stop)
    blank = [p for p, e in cached.failed if "no signature" in e or "blank" in e or "empty image" in e]
    unreadable = [(p, e) for p, e in cached.failed if p not in set(blank)]
    by_digest: dict[str, list[str]] = {}
    for p, d in zip(cached.paths, cached.digests):
        by_digest.setdefault(str(d), []).append(str(p))
    dups = [sorted(v) for v in by_digest.values() if len(v) > 1]
    counts: dict[str, dict[str, int]] = {}
    for w, c in data.counts().items():
        m = (cached.writers == w) & cached.genuine
        usable = len(set(map(str, cached.digests[m])))
        counts[w] = {"genuine": c.get("genuine", 0), "forgery": c.get("forgery", 0), "usable_genuine": usable}
    few = sorted(w for w, c in counts.items() if c["usable_genuine"] < MIN_GENUINE_PER_WRITER)
    warnings = []
    if few:
        names = ", ".join(writer_label(w) for w in few[:8]) + (" ..." if len(few) > 8 else "")
        warnings.append(
            f"{len(few)} writer(s) have fewer than {MIN_GENUINE_PER_WRITER} usable genuine signatures "
            f"({names}); they add little and may be skipped"
        )
    if unreadable:
        warnings.append(
            f"{len(unreadable)} file(s) could not be read and will be skipped "
            f"(e.g. {Path(unreadable[0][0]).name}: {unreadable[0][1]})"
        )
    if blank:
        warnings.append(f"{len(blank)} scan(s) look blank (no ink found) and will be skipped (e.g. {Path(blank[0]).name})")
    if dups:
        warnings.append(
            f"{sum(len(d) for d in dups)} files are byte-identical copies in {len(dups)} group(s) "
            f"(e.g. {', '.join(Path(p).name for p in dups[0][:3])}); each counts once as a reference"
        )
    rep = DataReport(str(folder), data, cached, cfg.to_dict(), counts, warnings, unreadable, blank, dups, few)
    if not rep.ok:
        rep.warnings.insert(
            0,
            f"fine-tuning needs at least {MIN_TRAIN_WRITERS} writers with 2 or more genuine "
            f"signatures each; this folder has {rep.trainable_writers}",
        )
    return rep


def split_writers(cached, val_frac: float, seed: int) -> tuple[list[str], list[str]]:
    """(training writers, held-out writers): ``val_frac`` of the writers with 2+ distinct genuine images,
    seeded; no held-out group ([]) when there are too few writers for both sides."""
    import random

    writers = sorted({str(w) for w, g in zip(cached.writers, cached.genuine) if g})
    usable = [w for w in writers if len(set(map(str, cached.digests[(cached.writers == w) & cached.genuine]))) >= 2]
    rng = random.Random(f"finetune/{seed}")
    # identities "writer#name" (train/identities.py: one writer signing several names) stay together:
    # a held-out identity whose hand is also in training would flatter the validation figures
    hands = sorted({w.split("#", 1)[0] for w in usable})
    if len(hands) == len(usable):
        ws = list(usable)
        rng.shuffle(ws)
        n_val = int(round(len(ws) * val_frac)) if val_frac > 0 else 0
        if val_frac > 0:
            n_val = max(n_val, MIN_VAL_WRITERS)
        if n_val < MIN_VAL_WRITERS or len(ws) - n_val < MIN_TRAIN_WRITERS:
            return sorted(ws), []
        return sorted(ws[n_val:]), sorted(ws[:n_val])
    rng.shuffle(hands)
    n_val = max(int(round(len(hands) * val_frac)), 1) if val_frac > 0 else 0
    val_hands = set(hands[:n_val])
    tr = sorted(w for w in usable if w.split("#", 1)[0] not in val_hands)
    va = sorted(w for w in usable if w.split("#", 1)[0] in val_hands)
    if len(va) < MIN_VAL_WRITERS or len(tr) < MIN_TRAIN_WRITERS or n_val == len(hands):
        return sorted(usable), []
    return tr, va


__all__ = [
    "DataReport",
    "check_data",
    "split_writers",
    "writer_label",
    "MIN_GENUINE_PER_WRITER",
    "MIN_VAL_WRITERS",
    "MIN_TRAIN_WRITERS",
]
