"""The model-side names ``sigverify.verify.service`` needs, without importing torch until one is used.

``Verifier`` works with either backend through these:

* ``open_model(path, device)``: ``NAME.onnx`` opens the ONNX export alone (``onnx_backend.OnnxModel``,
  no torch); anything else is the torch loader (``embedder.open_model``).
* ``Embedder(model, device)``: an ``OnnxModel`` gets the torch-free ``OnnxEmbedder``; a torch model the
  torch ``Embedder`` (which itself runs on onnxruntime on CPU when a verified export exists).
* ``resolve_device``: "cpu" stays the string "cpu" (no torch needed to know that); anything else asks
  torch. ``LoadedModel``: ``isinstance`` against the torch loader's class, False while torch is unloaded.

So the verify-only bundle (no torch installed) runs ``Verifier("…/sigverify-base.onnx", device="cpu")``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def _is_onnx(model) -> bool:
    return isinstance(model, (str, os.PathLike)) and Path(model).suffix.lower() == ".onnx"


#: what a clerk is told when something needs the full install (torch) on the verify-only runtime
FULL_INSTALL = (
    "this is the verify-only install (onnxruntime, no PyTorch): {what} needs the full sigverify install "
    "(pip install sigverify, or the full bundle)"
)


def torch_available() -> bool:
    """PyTorch can be imported here (without importing it: that takes seconds)."""
    if "torch" in sys.modules:
        return sys.modules["torch"] is not None
    import importlib.util

    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def require_torch(what: str) -> None:
    """``SigverifyError`` with a clear message when PyTorch is missing (training, fine-tuning, export)."""
    if not torch_available():
        from sigverify.errors import SigverifyError

        raise SigverifyError(FULL_INSTALL.format(what=what))


def resolve_device(device: str | None = None):
    d = device or os.environ.get("SIGVERIFY_DEVICE") or "auto"
    if isinstance(d, str) and d.lower() == "cpu":
        return "cpu"
    if not torch_available():  # the verify-only runtime: onnxruntime on the CPU
        if isinstance(d, str) and d.lower() == "auto":
            return "cpu"
        from sigverify.errors import DeviceUnavailableError

        raise DeviceUnavailableError(
            f"a GPU ({d}) needs the full install (PyTorch); the verify-only install runs on the CPU", str(d)
        )
    from sigverify.model.embedder import resolve_device as real

    return real(device)


def _onnx_for(path) -> Path:
    """The ONNX export that stands for ``path`` (None: the shipped model) without torch."""
    from sigverify.paths import default_model_path

    return Path(path).with_suffix(".onnx") if path else default_model_path().with_suffix(".onnx")


def open_model(path=None, device="cpu"):
    """``NAME.onnx``: the ONNX export alone. Anything else: the torch loader - or, where PyTorch is not
    installed (the verify-only runtime), the verified ONNX export beside the weights (``NAME.onnx``).
    An already opened ONNX model is returned as it is."""
    ob = sys.modules.get("sigverify.model.onnx_backend")
    if ob is not None and isinstance(path, ob.OnnxModel):
        return path
    if _is_onnx(path) or not torch_available():
        from sigverify.model.onnx_backend import open_onnx_model

        return open_onnx_model(path if _is_onnx(path) else _onnx_for(path))
    from sigverify.model.embedder import open_model as real

    return real(path, device)


def open_model_or_fallback(path=None, device="cpu"):
    """``(model, warning)`` as ``embedder.open_model_or_fallback``; without PyTorch a refused model
    falls back to the shipped ONNX export (there are no random weights without torch)."""
    if torch_available() and not _is_onnx(path):
        from sigverify.model.embedder import open_model_or_fallback as real

        return real(path, device)
    from sigverify.errors import ModelError

    if not path:
        return open_model(None, device), None
    try:
        return open_model(path, device), None
    except ModelError as exc:
        shipped = _onnx_for(None)
        try:
            return open_model(shipped, device), f"{exc}. Using the shipped model {shipped.name} instead."
        except ModelError as exc2:
            raise ModelError(f"{exc}; the shipped model was refused too ({exc2})") from exc2


def Embedder(model, device=None, **kw):  # noqa: N802 - stands for the class it returns an instance of
    from sigverify.model.onnx_backend import OnnxEmbedder, OnnxModel

    if isinstance(model, OnnxModel):
        return OnnxEmbedder(model, **{k: v for k, v in kw.items() if k == "batch_size"})
    from sigverify.model.embedder import Embedder as real

    return real(model, device, **kw)


def device_label(device) -> str:
    from sigverify.model.embedder import device_label as real

    return real(device)


class _LoadedModelType(type):
    def __instancecheck__(cls, obj) -> bool:
        weights = sys.modules.get("sigverify.model.weights")
        return weights is not None and isinstance(obj, weights.LoadedModel)


class LoadedModel(metaclass=_LoadedModelType):
    """Stands for ``sigverify.model.weights.LoadedModel`` in ``isinstance`` checks and annotations."""


__all__ = [
    "resolve_device",
    "open_model",
    "open_model_or_fallback",
    "Embedder",
    "device_label",
    "LoadedModel",
    "torch_available",
    "require_torch",
]
