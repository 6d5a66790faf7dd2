"""What every embedder backend shares, without importing torch: preprocessing files in a small thread
pool and ``embed_files`` on top of a backend's ``embed_arrays``.

``sigverify.model.embedder.Embedder`` (PyTorch, CPU or GPU, also used for training) and
``sigverify.model.onnx_backend.OnnxEmbedder`` (onnxruntime, CPU, no torch: the lean verify-only
runtime) both derive from ``EmbedderBase``.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from sigverify.errors import Cancelled, SigverifyError
from sigverify.imaging.preprocess import Preprocessed, preprocess_file
from sigverify.progress import Progress, ShouldStop

_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def preprocess_pool() -> ThreadPoolExecutor:
    """A small shared thread pool for preprocessing (OpenCV and Pillow release the GIL)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)), thread_name_prefix="sigverify-pre")
        return _POOL


@dataclass
class FileEmbedding:
    path: str
    embedding: np.ndarray | None
    preprocessed: Preprocessed | None
    error: str | None = None


class EmbedderBase:
    """Needs ``self.preprocess_config``, ``self.batch_size`` and ``embed_arrays(images) -> (N, D)``."""

    preprocess_config = None
    batch_size: int = 64

    def embed_arrays(self, images: Sequence[np.ndarray]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def preprocess(self, path: str | os.PathLike, keep_stages: bool = False) -> Preprocessed:
        return preprocess_file(path, self.preprocess_config, keep_stages)

    def embed_files(
        self,
        paths: Sequence[str | os.PathLike],
        keep_stages: bool = False,
        progress: Progress | None = None,
        should_stop: ShouldStop | None = None,
    ) -> list[FileEmbedding]:
        """Preprocess and embed many files; a bad file gets an error entry, the rest go on."""
        n = len(paths)

        def one(p) -> FileEmbedding:
            try:
                return FileEmbedding(str(p), None, self.preprocess(p, keep_stages))
            except SigverifyError as exc:
                return FileEmbedding(str(p), None, None, str(exc))

        results: list[FileEmbedding] = []
        pool = preprocess_pool()
        window = 2 * pool._max_workers
        # preprocess in parallel (a bounded window keeps cancel prompt), results kept in input order
        for start in range(0, n, window):
            if should_stop and should_stop():
                raise Cancelled("cancelled")
            chunk = list(paths[start : start + window])
            results += list(pool.map(one, chunk)) if len(chunk) > 1 else [one(chunk[0])]
            if progress:
                progress(0.9 * len(results) / max(n, 1), f"preprocessed {Path(chunk[-1]).name}")
        ok = [r for r in results if r.preprocessed is not None]
        for j in range(0, len(ok), self.batch_size):
            if should_stop and should_stop():
                raise Cancelled("cancelled")
            chunk = ok[j : j + self.batch_size]
            embs = self.embed_arrays([r.preprocessed.input for r in chunk])
            for r, e in zip(chunk, embs):
                r.embedding = e
            if progress:
                progress(0.9 + 0.1 * min(1.0, (j + len(chunk)) / max(len(ok), 1)), "embedded")
        return results


__all__ = ["EmbedderBase", "FileEmbedding", "preprocess_pool"]
