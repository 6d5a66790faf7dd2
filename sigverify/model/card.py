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
    # Thresholds of the app's decision (questioned vs K specimens), fitted on validation writers by the
    # clerk's protocol: {"default": policy, "cohort": {"file", "sha256", "reg", "mix", ...},
    #  metric: {policy: {"K": MetricCalibration dict}}}; see decision_calibration.
    decision: dict = field(default_factory=dict)
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
    card_sha256: str = ""  # SHA-256 over SEALED_FIELDS, written by to_json, checked by load

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

    def decision_calibration(self, metric: str, policy: str, n_refs: int) -> tuple[MetricCalibration | None, str]:
        """Thresholds fitted for ``policy`` with the largest fitted K <= ``n_refs`` specimens (else the
        smallest K), and a label saying which; (None, "pairs") when the card has none for it."""
        by_k = ((self.decision or {}).get(metric) or {}).get(policy) or {}
        ks = sorted(int(k) for k in by_k)
        if not ks:
            return None, "pairs"
        fit = [k for k in ks if k <= n_refs]
        k = fit[-1] if fit else ks[0]
        return MetricCalibration.from_dict(by_k[str(k)]), f"K={k} specimens"

    @property
    def default_policy(self) -> str:
        return str((self.decision or {}).get("default") or "mean")

    def to_dict(self) -> dict:
        return asdict(self)

    def seal_digest(self) -> str:
        """SHA-256 over the decision-relevant fields (``SEALED_FIELDS``: the weights' hash, architecture,
        embedding size, preprocessing, metric, calibration, decision thresholds, random flag)."""
        return card_digest(self.to_dict())

    def to_json(self) -> str:
        """The card as JSON, sealed: ``card_sha256`` is recomputed over the decision-relevant fields, so
        every card the program writes is sealed and a hand edit of a threshold shows on loading."""
        self.card_sha256 = self.seal_digest()
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelCard":
        """A card from its dict; every value is validated (types and ranges, ``validate_card``)."""
        if not isinstance(d, dict) or d.get("format") != CARD_FORMAT:
            raise ModelError("not a sigverify model card (missing or wrong 'format')")
        known = set(cls.__dataclass_fields__)
        missing = [k for k in ("name", "architecture") if k not in d]
        if missing:
            raise ModelError(f"model card lacks {', '.join(missing)}")
        validate_card(d)
        card = cls(**{k: v for k, v in d.items() if k in known})
        for m, cal in card.calibration.items():
            try:
                MetricCalibration.from_dict(cal)
            except (KeyError, TypeError, ValueError) as exc:
                raise ModelError(f"model card calibration for {m} is incomplete: {exc}") from exc
        return card

    def verify_seal(self, label: str = "model card") -> None:
        """Refuse a card whose ``card_sha256`` is missing or does not match its decision fields."""
        if not self.card_sha256:
            raise ModelError(
                f"{label}: the model card is not sealed (no card_sha256: written by hand or by an "
                "older sigverify); check its thresholds and seal it with "
                "'python -m sigverify.model.card --seal FILE'; refusing it"
            )
        if self.card_sha256 != self.seal_digest():
            raise ModelError(
                f"{label}: the model card was changed after it was saved (card_sha256 does not "
                "match its decision fields: weights hash, architecture, embedding size, "
                "preprocessing, distance, calibration, decision thresholds); refusing it"
            )

    @classmethod
    def load(cls, path: str | os.PathLike, check_seal: bool = True) -> "ModelCard":
        p = Path(path)
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ModelError(f"{p.name}: model card not found (expected beside the weights)") from exc
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"{p.name}: model card is not valid JSON ({exc})") from exc
        except RecursionError as exc:
            raise ModelError(f"{p.name}: model card is nested too deeply") from exc
        card = cls.from_dict(d)
        if check_seal:
            card.verify_seal(p.name)
        return card


def card_path_for(weights_path: str | os.PathLike) -> Path:
    p = Path(weights_path)
    return p.with_suffix(".json")


# ---- seal and validation (issue 14) ------------------------------------------------------------------
#: the fields a verdict depends on; ``card_sha256`` covers exactly these
SEALED_FIELDS = (
    "format",
    "weights_sha256",
    "architecture",
    "embedding_dim",
    "preprocessing",
    "distance",
    "calibration",
    "decision",
    "random_init",
)
#: largest distance between two unit-length embeddings (Euclidean) and largest cosine distance
MAX_DISTANCE = 2.0
#: (min, max) of each preprocessing value; anything outside is refused (margin 0.6 shrinks every
#: signature to a dot, which made anyone "genuine")
PREPROCESS_RANGES = {
    "input_height": (32, 1024),
    "input_width": (32, 1024),
    "margin": (0.0, 0.3),
    "work_max_side": (64, 10000),
    "min_ink_fraction": (0.0, 0.05),
}
_CAL_KEYS = ("accept", "reject", "eer_threshold", "score_a", "score_b", "ref_spread")


def card_digest(d: dict) -> str:
    from sigverify.hashing import sha256_bytes

    sealed = {k: d.get(k) for k in SEALED_FIELDS}
    sealed["decision"] = sealed.get("decision") or {}
    return sha256_bytes(
        json.dumps(sealed, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    )


def _num(v, where: str, lo: float | None = None, hi: float | None = None, integer: bool = False) -> float:
    import math

    if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
        raise ModelError(f"model card: {where} must be {'a whole number' if integer else 'a number'} (got {v!r})")
    if not math.isfinite(float(v)):
        raise ModelError(f"model card: {where} must be finite (got {v!r})")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ModelError(f"model card: {where} = {v!r} is out of range [{lo}, {hi}]; refusing the model")
    return float(v)


WRITER_SCORE_LIMIT = 50.0


def _validate_calibration(cal, where: str, lo: float = 0.0, hi: float = MAX_DISTANCE) -> None:
    """``lo``/``hi``: the range of the score the thresholds apply to (a distance unless said otherwise)."""
    if not isinstance(cal, dict):
        raise ModelError(f"model card: {where} must be an object")
    for k in _CAL_KEYS:
        if k not in cal:
            raise ModelError(f"model card calibration for {where} is incomplete: {k!r} missing")
    for k in ("accept", "reject", "eer_threshold", "score_b"):
        _num(cal[k], f"{where}.{k}", lo, hi)
    _num(cal["ref_spread"], f"{where}.ref_spread", 0.0, MAX_DISTANCE)
    _num(cal["score_a"], f"{where}.score_a", 1e-9, 1e9)  # > 0: a negative slope would invert the score
    if cal["accept"] > cal["reject"]:
        raise ModelError(
            f"model card: {where}.accept ({cal['accept']}) is above {where}.reject ({cal['reject']}); refusing the model"
        )
    for k, v in cal.items():  # new optional keys are accepted when they are numbers
        if k == "expected" and isinstance(v, dict):  # the validation verdict rates the fit promises
            for kk, vv in v.items():
                if vv is not None:
                    _num(vv, f"{where}.expected.{kk}", 0.0, 1e9)
        elif k not in _CAL_KEYS:
            _num(v, f"{where}.{k}")


def validate_card(d: dict) -> None:
    """Check every value of a card dict (types and ranges); raises ``ModelError`` naming the field."""
    from dataclasses import fields as dc_fields

    def typed(key, types, allow_none=False):
        v = d.get(key)
        if v is None and (allow_none or key not in d):
            return
        if isinstance(v, bool) and bool not in types:
            raise ModelError(f"model card: {key} has the wrong type ({type(v).__name__})")
        if not isinstance(v, types):
            raise ModelError(f"model card: {key} has the wrong type ({type(v).__name__})")

    typed("name", (str,))
    if not str(d.get("name", "")).strip() or len(str(d.get("name", ""))) > 200:
        raise ModelError("model card: name must be 1-200 characters")
    typed("architecture", (str,))
    for k in ("weights_sha256", "created", "version", "intended_use", "card_sha256"):
        typed(k, (str,))
    typed("base_model", (str,), allow_none=True)
    for k in ("training", "metrics"):
        typed(k, (dict,))
    typed("random_init", (bool,))
    wh = d.get("weights_sha256", "")
    if wh and (len(wh) != 64 or any(c not in "0123456789abcdef" for c in wh)):
        raise ModelError("model card: weights_sha256 is not a SHA-256 hex digest")
    if "embedding_dim" in d:
        _num(d["embedding_dim"], "embedding_dim", 8, 4096, integer=True)
    if d.get("distance", "euclidean") not in METRICS:
        raise ModelError(f"model card: distance must be one of {', '.join(METRICS)} (got {d.get('distance')!r})")
    pre = d.get("preprocessing", {})
    if not isinstance(pre, dict):
        raise ModelError("model card: preprocessing must be an object")
    defaults = {f.name: f.default for f in dc_fields(PreprocessConfig)}
    for k, v in pre.items():
        if k not in defaults:
            raise ModelError(
                f"model card: unknown preprocessing setting {k!r} (this sigverify would ignore it); refusing the model"
            )
        ref = defaults[k]
        where = f"preprocessing.{k}"
        if isinstance(ref, bool):
            if not isinstance(v, bool):
                raise ModelError(f"model card: {where} must be true or false (got {v!r})")
        elif isinstance(ref, int):
            lo, hi = PREPROCESS_RANGES.get(k, (None, None))
            _num(v, where, lo, hi, integer=True)
        elif isinstance(ref, float):
            lo, hi = PREPROCESS_RANGES.get(k, (None, None))
            _num(v, where, lo, hi)
        elif isinstance(ref, str) and not isinstance(v, str):
            raise ModelError(f"model card: {where} must be text (got {v!r})")
    cal = d.get("calibration", {})
    if not isinstance(cal, dict):
        raise ModelError("model card: calibration must be an object")
    for m, c in cal.items():
        if m not in METRICS:
            raise ModelError(f"model card: calibration for unknown metric {m!r}")
        _validate_calibration(c, m)
    dec = d.get("decision", {}) or {}
    if not isinstance(dec, dict):
        raise ModelError("model card: decision must be an object")
    for m in METRICS:  # per-policy, per-K thresholds: the same ranges as the pair calibration
        by_policy = dec.get(m)
        if by_policy is None:
            continue
        if not isinstance(by_policy, dict):
            raise ModelError(f"model card: decision.{m} must be an object")
        for pol, by_k in by_policy.items():
            if not isinstance(by_k, dict):
                raise ModelError(f"model card: decision.{m}.{pol} must be an object")
            for k, c in by_k.items():
                if not str(k).isdigit() or not 1 <= int(k) <= 1000:
                    raise ModelError(f"model card: decision.{m}.{pol} key {k!r} is not a number of specimens")
                # the writer-dependent score (verify/writer.py) is not a distance: it may go below 0
                lo, hi = (-WRITER_SCORE_LIMIT, WRITER_SCORE_LIMIT) if pol == "writer" else (0.0, MAX_DISTANCE)
                _validate_calibration(c, f"decision.{m}.{pol}.{k}", lo, hi)
    if dec.get("default") is not None and dec["default"] not in ("mean", "min", "writer"):
        raise ModelError(f"model card: decision.default must be mean, min or writer (got {dec['default']!r})")
    coh = dec.get("cohort")
    if coh is not None:
        if not isinstance(coh, dict) or not isinstance(coh.get("file"), str) or "/" in coh["file"] or "\\" in coh["file"]:
            raise ModelError("model card: decision.cohort must name a file beside the model")
        _num(coh.get("reg", 0.1), "decision.cohort.reg", 1e-6, 100.0)
        _num(coh.get("mix", 0.5), "decision.cohort.mix", 0.0, 1.0)


def seal_file(path: str | os.PathLike) -> str:
    """Validate a card file and (re)write it sealed; returns the new ``card_sha256``."""
    from sigverify.atomic import write_text_atomic

    card = ModelCard.load(path, check_seal=False)
    write_text_atomic(path, card.to_json() + "\n")
    return card.card_sha256


if __name__ == "__main__":  # python -m sigverify.model.card --seal CARD.json [...]
    import sys

    args = [a for a in sys.argv[1:] if a != "--seal"]
    if "--seal" not in sys.argv[1:] or not args:
        sys.exit("usage: python -m sigverify.model.card --seal CARD.json [CARD.json ...]")
    for a in args:
        print(f"{a}: sealed {seal_file(a)}")
