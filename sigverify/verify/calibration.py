"""Calibrated score and three-zone verdict from a distance, with thresholds from the model card.

Fitting (on validation writers, never on reported ones):
- ``accept``: the largest distance at which the false-accept rate on skilled forgeries is at most
  ``far_target``; ``reject``: the smallest distance at which the false-reject rate on genuine pairs is
  at most ``frr_target``; between the two the clerk refers the case to a supervisor.
- the score is a logistic fit of P(same writer | distance), shown as 0-100.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sigverify.metrics import eer
from sigverify.model.card import METRICS, MetricCalibration, placeholder_calibration  # noqa: F401  (re-exported)

GENUINE, REFER, FORGERY = "genuine", "refer", "forgery"
ZONE_TEXT = {
    GENUINE: "Genuine - signatures match",
    REFER: "Refer to a supervisor",
    FORGERY: "Forgery suspected - signatures do not match",
}


@dataclass
class Verdict:
    zone: str  # genuine / refer / forgery
    distance: float  # the distance the verdict was taken on
    score: float  # 0..100, calibrated probability (in %) that the same person wrote both
    accept: float  # thresholds actually used (after any per-person adaptation)
    reject: float

    @property
    def text(self) -> str:
        return ZONE_TEXT[self.zone]

    def to_dict(self) -> dict:
        return {
            "verdict": self.zone,
            "verdict_text": self.text,
            "distance": self.distance,
            "score": self.score,
            "threshold_accept": self.accept,
            "threshold_reject": self.reject,
        }


def score_of(d: float, cal: MetricCalibration) -> float:
    z = cal.score_a * (d - cal.score_b)
    z = max(-60.0, min(60.0, z))
    return 100.0 / (1.0 + math.exp(z))


def verdict_for(d: float, cal: MetricCalibration, scale: float = 1.0) -> Verdict:
    """``scale`` > 1 widens the thresholds for a writer whose own signatures vary more (and < 1 narrows)."""
    accept, reject = cal.accept * scale, cal.reject * scale
    zone = GENUINE if d <= accept else (FORGERY if d > reject else REFER)
    return Verdict(zone, float(d), score_of(d / scale, cal), float(accept), float(reject))


def _rates(pos: np.ndarray, neg: np.ndarray, t: float) -> tuple[float, float]:
    far = float((neg <= t).mean()) if len(neg) else 0.0
    frr = float((pos > t).mean()) if len(pos) else 0.0
    return far, frr


def fit_logistic(pos: np.ndarray, neg: np.ndarray, iters: int = 500) -> tuple[float, float]:
    """Fit P(same | d) = 1 / (1 + exp(a (d - b))) by Newton steps on balanced log-loss."""
    d = np.concatenate([pos, neg]).astype(np.float64)
    y = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    w = np.concatenate([np.full(len(pos), 0.5 / max(len(pos), 1)), np.full(len(neg), 0.5 / max(len(neg), 1))])
    mu, sd = d.mean(), d.std() + 1e-9
    x = (d - mu) / sd
    # p = sigmoid(c0 + c1 x)
    c = np.zeros(2)
    X = np.stack([np.ones_like(x), x], 1)
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(X @ c)))
        g = X.T @ (w * (p - y))
        H = (X * (w * p * (1 - p))[:, None]).T @ X + 1e-6 * np.eye(2)
        step = np.linalg.solve(H, g)
        c -= step
        if np.abs(step).max() < 1e-9:
            break
    c0, c1 = c
    if c1 >= 0:  # degenerate (model no better than chance): flat score around the median
        return 1.0 / sd, float(np.median(d))
    a = -c1 / sd
    b = mu - c0 * sd / c1
    return float(a), float(b)


def fit_calibration(
    pos: np.ndarray, neg_skilled: np.ndarray, neg_random: np.ndarray, far_target: float = 0.10, frr_target: float = 0.10
) -> MetricCalibration:
    pos, neg_skilled, neg_random = map(lambda a: np.asarray(a, np.float64), (pos, neg_skilled, neg_random))
    neg_all = np.concatenate([neg_skilled, neg_random])
    neg_for_accept = neg_skilled if len(neg_skilled) else neg_all
    ts = np.unique(np.concatenate([pos, neg_all]))
    far = np.array([(neg_for_accept <= t).mean() for t in ts])
    frr = np.array([(pos > t).mean() for t in ts])
    ok_a = ts[far <= far_target]
    accept = float(ok_a.max()) if len(ok_a) else float(ts.min())
    ok_r = ts[frr <= frr_target]
    reject = float(ok_r.min()) if len(ok_r) else float(ts.max())
    e = eer(pos, neg_for_accept)
    t_eer = e.threshold
    if accept > reject:  # a model this good needs no refer zone: both meet at the EER threshold
        accept = reject = t_eer
    a, b = fit_logistic(pos, neg_all)
    return MetricCalibration(
        accept=accept,
        reject=reject,
        eer_threshold=float(t_eer),
        score_a=a,
        score_b=b,
        ref_spread=float(pos.mean()) if len(pos) else 1.0,
    )


__all__ = ["GENUINE", "REFER", "FORGERY", "METRICS", "Verdict", "verdict_for", "fit_calibration", "score_of"]
