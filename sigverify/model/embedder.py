"""Batched embedding of preprocessed signatures on CPU or GPU (inference mode)."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch
from torch import nn

from sigverify.errors import DeviceUnavailableError, ModelError
from sigverify.model.base import EmbedderBase, FileEmbedding, preprocess_pool  # noqa: F401  (re-exported)
from sigverify.model.weights import LoadedModel, load_model, random_model


def resolve_device(device: str | None = None) -> torch.device:
    """'auto' (default) picks CUDA when present, else CPU; 'cpu', 'cuda', 'cuda:1' force one."""
    d = (device or os.environ.get("SIGVERIFY_DEVICE") or "auto").lower()
    if d == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if d.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceUnavailableError("a GPU (CUDA) was requested but none is available; use --device cpu", d)
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


def _fold_sequential(seq: nn.Sequential) -> nn.Sequential:
    """Copy of ``seq`` with each Conv2d+BatchNorm2d / Linear+BatchNorm1d pair folded into one layer
    (eval-mode BatchNorm is an affine map, so the fold is exact up to float rounding) and Dropout
    (a no-op in eval mode) dropped."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

    mods = list(seq)
    out: list[nn.Module] = []
    i = 0
    while i < len(mods):
        m = mods[i]
        nxt = mods[i + 1] if i + 1 < len(mods) else None
        if isinstance(m, nn.Sequential):
            out.append(_fold_sequential(m))
        elif isinstance(m, nn.Conv2d) and isinstance(nxt, nn.BatchNorm2d):
            out.append(fuse_conv_bn_eval(m, nxt))
            i += 1
        elif isinstance(m, nn.Linear) and isinstance(nxt, nn.BatchNorm1d):
            out.append(fuse_linear_bn_eval(m, nxt))
            i += 1
        elif not isinstance(m, nn.Dropout):
            out.append(m)
        i += 1
    return nn.Sequential(*out)


def fuse_for_inference(net: nn.Module) -> nn.Module:
    """An inference-only copy of a SigNet with BatchNorm folded into the preceding conv / linear
    weights (fewer passes over memory: ~1.5x faster on CPU). The original ``net`` is not changed.
    Networks of another layout are returned as an eval-mode deep copy."""
    import copy

    fused = copy.deepcopy(net).eval()
    for name in ("features", "head"):
        sub = getattr(fused, name, None)
        if isinstance(sub, nn.Sequential):
            setattr(fused, name, _fold_sequential(sub))
    for p in fused.parameters():
        p.requires_grad_(False)
    return fused


def _weights_version(tensors: list[torch.Tensor]) -> int:
    """Changes whenever one of ``tensors`` is modified in place (optimizer step, load_state_dict)."""
    return sum(t._version for t in tensors)


#: CPU batches of at most this many images run on one thread: for a pair the second thread's
#: synchronisation costs more than it gives, and on a busy machine (other apps, or a training job)
#: a preempted OpenMP worker can make a 2-image batch 20-40x slower.
SMALL_BATCH_ONE_THREAD = 4
#: CPU batches are cut into chunks of at most this size (bounds activation memory; 16..64 measured
#: within noise of each other on 2 cores, 64 slightly ahead in CPU time per image).
CPU_MICRO_BATCH = 64


class Embedder(EmbedderBase):
    """Wraps a loaded model: preprocessing parameters come from its card.

    Inference runs a BatchNorm-folded, channels-last copy of the network under ``inference_mode``
    (rebuilt automatically when the network's weights change in place); ``self.net`` stays the
    model's own network.

    Backend: on CPU, when onnxruntime is installed and a verified ONNX export of exactly these weights
    exists (``sigverify-cli export --format onnx``; see ``onnx_backend``), inference runs on
    onnxruntime instead (same embeddings within ~1e-6, faster in batches); ``backend="torch"`` or
    ``SIGVERIFY_BACKEND=torch`` turns that off, and training mode or weights changed in place fall back
    to torch automatically.
    """

    def __init__(self, model: LoadedModel, device: str | torch.device | None = None, batch_size: int = 64, backend: str = "auto"):
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.model = model
        self.net = model.network.to(self.device).eval()
        self.net = self.net.to(memory_format=torch.channels_last)
        self.card = model.card
        self.preprocess_config = self.card.preprocess_config
        self.batch_size = batch_size
        self._fast: nn.Module | None = None
        self._fast_version: int | None = None
        self._tensors: list[torch.Tensor] | None = None
        env = os.environ.get("SIGVERIFY_THREADS")
        self.cpu_threads = int(env) if env and env.isdigit() and int(env) > 0 else torch.get_num_threads()
        self._ort = None
        if backend != "torch" and self.device.type == "cpu":
            from sigverify.model import onnx_backend

            self._ort = onnx_backend.runtime_for(model, "cpu")
            if self._ort is not None:
                self._ort.threads = self.cpu_threads
                self._ort_version = _weights_version(self._weight_tensors())

    @property
    def backend(self) -> str:
        """'onnxruntime' when CPU inference currently runs on the ONNX export, else 'torch'."""
        return "onnxruntime" if self._ort_usable() else "torch"

    def _weight_tensors(self) -> list[torch.Tensor]:
        if self._tensors is None:
            self._tensors = [*self.net.parameters(), *self.net.buffers()]
        return self._tensors

    def _ort_usable(self) -> bool:
        return self._ort is not None and not self.net.training and _weights_version(self._weight_tensors()) == self._ort_version

    def _inference_net(self) -> nn.Module:
        if self.net.training:  # someone is training it: use it as it is
            return self.net
        # walking net.parameters() costs ~1 ms a call: the tensor list is cached (see refresh())
        v = _weights_version(self._weight_tensors())
        if self._fast is None or v != self._fast_version:
            with torch.inference_mode(False):
                self._fast = fuse_for_inference(self.net).to(self.device).to(memory_format=torch.channels_last)
            self._fast_version = v
        return self._fast

    def refresh(self) -> None:
        """Rebuild the fused inference copy on the next call (after replacing modules or parameters of
        ``self.net``; in-place weight changes are picked up automatically)."""
        self._fast = None
        self._tensors = None
        self._ort = None  # the ONNX export no longer describes the modules

    def warm_up(self) -> None:
        """Build the fused network and run it once (first-call allocations), e.g. at app start."""
        h, w = self.card.input_hw
        self.embed_arrays([np.zeros((h, w), np.uint8)] * 2)

    @classmethod
    def from_path(cls, path: str | os.PathLike | None, device: str | None = None) -> "Embedder":
        return cls(open_model(path), device)

    @torch.inference_mode()
    def embed_arrays(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """images: (H, W) uint8 network inputs (ink 255). Returns (N, D) float32 unit vectors."""
        if len(images) == 0:
            return np.zeros((0, self.card.embedding_dim), np.float32)
        if self._ort_usable():
            return self._ort.run(images)
        net = self._inference_net()
        step = self.batch_size
        if self.device.type == "cpu":
            step = max(1, min(step, CPU_MICRO_BATCH))
            want = 1 if len(images) <= SMALL_BATCH_ONE_THREAD else self.cpu_threads
            if torch.get_num_threads() != want:
                torch.set_num_threads(want)
        out = []
        for i in range(0, len(images), step):
            x = to_batch(images[i : i + step], self.device)
            out.append(net(x).float().cpu().numpy())
        return np.concatenate(out)


def open_model_or_fallback(path: str | os.PathLike | None, device: str | torch.device = "cpu") -> tuple[LoadedModel, str | None]:
    """Open the user's model; if it is refused (tampered, truncated, wrong architecture, missing),
    fall back to the shipped model (or, failing that, random weights) and say why.

    Returns ``(model, warning)``; ``warning`` is None when ``path`` loaded (or none was given and the
    shipped model loaded), otherwise a clerk-readable sentence for the status bar / stderr.
    """
    from sigverify.paths import default_model_path

    if path:
        try:
            return load_model(path, device), None
        except ModelError as exc:
            reason = str(exc)
        p = default_model_path()
        if p.exists():
            try:
                return load_model(p, device), f"{reason}. Using the shipped model {p.name} instead."
            except ModelError as exc2:
                reason = f"{reason}; the shipped model was refused too ({exc2})"
        return random_model(device=device), f"{reason}. No usable model: using UNTRAINED random weights."
    try:
        return open_model(None, device), None
    except ModelError as exc:
        return random_model(device=device), f"{exc}. Using UNTRAINED random weights."


def open_model(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> LoadedModel:
    """Load ``path``; with None, the shipped default model, or random weights if none is shipped."""
    from sigverify.paths import default_model_path

    if path:
        return load_model(path, device)
    p = default_model_path()
    if p.exists():
        return load_model(p, device)
    return random_model(device=device)
