"""ONNX export and the onnxruntime inference backend (the lean, torch-free runtime).

Files: ``NAME.onnx`` (the BatchNorm-folded network, float32, dynamic batch, one file without external
data) and its sidecar ``NAME.onnx.json``::

    {"format": "sigverify-onnx/1", "onnx_sha256": ..., "source_weights_sha256": <the card's weights hash>,
     "opset": 18, "parity_max_abs_diff": ..., "exported_utc": ..., "card": {<the full model card>}}

ONNX is a protobuf graph (no pickle). A file is used only when its SHA-256 matches the sidecar and the
sidecar's ``source_weights_sha256`` matches the model it stands for, so a stale or edited export is
never used silently.

* ``export_onnx(model, out)`` needs torch + the ``onnx`` / ``onnxscript`` packages (extra ``onnx``).
* ``OnnxRuntime`` runs a verified file on onnxruntime (CPU); ``Embedder`` (torch) uses it for CPU
  inference when onnxruntime is installed and an export for its exact weights exists beside the weights
  or in ``<user data>/onnx/`` (``SIGVERIFY_BACKEND=torch`` turns it off; weights changed in place, e.g.
  by fine-tuning, fall back to torch).
* ``OnnxEmbedder`` / ``open_onnx_model`` are the same embedder interface with no torch import at all:
  the verify-only bundle (packaging/sigverify-lite.spec) runs on them.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from sigverify.errors import ModelError
from sigverify.hashing import sha256_file
from sigverify.model.base import EmbedderBase
from sigverify.model.card import ModelCard

ONNX_FORMAT = "sigverify-onnx/1"
DEFAULT_OPSET = 18
#: batches up to this size run on the single-threaded session (see embedder.SMALL_BATCH_ONE_THREAD)
SMALL_BATCH_ONE_THREAD = 4


def available() -> bool:
    """onnxruntime importable (and not switched off with ``SIGVERIFY_BACKEND=torch``)."""
    if os.environ.get("SIGVERIFY_BACKEND", "auto").lower() == "torch":
        return False
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def sidecar_for(onnx_path: str | os.PathLike) -> Path:
    p = Path(onnx_path)
    return p.with_name(p.name + ".json")


def default_export_path(card: ModelCard) -> Path:
    """``<user data>/onnx/<name>-<weights sha 12>.onnx``: where ``export`` writes without ``--out``
    and where the backend looks for an export of a model."""
    from sigverify.paths import user_data_dir

    return user_data_dir() / "onnx" / f"{card.name}-{(card.weights_sha256 or 'random')[:12]}.onnx"


def candidate_paths(card: ModelCard, weights_path: str | os.PathLike | None) -> list[Path]:
    out = []
    if weights_path:
        out.append(Path(weights_path).with_suffix(".onnx"))
    out.append(default_export_path(card))
    return out


def read_sidecar(onnx_path: str | os.PathLike) -> dict:
    """The verified sidecar of ``onnx_path`` (``ModelError`` when missing, malformed or the hash differs)."""
    p = Path(onnx_path)
    sc = sidecar_for(p)
    try:
        meta = json.loads(sc.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(f"{p.name}: its description {sc.name} is missing (export it again)") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{sc.name}: not valid JSON ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != ONNX_FORMAT:
        raise ModelError(f"{sc.name}: not a sigverify ONNX description (format {ONNX_FORMAT!r} expected)")
    try:
        actual = sha256_file(p)
    except OSError as exc:
        raise ModelError(f"{p.name}: cannot be read ({exc.strerror or exc})") from exc
    if actual != meta.get("onnx_sha256"):
        raise ModelError(
            f"{p.name}: SHA-256 {actual[:12]}… does not match its description "
            f"({str(meta.get('onnx_sha256'))[:12]}…): the file was changed or damaged; refusing it"
        )
    return meta


def find_export(card: ModelCard, weights_path: str | os.PathLike | None) -> Path | None:
    """A verified ONNX export of exactly these weights, or None."""
    if not card.weights_sha256:
        return None
    for p in candidate_paths(card, weights_path):
        if not p.is_file():
            continue
        try:
            meta = read_sidecar(p)
        except ModelError:
            continue
        if meta.get("source_weights_sha256") == card.weights_sha256:
            return p
    return None


# ---------------------------------------------------------------------------------------- export
def export_onnx(model, out: str | os.PathLike | None = None, opset: int = DEFAULT_OPSET, parity_images: int = 16) -> dict:
    """Export ``model`` (a ``LoadedModel``) to ONNX + sidecar, atomically; returns the sidecar dict
    plus ``path``. The parity check (max abs difference of embeddings against the torch path on
    ``parity_images`` random inputs, batch 1 and batch N) runs when onnxruntime is installed."""
    import warnings

    import torch

    from sigverify.atomic import write_bytes_atomic, write_text_atomic
    from sigverify.model.embedder import fuse_for_inference

    card = model.card
    out = Path(out) if out else default_export_path(card)
    if out.suffix != ".onnx":
        out = out.with_suffix(".onnx")
    h, w = card.input_hw
    net = fuse_for_inference(model.network.to("cpu")).float().eval()
    example = torch.zeros(2, 1, h, w)
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter needs it)
    except ImportError as exc:
        raise ModelError("ONNX export needs the 'onnx' extra: pip install 'sigverify[onnx]'") from exc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import logging

        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        prog = torch.onnx.export(
            net,
            (example,),
            input_names=["input"],
            output_names=["embedding"],
            dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=65536)},),
            opset_version=opset,
            dynamo=True,
            verbose=False,
            optimize=True,
        )
    proto = prog.model_proto
    entry = proto.metadata_props.add()
    entry.key, entry.value = "sigverify_card", card.to_json()
    data = proto.SerializeToString()
    write_bytes_atomic(out, data)
    meta = {
        "format": ONNX_FORMAT,
        "onnx_sha256": sha256_file(out),
        "source_weights_sha256": card.weights_sha256,
        "model_id": model.model_id,
        "opset": opset,
        "torch": torch.__version__,
        "exported_utc": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "parity_max_abs_diff": None,
        "card": card.to_dict(),
    }
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        meta["parity_note"] = "onnxruntime not installed: parity not checked"
    else:
        meta["parity_max_abs_diff"] = parity(model, out, parity_images)
    write_text_atomic(sidecar_for(out), json.dumps(meta, indent=2))
    return {**meta, "path": str(out), "bytes": len(data)}


def parity(model, onnx_path: str | os.PathLike, n: int = 16, seed: int = 0) -> float:
    """Max abs difference between the torch embedder and onnxruntime on ``n`` random network inputs
    (batch 1 and batch n)."""
    from sigverify.model.embedder import Embedder

    h, w = model.card.input_hw
    rng = np.random.default_rng(seed)
    imgs = [(rng.random((h, w)) < 0.1).astype(np.uint8) * 255 for _ in range(n)]
    emb = Embedder(model, "cpu", backend="torch")
    ref = emb.embed_arrays(imgs)
    rt = OnnxRuntime(onnx_path)
    got = np.concatenate([rt.run(imgs[:1]), rt.run(imgs[1:])])
    return float(np.abs(got - ref).max())


# ---------------------------------------------------------------------------------------- runtime
class OnnxRuntime:
    """onnxruntime sessions for one ONNX file: a single-threaded one for small batches (a pair), one
    with ``threads`` threads for large batches (created on first use). Thread-safe."""

    def __init__(self, onnx_path: str | os.PathLike, threads: int | None = None, micro_batch: int = 64):
        self.path = Path(onnx_path)
        env = os.environ.get("SIGVERIFY_THREADS")
        self.threads = threads or (int(env) if env and env.isdigit() and int(env) > 0 else (os.cpu_count() or 1))
        self.micro_batch = micro_batch
        self._sessions: dict[int, object] = {}
        self._lock = threading.Lock()
        self._input = None

    def session(self, threads: int):
        with self._lock:
            s = self._sessions.get(threads)
            if s is None:
                import onnxruntime as ort

                so = ort.SessionOptions()
                so.intra_op_num_threads = threads
                so.inter_op_num_threads = 1
                so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                # no busy-waiting worker threads: on a shared 2-core machine they steal the other core
                so.add_session_config_entry("session.intra_op.allow_spinning", "0")
                try:
                    s = ort.InferenceSession(str(self.path), so, providers=["CPUExecutionProvider"])
                except Exception as exc:  # onnxruntime raises its own exception types
                    raise ModelError(f"{self.path.name}: onnxruntime cannot load it ({exc})") from exc
                self._input = s.get_inputs()[0].name
                self._sessions[threads] = s
            return s

    def run(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(H, W) uint8 network inputs -> (N, D) float32 embeddings."""
        threads = 1 if len(images) <= SMALL_BATCH_ONE_THREAD else self.threads
        s = self.session(threads)
        out = []
        for i in range(0, len(images), self.micro_batch):
            x = np.stack(images[i : i + self.micro_batch]).astype(np.float32)
            x *= np.float32(1.0 / 255.0)
            out.append(s.run(None, {self._input: x[:, None]})[0])
        return np.concatenate(out).astype(np.float32, copy=False)


def runtime_for(model, device_type: str = "cpu") -> OnnxRuntime | None:
    """The ONNX runtime an ``Embedder`` should use for ``model`` on ``device_type``, or None (GPU,
    onnxruntime missing or switched off, no verified export of these exact weights)."""
    if device_type != "cpu" or not available():
        return None
    p = find_export(model.card, model.path)
    return OnnxRuntime(p) if p else None


# ---------------------------------------------------------------------------------------- lean embedder
@dataclass
class OnnxModel:
    """A model opened from an ONNX export alone (no torch): the card comes from the sidecar."""

    card: ModelCard
    path: Path
    network: None = None

    @property
    def model_id(self) -> str:
        return f"{self.card.name}@{self.card.weights_sha256[:12]}" if self.card.weights_sha256 else self.card.name


def open_onnx_model(path: str | os.PathLike) -> OnnxModel:
    """Open ``NAME.onnx`` (verified against its sidecar). The card: ``NAME.json`` beside it when that
    card describes the same weights (a recalibrated card, a new decision stage), else the copy taken
    at export time."""
    p = Path(path)
    if p.suffix == ".safetensors":
        p = p.with_suffix(".onnx")
    if not p.is_file():
        raise ModelError(f"{p}: no such ONNX model (create it with: sigverify-cli export --format onnx)")
    meta = read_sidecar(p)
    card = ModelCard.from_dict(meta.get("card") or {})
    if card.weights_sha256 != meta.get("source_weights_sha256"):
        raise ModelError(f"{p.name}: its description's card does not belong to the exported weights")
    beside = p.with_suffix(".json")
    if beside.is_file():
        current = ModelCard.load(beside)  # validated (and its seal checked) like any card
        if current.weights_sha256 == meta.get("source_weights_sha256"):
            card = current
    return OnnxModel(card, p)


class OnnxEmbedder(EmbedderBase):
    """The embedder interface (``embed_arrays``, ``embed_files``, ``preprocess``, ``card``) on onnxruntime
    alone: what the verify-only bundle uses. CPU only."""

    backend = "onnxruntime"

    def __init__(self, model: OnnxModel, batch_size: int = 64, threads: int | None = None):
        self.model = model
        self.card = model.card
        self.preprocess_config = self.card.preprocess_config
        self.batch_size = batch_size
        self.device = "cpu"
        self.runtime = OnnxRuntime(model.path, threads)

    @property
    def device_text(self) -> str:
        return f"CPU (onnxruntime, {self.runtime.threads} threads)"

    def embed_arrays(self, images: Sequence[np.ndarray]) -> np.ndarray:
        if len(images) == 0:
            return np.zeros((0, self.card.embedding_dim), np.float32)
        return self.runtime.run(images)

    def warm_up(self) -> None:
        h, w = self.card.input_hw
        self.embed_arrays([np.zeros((h, w), np.uint8)] * 2)


__all__ = [
    "ONNX_FORMAT",
    "available",
    "export_onnx",
    "parity",
    "find_export",
    "read_sidecar",
    "sidecar_for",
    "default_export_path",
    "OnnxRuntime",
    "runtime_for",
    "OnnxModel",
    "open_onnx_model",
    "OnnxEmbedder",
]
