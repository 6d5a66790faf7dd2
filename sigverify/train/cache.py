"""Preprocess a signature set once and keep it as uint8 arrays (``np.savez_compressed``).

Training reads these instead of re-decoding scans every epoch. Files that fail to load are listed,
not fatal.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from sigverify.errors import Cancelled, SigverifyError
from sigverify.hashing import sha256_bytes
from sigverify.imaging.preprocess import PreprocessConfig, preprocess_file
from sigverify.progress import Progress
from sigverify.train.datasets import SignatureSet


@dataclass
class CachedSet:
    images: np.ndarray  # (N, H, W) uint8, ink = 255
    writers: np.ndarray  # (N,) str
    genuine: np.ndarray  # (N,) bool
    datasets: np.ndarray  # (N,) str
    paths: np.ndarray  # (N,) str
    digests: np.ndarray  # (N,) str sha256 of the file bytes (for de-duplication of pairs)
    failed: list[tuple[str, str]]

    def save(self, path: str | os.PathLike) -> None:
        from sigverify.atomic import atomic_path

        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(
                    fh,
                    images=self.images,
                    writers=self.writers,
                    genuine=self.genuine,
                    datasets=self.datasets,
                    paths=self.paths,
                    digests=self.digests,
                )

    @classmethod
    def load(cls, path: str | os.PathLike) -> "CachedSet":
        z = np.load(path, allow_pickle=False)
        return cls(z["images"], z["writers"], z["genuine"], z["datasets"], z["paths"], z["digests"], [])

    def select(self, mask: np.ndarray) -> "CachedSet":
        return CachedSet(
            self.images[mask],
            self.writers[mask],
            self.genuine[mask],
            self.datasets[mask],
            self.paths[mask],
            self.digests[mask],
            self.failed,
        )

    def rows_of(self, paths) -> np.ndarray:
        """Row indices of ``paths`` in this set (a path may repeat: relabelled sets duplicate rows)."""
        pos = {p: i for i, p in enumerate(self.paths)}
        return np.array([pos[p] for p in paths], dtype=int)

    def of_writers(self, writers) -> "CachedSet":
        return self.select(np.isin(self.writers, list(writers)))


def _one(args):
    path, cfg, aug_seed = args

    try:
        data = Path(path).read_bytes()
        if aug_seed is None:
            pre = preprocess_file(path, cfg)
        else:
            import zlib

            import cv2

            from sigverify.imaging.augment import augment_scan
            from sigverify.imaging.load import load_image
            from sigverify.imaging.preprocess import preprocess

            rng = np.random.default_rng([aug_seed, zlib.crc32(str(path).encode())])
            grey = cv2.cvtColor(load_image(path), cv2.COLOR_RGB2GRAY)
            pre = preprocess(augment_scan(grey, rng), cfg)
        return pre.input, sha256_bytes(data), None
    except SigverifyError as exc:
        return None, None, str(exc)
    except Exception as exc:  # noqa: BLE001 - a broken file must not stop a 10k-image run
        return None, None, f"{type(exc).__name__}: {exc}"


def build_cache(
    data: SignatureSet,
    cfg: PreprocessConfig | None = None,
    workers: int = 0,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    augment_seed: int | None = None,
) -> CachedSet:
    """Preprocess every sample. With ``augment_seed``, each raw scan first gets a seeded messy-scan
    augmentation (``augment_scan``), so the cache holds what preprocessing makes of bad scans."""
    cfg = cfg or PreprocessConfig()
    jobs = [(s.path, cfg, augment_seed) for s in data.samples]
    results = []
    n = len(jobs)
    if workers and workers > 1 and n > 64:
        with ProcessPoolExecutor(workers) as ex:
            for i, r in enumerate(ex.map(_one, jobs, chunksize=32)):
                results.append(r)
                if should_stop and should_stop():
                    ex.shutdown(cancel_futures=True)
                    raise Cancelled("cancelled")
                if progress and (i % 50 == 0 or i == n - 1):
                    progress((i + 1) / n, f"preprocessed {i + 1}/{n}")
    else:
        for i, job in enumerate(jobs):
            if should_stop and should_stop():
                raise Cancelled("cancelled")
            results.append(_one(job))
            if progress and (i % 10 == 0 or i == n - 1):
                progress((i + 1) / n, f"preprocessed {i + 1}/{n}")
    ok = [i for i, r in enumerate(results) if r[0] is not None]
    failed = [(data.samples[i].path, results[i][2]) for i in range(n) if results[i][0] is None]
    H, W = cfg.input_height, cfg.input_width
    images = np.stack([results[i][0] for i in ok]) if ok else np.zeros((0, H, W), np.uint8)
    s = data.samples
    return CachedSet(
        images=images,
        writers=np.array([s[i].writer for i in ok], dtype=str),
        genuine=np.array([s[i].genuine for i in ok], dtype=bool),
        datasets=np.array([s[i].dataset for i in ok], dtype=str),
        paths=np.array([s[i].path for i in ok], dtype=str),
        digests=np.array([results[i][1] for i in ok], dtype=str),
        failed=failed,
    )
