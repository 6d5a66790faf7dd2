"""The model card: everything needed to use a set of weights correctly, in one JSON file.

Input size and preprocessing, the distance metric, calibrated thresholds and the score mapping are
*read from here* by the rest of the program; nothing repeats them as constants.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sigverify.errors import MetricUnavailableError, ModelError
from sigverify.imaging.preprocess import PreprocessConfig

CARD_FORMAT = "sigverify-model-card/1"
METRICS = ("euclidean", "cosine")


@dataclass
class MetricCalibration:
    """Thresholds and score mapping for one distance metric, fitted on validation writers."""

    accept: float  # distance <= accept -> "genuine"
    reject: float  # distance > reject -> "forgery"; between: "refer to a supervisor"
    eer_threshold: float  # the global threshold reported as FAR / FRR in the card
    score_a: float  # P(same writer | d) = 1 / (1 + exp(score_a * (d - score_b)))
    score_b: float
    ref_spread: float  # mean distance between two genuine signatures of one validation writer

    @classmethod
    def from_dict(cls, d: dict) -> "MetricCalibration":
        return cls(**{k: float(d[k]) for k in ("accept", "reject", "eer_threshold", "score_a", "score_b", "ref_spread")})


def placeholder_calibration() -> dict:
    """Thresholds for untrained weights: plausible for unit vectors, but meaningless (marked so)."""
    return {
        "euclidean": MetricCalibration(0.6, 0.9, 0.75, 10.0, 0.75, 0.6).__dict__,
        "cosine": MetricCalibration(0.18, 0.4, 0.28, 20.0, 0.28, 0.18).__dict__,
    }


@dataclass
class ModelCard:
    name: str
    architecture: str
    embedding_dim: int = 128
    preprocessing: dict = field(default_factory=lambda: PreprocessConfig().to_dict())
    distance: str = "euclidean"
    calibration: dict = field(default_factory=dict)  # metric -> MetricCalibration dict
    random_init: bool = False
    weights_sha256: str = ""
    created: str = ""
    version: str = "1"
    base_model: str | None = None
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    intended_use: str = (
        "Decision support for bank clerks comparing a questioned signature with an account holder's "
        "reference signatures. Verdicts are advisory; 'refer' and 'forgery' go to a supervisor. A bank "
        "should fine-tune on its own reference signatures (Training wizard / sigverify-cli finetune)."
    )
    format: str = CARD_FORMAT

    @property
    def preprocess_config(self) -> PreprocessConfig:
        return PreprocessConfig.from_dict(self.preprocessing)

    @property
    def input_hw(self) -> tuple[int, int]:
        c = self.preprocess_config
        return (c.input_height, c.input_width)

    def metric_calibration(self, metric: str | None = None) -> MetricCalibration:
        metric = metric or self.distance
        if metric not in METRICS:
            raise MetricUnavailableError(f"unknown distance metric {metric!r} (use {' or '.join(METRICS)})", metric)
        if metric not in self.calibration:
            raise MetricUnavailableError(f"model {self.name!r} has no calibration for the {metric} distance", metric)
        return MetricCalibration.from_dict(self.calibration[metric])

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelCard":
        if not isinstance(d, dict) or d.get("format") != CARD_FORMAT:
            raise ModelError("not a sigverify model card (missing or wrong 'format')")
        known = set(cls.__dataclass_fields__)
        missing = [k for k in ("name", "architecture") if k not in d]
        if missing:
            raise ModelError(f"model card lacks {', '.join(missing)}")
        card = cls(**{k: v for k, v in d.items() if k in known})
        for m, cal in card.calibration.items():
            try:
                MetricCalibration.from_dict(cal)
            except (KeyError, TypeError, ValueError) as exc:
                raise ModelError(f"model card calibration for {m} is incomplete: {exc}") from exc
        return card

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ModelCard":
        p = Path(path)
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ModelError(f"{p.name}: model card not found (expected beside the weights)") from exc
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"{p.name}: model card is not valid JSON ({exc})") from exc
        return cls.from_dict(d)


def card_path_for(weights_path: str | os.PathLike) -> Path:
    p = Path(weights_path)
    return p.with_suffix(".json")
