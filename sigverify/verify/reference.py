"""Questioned signature against a person's reference set (1..N signatures)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sigverify.model.card import MetricCalibration
from sigverify.verify.calibration import Verdict, verdict_for
from sigverify.verify.distances import pairwise_distances

#: Decision policies: "mean" / "min" aggregate the distances to the specimens; "writer" is the
#: writer-dependent stage (the customer's specimens against the model's shipped cohort, verify/writer.py).
AGGREGATES = ("mean", "min", "writer")
#: Per-person threshold adaptation is bounded: a person's spread can move thresholds by at most this factor.
SCALE_LIMITS = (0.8, 1.25)
MIN_REFS_FOR_ADAPTATION = 3


@dataclass
class ReferenceDecision:
    distances: list[float]  # questioned vs each reference
    aggregate: str
    min_distance: float
    mean_distance: float
    ref_spread: float | None  # mean distance among the references themselves (None for < 2 refs)
    person_scale: float  # multiplier applied to the global thresholds for this person
    verdict: Verdict
    warnings: list[str] = field(default_factory=list)
    threshold_override: float = 1.0  # a supervisor's per-customer multiplier (sigverify.store.operators)
    decision_score: float | None = None  # the one number the thresholds apply to (lower = more genuine)
    calibrated_for: str = "pairs"  # where the thresholds come from: "pairs", or "K=5 specimens" (clerk's protocol)

    def to_dict(self) -> dict:
        d = self.verdict.to_dict()
        d.update(
            {
                "distances": self.distances,
                "aggregate": self.aggregate,
                "min_distance": self.min_distance,
                "mean_distance": self.mean_distance,
                "reference_spread": self.ref_spread,
                "person_threshold_scale": self.person_scale,
                "warnings": self.warnings,
                "threshold_override": self.threshold_override,
                "decision_score": self.decision_score,
                "thresholds_calibrated_for": self.calibrated_for,
            }
        )
        return d


def person_scale(ref_embs: np.ndarray, metric: str, cal: MetricCalibration) -> tuple[float, float | None]:
    """Threshold multiplier from the spread of a person's own references (1.0 with < 3 references)."""
    n = len(ref_embs)
    if n < 2:
        return 1.0, None
    d = pairwise_distances(ref_embs, ref_embs, metric)
    spread = float(d[np.triu_indices(n, 1)].mean())
    if n < MIN_REFS_FOR_ADAPTATION or cal.ref_spread <= 0:
        return 1.0, spread
    lo, hi = SCALE_LIMITS
    return float(np.clip(spread / cal.ref_spread, lo, hi)), spread


def verify_against_references(
    q_emb: np.ndarray,
    ref_embs: np.ndarray,
    cal: MetricCalibration,
    metric: str = "euclidean",
    aggregate: str = "mean",
    adapt_to_person: bool = True,
    threshold_scale: float = 1.0,
    *,
    decision_cal: MetricCalibration | None = None,
    calibrated_for: str = "pairs",
    cohort=None,
    mix: float = 0.5,
) -> ReferenceDecision:
    """``threshold_scale``: a supervisor's per-customer multiplier on top of the per-person scale.

    ``decision_cal``: thresholds fitted for this policy and number of specimens by the clerk's protocol
    (model card ``decision``); without it the pair calibration ``cal`` is used. ``aggregate="writer"``
    needs ``cohort`` (a ``verify.writer.Cohort``) and ``mix``; its score is already normalised by the
    specimens' spread, so no per-person scale is applied on top."""
    ref_embs = np.atleast_2d(ref_embs)
    if len(ref_embs) == 0:
        raise ValueError("at least one reference signature is needed")
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {AGGREGATES}")
    use = decision_cal or cal
    ds = pairwise_distances(q_emb[None], ref_embs, metric)[0]
    if aggregate == "writer":
        if cohort is None:
            raise ValueError("the writer-dependent policy needs the model's cohort")
        from sigverify.verify.writer import writer_score

        value, spread = writer_score(q_emb, ref_embs, cohort, cal.ref_spread, mix, metric)
        scale = 1.0
    else:
        scale, spread = person_scale(ref_embs, metric, cal) if adapt_to_person else (1.0, None)
        value = float(ds.mean() if aggregate == "mean" else ds.min())
    v = verdict_for(value, use, scale * float(threshold_scale))
    warnings = []
    if threshold_scale != 1.0:
        warnings.append(f"supervisor threshold override x{threshold_scale:.2f} for this customer")
    if len(ref_embs) < MIN_REFS_FOR_ADAPTATION:
        warnings.append(f"only {len(ref_embs)} reference signature(s): add more specimens for a per-person threshold")
    return ReferenceDecision(
        [float(x) for x in ds],
        aggregate,
        float(ds.min()),
        float(ds.mean()),
        spread,
        scale,
        v,
        warnings,
        float(threshold_scale),
        float(value / scale),
        calibrated_for if decision_cal else "pairs",
    )
