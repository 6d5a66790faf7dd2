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


def resolve_device(device: str | None = None):
    d = device or os.environ.get("SIGVERIFY_DEVICE") or "auto"
    if isinstance(d, str) and d.lower() == "cpu":
        return "cpu"
    from sigverify.model.embedder import resolve_device as real

    return real(device)


def open_model(path=None, device="cpu"):
    if _is_onnx(path):
        from sigverify.model.onnx_backend import open_onnx_model

        return open_onnx_model(path)
    from sigverify.model.embedder import open_model as real

    return real(path, device)


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


__all__ = ["resolve_device", "open_model", "Embedder", "device_label", "LoadedModel"]
