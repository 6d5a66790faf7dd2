"""The one entry point the CLI and the GUI share: load a model once, compare and verify files.

No Qt here. ``Verifier`` keeps the model, device, metric and aggregate policy; its methods take paths
(or already-loaded arrays) and return plain data classes with everything a front end shows.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from sigverify.errors import SigverifyError
from sigverify.imaging.preprocess import Preprocessed, preprocess
from sigverify.model.lazy import Embedder, LoadedModel, device_label, open_model, resolve_device  # torch on first use
from sigverify.progress import Progress, ShouldStop
from sigverify.verify.calibration import verdict_for
from sigverify.verify.distances import distance
from sigverify.verify.reference import AGGREGATES, ReferenceDecision, verify_against_references


@dataclass(frozen=True)
class SpecimenRef:
    """A customer-library specimen's identity, carried typed (never parsed back out of a string)."""

    account_id: str
    reference_id: int
    file_name: str = ""

    @property
    def source(self) -> str:
        """Display text ``library://ACCOUNT/REF_ID/FILE`` (shown and written to JSON, never parsed)."""
        return f"library://{self.account_id}/{self.reference_id}/{self.file_name}"


@dataclass
class Signature:
    """One loaded signature: where it came from, its preprocessing stages and its embedding."""

    source: str
    preprocessed: Preprocessed | None
    embedding: np.ndarray
    #: set for a specimen read from the customer library (its account and reference id)
    specimen: SpecimenRef | None = None

    @property
    def reference_id(self) -> int | None:
        return self.specimen.reference_id if self.specimen else None

    @property
    def account_id(self) -> str | None:
        return self.specimen.account_id if self.specimen else None


@dataclass
class VerificationResult:
    questioned: Signature
    references: list[Signature]
    decision: ReferenceDecision
    metric: str
    model_id: str
    random_weights: bool
    elapsed_ms: float
    skipped: list[tuple[str, str]] = field(default_factory=list)  # reference files that failed: (path, error)

    def to_dict(self) -> dict:
        d = {
            "questioned": self.questioned.source,
            "references": [r.source for r in self.references],
            "metric": self.metric,
            "model": self.model_id,
            "random_weights": self.random_weights,
            "elapsed_ms": round(self.elapsed_ms, 2),
        }
        d.update(self.decision.to_dict())
        if self.skipped:
            d["skipped_references"] = [{"path": p, "error": e} for p, e in self.skipped]
        if self.random_weights:
            d["warning"] = "UNTRAINED random weights: results are meaningless"
        return d


class Verifier:
    def __init__(
        self,
        model: LoadedModel | str | os.PathLike | None = None,
        device: str | None = None,
        metric: str | None = None,
        aggregate: str | None = None,
        adapt_to_person: bool = True,
    ):
        """``aggregate``: the decision policy ("mean", "min", "writer"); ``None`` = the card's default."""
        dev = resolve_device(device)
        loaded = model if isinstance(model, LoadedModel) else open_model(model, dev)
        self.embedder = Embedder(loaded, dev)
        self.metric = metric or loaded.card.distance
        self.calibration = loaded.card.metric_calibration(self.metric)  # validates the metric
        self.cohort = _load_cohort(loaded)
        aggregate = aggregate or loaded.card.default_policy
        if aggregate == "writer" and self.cohort is None:
            aggregate = "mean"  # a card without a cohort has no writer-dependent stage
        if aggregate not in AGGREGATES:
            raise SigverifyError(f"aggregate must be one of {', '.join(AGGREGATES)}")
        self.aggregate = aggregate
        self.adapt_to_person = adapt_to_person

    @property
    def policies(self) -> tuple[str, ...]:
        """The decision policies this model offers (each with thresholds of its own)."""
        return tuple(
            p
            for p in AGGREGATES
            if (p != "writer" or self.cohort is not None)
            and (p == "mean" or self.card.decision_calibration(self.metric, p, 5)[0] is not None)
        )

    @property
    def model(self) -> LoadedModel:
        return self.embedder.model

    @property
    def card(self):
        return self.embedder.card

    @property
    def device_text(self) -> str:
        own = getattr(self.embedder, "device_text", None)  # the lean ONNX embedder describes itself
        return own if isinstance(own, str) else device_label(self.embedder.device)

    def load(self, path: str | os.PathLike, keep_stages: bool = True, crop: tuple[int, int, int, int] | None = None) -> Signature:
        """``crop`` (x, y, w, h): use only that rectangle of the image (a clerk's manual crop)."""
        pre = self._preprocess(path, keep_stages, crop)
        emb = self.embedder.embed_arrays([pre.input])[0]
        return Signature(str(path), pre, emb)

    def load_many(
        self,
        paths: Sequence[str | os.PathLike],
        keep_stages: bool = True,
        progress: Progress | None = None,
        should_stop: ShouldStop | None = None,
    ) -> tuple[list[Signature], list[tuple[str, str]]]:
        res = self.embedder.embed_files(paths, keep_stages, progress, should_stop)
        ok = [Signature(r.path, r.preprocessed, r.embedding) for r in res if r.error is None]
        bad = [(r.path, r.error) for r in res if r.error is not None]
        return ok, bad

    def _preprocess(self, path, keep_stages: bool = False, crop=None) -> Preprocessed:
        if crop is None:
            return self.embedder.preprocess(path, keep_stages)
        from sigverify.imaging.preprocess import preprocess_file

        return preprocess_file(path, self.embedder.preprocess_config, keep_stages, crop=crop)

    def load_references(
        self, references: Sequence[str | os.PathLike | Signature], keep_stages: bool = True
    ) -> tuple[list[Signature], list[tuple[str, str]]]:
        """A reference set: loaded ``Signature``s are kept, files loaded, folders expanded to their images.
        Returns (signatures, skipped [(path, error)]); no usable reference at all raises ``SigverifyError``."""
        from sigverify.imaging.files import expand_images

        loaded = [r for r in references if isinstance(r, Signature)]
        paths = expand_images([r for r in references if not isinstance(r, Signature)])
        skipped: list[tuple[str, str]] = []
        if paths:
            ok, skipped = self.load_many(paths, keep_stages)
            loaded += ok
        if not loaded:
            detail = "; ".join(e for _, e in skipped) if skipped else "none given"
            raise SigverifyError(f"no usable reference signature ({detail})")
        return loaded, skipped

    def signature_from_array(
        self,
        image: np.ndarray,
        source: str = "clipboard",
        keep_stages: bool = True,
        crop: tuple[int, int, int, int] | None = None,
    ) -> Signature:
        pre = preprocess(image, self.embedder.preprocess_config, keep_stages, crop=crop)
        if keep_stages:
            pre.stages = {"original": image, **pre.stages}
        return Signature(source, pre, self.embedder.embed_arrays([pre.input])[0])

    def set_metric(self, metric: str | None) -> None:
        """Switch the distance metric and its calibration together (``None``: the model card's own).
        Raises ``MetricUnavailableError`` and changes nothing when the model has no calibration for it."""
        metric = metric or self.card.distance
        cal = self.card.metric_calibration(metric)
        self.metric, self.calibration = metric, cal

    def decide_embeddings(self, q_emb: np.ndarray, ref_embs: np.ndarray, **options) -> ReferenceDecision:
        """THE one place a decision is built from embeddings: the questioned embedding against (N, D)
        reference embeddings under this verifier's metric, calibration, aggregate and per-person policy.
        ``options`` are passed on to ``verify_against_references`` (e.g. cohort normalisation).
        Front ends call ``sigverify.app.case.decide``, which lands here; a test checks that nothing
        else calls ``verify_against_references``."""
        ref_embs = np.atleast_2d(ref_embs)
        dcal, label = self.card.decision_calibration(self.metric, self.aggregate, len(ref_embs))
        if self.aggregate != "mean" and dcal is None:
            raise SigverifyError(f"model {self.card.name!r} has no thresholds calibrated for the {self.aggregate!r} policy")
        extra = {"decision_cal": dcal, "calibrated_for": label}
        if self.aggregate == "writer":
            extra.update(cohort=self.cohort, mix=float(self.card.decision["cohort"].get("mix", 0.5)))
        return verify_against_references(
            q_emb, ref_embs, self.calibration, self.metric, self.aggregate, self.adapt_to_person, **extra, **options
        )

    def decide(self, questioned: Signature, references: Sequence[Signature], **options) -> ReferenceDecision:
        refs = np.stack([r.embedding for r in references])
        return self.decide_embeddings(questioned.embedding, refs, **options)

    def verify(
        self,
        questioned: str | os.PathLike | Signature,
        references: Sequence[str | os.PathLike | Signature],
        keep_stages: bool = True,
    ) -> VerificationResult:
        """Questioned vs a reference set. Bad reference files are skipped and reported; a bad
        questioned file, or no usable reference, raises ``SigverifyError``."""
        t0 = time.perf_counter()
        q = questioned if isinstance(questioned, Signature) else self.load(questioned, keep_stages)
        loaded, skipped = self.load_references(references, keep_stages)
        dec = self.decide(q, loaded)
        return VerificationResult(
            q, loaded, dec, self.metric, self.model.model_id, self.card.random_init, (time.perf_counter() - t0) * 1000, skipped
        )

    def compare(
        self,
        a: str | os.PathLike,
        b: str | os.PathLike,
        crop_a: tuple[int, int, int, int] | None = None,
        crop_b: tuple[int, int, int, int] | None = None,
    ) -> dict:
        """Two files: distance, calibrated score and verdict (no per-person adaptation). ``crop_a`` /
        ``crop_b``: use only that rectangle of the image; ``regions`` in the result says which part of
        each image was compared (see ``Preprocessed.region``)."""
        t0 = time.perf_counter()
        from sigverify.model.base import preprocess_pool

        fa = preprocess_pool().submit(self._preprocess, a, False, crop_a)  # both images at once
        try:
            pb, err_b = self._preprocess(b, False, crop_b), None
        except SigverifyError as exc:
            pb, err_b = None, exc
        pa = fa.result()  # a problem with the first file is reported first
        if err_b is not None:
            raise err_b
        ea, eb = self.embedder.embed_arrays([pa.input, pb.input])
        d = distance(ea, eb, self.metric)
        v = verdict_for(d, self.calibration)
        out = {
            "a": str(a),
            "b": str(b),
            "metric": self.metric,
            "model": self.model.model_id,
            "random_weights": self.card.random_init,
        }
        out.update(v.to_dict())
        out["regions"] = {
            k: {"region": list(p.region) if p.region else None, "region_source": p.region_source}
            for k, p in (("a", pa), ("b", pb))
        }
        out["elapsed_ms"] = round((time.perf_counter() - t0) * 1000, 2)
        if self.card.random_init:
            out["warning"] = "UNTRAINED random weights: results are meaningless"
        return out


def _load_cohort(model: LoadedModel):
    """The model's shipped cohort (verify/writer.py), or None when its card names none."""
    meta = (model.card.decision or {}).get("cohort")
    if not meta or model.path is None:
        return None
    from pathlib import Path

    from sigverify.verify.writer import load_cohort

    return load_cohort(Path(model.path).with_name(meta["file"]), meta.get("sha256"), float(meta.get("reg", 0.1)))


def describe_model(model: LoadedModel) -> dict:
    d = model.card.to_dict()
    d["path"] = str(model.path) if model.path else None
    d["model_id"] = model.model_id
    return d


__all__ = ["Verifier", "VerificationResult", "Signature", "SpecimenRef", "describe_model"]
