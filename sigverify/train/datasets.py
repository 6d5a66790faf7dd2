"""Read signature folders and split them by writer.

Layout (``../shared/data`` and a bank's own reference folders alike)::

    <root>/<writer>/genuine/*.png
    <root>/<writer>/forgery/*.png      (optional: skilled forgeries of that writer)

A root may also hold several such datasets (``<root>/<dataset>/<writer>/...``); ``scan_root``
finds them. A folder of loose images is "one writer, all genuine" (a single customer's references).
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from sigverify.errors import DataError
from sigverify.imaging.files import list_images


@dataclass
class Sample:
    path: str
    writer: str  # globally unique: "<dataset>/<writer>"
    genuine: bool
    dataset: str


@dataclass
class SignatureSet:
    samples: list[Sample] = field(default_factory=list)

    @property
    def writers(self) -> list[str]:
        return sorted({s.writer for s in self.samples})

    @property
    def datasets(self) -> list[str]:
        return sorted({s.dataset for s in self.samples})

    def by_writer(self) -> dict[str, dict[str, list[Sample]]]:
        out: dict[str, dict[str, list[Sample]]] = {}
        for s in self.samples:
            d = out.setdefault(s.writer, {"genuine": [], "forgery": []})
            d["genuine" if s.genuine else "forgery"].append(s)
        return out

    def subset(self, writers) -> "SignatureSet":
        ws = set(writers)
        return SignatureSet([s for s in self.samples if s.writer in ws])

    def counts(self) -> dict[str, dict[str, int]]:
        return {w: {k: len(v) for k, v in d.items()} for w, d in self.by_writer().items()}


def _images(folder: Path) -> list[Path]:
    return list_images(folder)


def _is_writer_dir(d: Path) -> bool:
    return (d / "genuine").is_dir()


def scan_dataset(root: str | os.PathLike, dataset: str | None = None) -> SignatureSet:
    """Scan one dataset folder (``<root>/<writer>/{genuine,forgery}``)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    name = dataset or root.name
    samples: list[Sample] = []
    for wdir in sorted(p for p in root.iterdir() if p.is_dir()):
        if not _is_writer_dir(wdir):
            continue
        writer = f"{name}/{wdir.name}"
        for p in _images(wdir / "genuine"):
            samples.append(Sample(str(p), writer, True, name))
        if (wdir / "forgery").is_dir():
            for p in _images(wdir / "forgery"):
                samples.append(Sample(str(p), writer, False, name))
    return SignatureSet(samples)


def scan_root(root: str | os.PathLike) -> SignatureSet:
    """Scan a dataset folder, a folder of datasets, or a folder of one person's loose images."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: no such folder")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    subdirs = sorted(p for p in root.iterdir() if p.is_dir())
    if any(_is_writer_dir(d) for d in subdirs):
        out = scan_dataset(root)
    elif subdirs and any(_is_writer_dir(w) for d in subdirs for w in d.iterdir() if w.is_dir()):
        out = SignatureSet()
        for d in subdirs:
            out.samples.extend(scan_dataset(d).samples)
    elif _images(root):
        out = SignatureSet([Sample(str(p), f"{root.name}/{root.name}", True, root.name) for p in _images(root)])
    else:
        out = SignatureSet()
    if not out.samples:
        raise DataError(
            f"{root}: no signatures found. Expected <writer>/genuine/*.png (and optionally "
            f"<writer>/forgery/*.png), or a folder of one person's signature images"
        )
    return out


@dataclass
class WriterSplit:
    train: list[str]
    val: list[str]
    test: list[str]
    seed: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "WriterSplit":
        return cls(**json.loads(text))

    def save(self, path: str | os.PathLike) -> None:
        from sigverify.atomic import write_text_atomic

        write_text_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "WriterSplit":
        return cls.from_json(Path(path).read_text())


def split_writers(data: SignatureSet, val_frac: float = 0.1, test_frac: float = 0.2, seed: int = 0) -> WriterSplit:
    """Seeded writer-level split, stratified by dataset (each dataset split on its own)."""
    train: list[str] = []
    val: list[str] = []
    test: list[str] = []
    for ds in data.datasets:
        ws = sorted({s.writer for s in data.samples if s.dataset == ds})
        rng = random.Random(f"{seed}/{ds}")
        rng.shuffle(ws)
        n_test = int(round(len(ws) * test_frac)) if test_frac > 0 else 0
        n_val = int(round(len(ws) * val_frac)) if val_frac > 0 else 0
        if len(ws) >= 3:
            n_test = max(n_test, 1 if test_frac > 0 else 0)
            n_val = max(n_val, 1 if val_frac > 0 else 0)
        test += ws[:n_test]
        val += ws[n_test : n_test + n_val]
        train += ws[n_test + n_val :]
    return WriterSplit(sorted(train), sorted(val), sorted(test), seed)


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
