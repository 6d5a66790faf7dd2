"""Batched embedding of preprocessed signatures on CPU or GPU (inference mode)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from sigverify.errors import Cancelled, ModelError, SigverifyError
from sigverify.imaging.preprocess import Preprocessed, preprocess_file
from sigverify.model.weights import LoadedModel, load_model, random_model


def resolve_device(device: str | None = None) -> torch.device:
    """'auto' (default) picks CUDA when present, else CPU; 'cpu', 'cuda', 'cuda:1' force one."""
    d = (device or os.environ.get("SIGVERIFY_DEVICE") or "auto").lower()
    if d == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if d.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError("a GPU (CUDA) was requested but none is available; use --device cpu")
    try:
        return torch.device(d)
    except RuntimeError as exc:
        raise ModelError(f"unknown device {device!r} (use auto, cpu or cuda)") from exc


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"GPU ({torch.cuda.get_device_name(device)})"
    return f"CPU ({torch.get_num_threads()} threads)"


def to_batch(images: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    arr = np.stack(images).astype(np.float32) / 255.0
    t = torch.from_numpy(arr[:, None])
    return t.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)


@dataclass
class FileEmbedding:
    path: str
    embedding: np.ndarray | None
    preprocessed: Preprocessed | None
    error: str | None = None


class Embedder:
    """Wraps a loaded model: preprocessing parameters come from its card."""

    def __init__(self, model: LoadedModel, device: str | torch.device | None = None, batch_size: int = 64):
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.model = model
        self.net = model.network.to(self.device).eval()
        self.net = self.net.to(memory_format=torch.channels_last)
        self.card = model.card
        self.preprocess_config = self.card.preprocess_config
        self.batch_size = batch_size

    @classmethod
    def from_path(cls, path: str | os.PathLike | None, device: str | None = None) -> "Embedder":
        return cls(open_model(path), device)

    def preprocess(self, path: str | os.PathLike, keep_stages: bool = False) -> Preprocessed:
        return preprocess_file(path, self.preprocess_config, keep_stages)

    @torch.inference_mode()
    def embed_arrays(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """images: (H, W) uint8 network inputs (ink 255). Returns (N, D) float32 unit vectors."""
        if len(images) == 0:
            return np.zeros((0, self.card.embedding_dim), np.float32)
        out = []
        for i in range(0, len(images), self.batch_size):
            x = to_batch(images[i:i + self.batch_size], self.device)
            out.append(self.net(x).float().cpu().numpy())
        return np.concatenate(out)

    def embed_files(self, paths: Sequence[str | os.PathLike], keep_stages: bool = False,
                    progress: Callable[[float, str], None] | None = None,
                    should_stop: Callable[[], bool] | None = None) -> list[FileEmbedding]:
        """Preprocess and embed many files; a bad file gets an error entry, the rest go on."""
        results: list[FileEmbedding] = []
        n = len(paths)
        for i, p in enumerate(paths):
            if should_stop and should_stop():
                raise Cancelled("cancelled")
            try:
                pre = self.preprocess(p, keep_stages)
                results.append(FileEmbedding(str(p), None, pre))
            except SigverifyError as exc:
                results.append(FileEmbedding(str(p), None, None, str(exc)))
            if progress:
                progress(0.9 * (i + 1) / max(n, 1), f"preprocessed {Path(p).name}")
        ok = [r for r in results if r.preprocessed is not None]
        for j in range(0, len(ok), self.batch_size):
            if should_stop and should_stop():
                raise Cancelled("cancelled")
            chunk = ok[j:j + self.batch_size]
            embs = self.embed_arrays([r.preprocessed.input for r in chunk])
            for r, e in zip(chunk, embs):
                r.embedding = e
            if progress:
                progress(0.9 + 0.1 * min(1.0, (j + len(chunk)) / max(len(ok), 1)), "embedded")
        return results


def open_model(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> LoadedModel:
    """Load ``path``; with None, the shipped default model, or random weights if none is shipped."""
    from sigverify.paths import default_model_path

    if path:
        return load_model(path, device)
    p = default_model_path()
    if p.exists():
        return load_model(p, device)
    return random_model(device=device)
