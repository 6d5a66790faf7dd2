"""Opening a model session: model + device + metric + decision policy, the same for the GUI and the CLI.

A requested device or metric that cannot be honoured is not an error here: the session falls back
(GPU -> CPU, metric -> the model card's own) and says so with a ``Notice`` object. The decision to
fall back is taken on the *type* of the error (``DeviceUnavailableError``, ``MetricUnavailableError``),
never on words in its message. A refused model file is an error (``ModelError``) unless the caller
asks for the model fallback (the GUI at start-up): then the shipped model (or untrained random
weights) is used and a ``Notice`` says why.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from sigverify.errors import DeviceUnavailableError, MetricUnavailableError
from sigverify.model.lazy import LoadedModel  # no torch import: the verify-only runtime has none
from sigverify.verify.service import Verifier

#: ``Notice.kind`` values
DEVICE_FALLBACK = "device_fallback"
METRIC_FALLBACK = "metric_fallback"
MODEL_FALLBACK = "model_fallback"
POLICY_FALLBACK = "policy_fallback"


@dataclass(frozen=True)
class Notice:
    """Something the front end must tell the user: what was asked, what is used instead, and why."""

    kind: str  # DEVICE_FALLBACK / METRIC_FALLBACK / MODEL_FALLBACK
    message: str  # one clerk-readable sentence
    requested: str = ""
    used: str = ""

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict:
        return {"kind": self.kind, "message": self.message, "requested": self.requested, "used": self.used}


@dataclass
class Session:
    """A loaded model with its device and decision policy. ``verifier`` is the core object doing the work."""

    verifier: Verifier
    notices: list[Notice] = field(default_factory=list)
    requested_model: str | None = None  # the path asked for (None: the shipped model)

    @property
    def model(self) -> LoadedModel:
        return self.verifier.model

    @property
    def model_id(self) -> str:
        return self.verifier.model.model_id

    @property
    def card(self):
        return self.verifier.card

    @property
    def device_text(self) -> str:
        return self.verifier.device_text

    @property
    def metric(self) -> str:
        return self.verifier.metric

    @property
    def untrained(self) -> bool:
        return bool(self.verifier.card.random_init)

    @property
    def model_fell_back(self) -> bool:
        return any(n.kind == MODEL_FALLBACK for n in self.notices)

    def set_metric(self, metric: str | None) -> None:
        """Metric and calibration change together; ``MetricUnavailableError`` leaves both unchanged."""
        self.verifier.set_metric(metric)

    def set_aggregate(self, aggregate: str) -> None:
        from sigverify.errors import SigverifyError
        from sigverify.verify.reference import AGGREGATES

        if aggregate not in AGGREGATES:
            raise SigverifyError(f"aggregate must be one of {', '.join(AGGREGATES)}")
        if aggregate not in self.verifier.policies:
            raise SigverifyError(f"model {self.verifier.card.name!r} has no thresholds calibrated for the {aggregate!r} policy")
        self.verifier.aggregate = aggregate

    def set_adapt_to_person(self, on: bool) -> None:
        self.verifier.adapt_to_person = bool(on)

    def notices_dict(self) -> list[dict]:
        return [n.to_dict() for n in self.notices]


def open_session(
    model: str | os.PathLike | LoadedModel | None = None,
    device: str | None = None,
    metric: str | None = None,
    aggregate: str | None = None,
    adapt_to_person: bool = True,
    *,
    model_fallback: bool = False,
) -> Session:
    """Load a model once and build its ``Verifier``.

    - ``device`` ``None``/"auto" picks the GPU when there is one; an unavailable GPU -> CPU + notice.
    - ``metric`` ``None`` uses the card's; one the model is not calibrated for -> the card's + notice.
    - ``aggregate`` (decision policy) ``None`` uses the card's default; one without fitted thresholds
      (or "writer" on a model without a cohort) -> the card's default (or "mean") + notice.
    - ``model_fallback``: a refused ``model`` file -> the shipped model (or random weights) + notice;
      without it a refused file raises ``ModelError``.
    Blocking (seconds: imports torch and reads the weights): front ends call it off their UI thread.
    """
    from sigverify.model.lazy import open_model, open_model_or_fallback, resolve_device  # ONNX alone without torch

    notices: list[Notice] = []
    try:
        torch_dev = resolve_device(device)
    except DeviceUnavailableError as exc:
        notices.append(Notice(DEVICE_FALLBACK, f"{exc}; using the CPU", exc.device or str(device), "cpu"))
        torch_dev = resolve_device("cpu")
    requested = None if model is None or isinstance(model, LoadedModel) else str(model)
    if isinstance(model, LoadedModel):
        loaded = model
    elif model_fallback:
        loaded, warning = open_model_or_fallback(requested, torch_dev)
        if warning:
            notices.append(Notice(MODEL_FALLBACK, warning, requested or "", loaded.card.name))
    else:
        loaded = open_model(requested, torch_dev)
    try:
        verifier = Verifier(loaded, str(torch_dev), metric, aggregate, adapt_to_person)
    except MetricUnavailableError as exc:
        verifier = Verifier(loaded, str(torch_dev), None, aggregate, adapt_to_person)
        notices.append(
            Notice(
                METRIC_FALLBACK,
                f"{exc}; using the model's own {verifier.metric} distance",
                exc.metric or str(metric),
                verifier.metric,
            )
        )
    if aggregate and verifier.aggregate != aggregate or verifier.aggregate not in verifier.policies:
        # a policy the model has no thresholds for (or needs a cohort it lacks): the card's default
        used = loaded.card.default_policy if loaded.card.default_policy in verifier.policies else "mean"
        notices.append(
            Notice(
                POLICY_FALLBACK,
                f"model {loaded.card.name!r} has no thresholds calibrated for the {aggregate!r} decision policy; using {used!r}",
                str(aggregate),
                used,
            )
        )
        verifier.aggregate = used
    return Session(verifier, notices, requested)


__all__ = ["Session", "Notice", "open_session", "DEVICE_FALLBACK", "METRIC_FALLBACK", "MODEL_FALLBACK", "POLICY_FALLBACK"]
