"""The case: a questioned signature against a reference set -> one decision -> at most one audit record.

A case is the unit of work of a clerk. Its references are either a customer's library specimens or
ad-hoc files (the CLI's ``verify``, or files dropped into the GUI). ``decide`` is the one entry point
that turns embeddings into a decision (it lands in ``Verifier.decide_embeddings``, the only caller of
``verify_against_references``); batch, the library service, the CLI and the GUI all use it.

Re-running the same case (same questioned file bytes and crop rectangle, same references, same model)
does not append a second audit record: ``record_case`` finds the earlier one by its case key and marks the case
``rerun`` with the earlier case id and audit id.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from sigverify.errors import SigverifyError
from sigverify.hashing import sha256_bytes
from sigverify.store.audit import entry_from_decision, questioned_identity
from sigverify.verify.reference import ReferenceDecision
from sigverify.verify.service import Signature, Verifier

UNTRAINED_WARNING = "UNTRAINED random weights: results are meaningless"


def decide(verifier: Verifier, q_emb: np.ndarray, ref_embs: np.ndarray, **options) -> ReferenceDecision:
    """The decision for one questioned embedding against (N, D) reference embeddings under the
    verifier's policy (metric, calibration, aggregate, per-person adaptation). ``options`` go on to
    ``verify_against_references`` (cohort normalisation, policy calibration, ... as they are added)."""
    ref_embs = np.atleast_2d(np.asarray(ref_embs))
    if len(ref_embs) == 0:
        raise SigverifyError("no usable reference signature")
    return verifier.decide_embeddings(np.asarray(q_emb), ref_embs, **options)


def new_case_id() -> str:
    return uuid.uuid4().hex[:12]


def reference_identity(sig: Signature) -> str:
    """What makes a reference the same reference: its library id, else the SHA-256 of its bytes."""
    if sig.reference_id is not None:
        return f"ref:{int(sig.reference_id)}"
    return questioned_identity(sig)[1]


def case_key(
    questioned_sha256: str,
    reference_identities: Sequence[str],
    model_id: str,
    customer_id: str | None = None,
    crop: Sequence[int] | None = None,
) -> str:
    """Same questioned bytes + same set of references + same model (+ customer, + the clerk's crop
    rectangle when one was drawn) -> same key."""
    d = {"q": questioned_sha256, "refs": sorted(reference_identities), "model": model_id, "customer": customer_id or ""}
    if crop:
        d["crop"] = [int(v) for v in crop]
    payload = json.dumps(d, sort_keys=True)
    return sha256_bytes(payload.encode("utf-8"))


@dataclass
class Case:
    case_id: str
    customer_id: str | None
    questioned: Signature
    references: list[Signature]
    decision: ReferenceDecision
    questioned_name: str
    questioned_sha256: str
    reference_keys: list[str]  # reference_identity() of each reference, in order
    model_id: str
    weights_sha256: str
    metric: str
    random_weights: bool
    elapsed_ms: float = 0.0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # reference files that failed: (path, error)
    audit_id: int | None = None
    rerun: bool = False  # True: this case was recorded before; audit_id / case_id are the earlier ones

    @property
    def crop(self) -> tuple[int, int, int, int] | None:
        """The rectangle the clerk chose on the questioned scan (None: the automatic region). Part of
        the case: a re-crop is a different comparison and gets a record of its own."""
        pre = self.questioned.preprocessed
        if pre is None or getattr(pre, "region_source", None) != "crop" or not getattr(pre, "region", None):
            return None
        return tuple(int(v) for v in pre.region)

    @property
    def key(self) -> str:
        return case_key(self.questioned_sha256, self.reference_keys, self.model_id, self.customer_id, self.crop)

    @property
    def reference_ids(self) -> list[int]:
        return [int(r.reference_id) for r in self.references if r.reference_id is not None]

    @property
    def verdict(self) -> str:
        return self.decision.verdict.zone

    @property
    def recorded(self) -> bool:
        return self.audit_id is not None

    def to_dict(self) -> dict:
        d = {
            "case_id": self.case_id,
            "customer": self.customer_id,
            "questioned": self.questioned.source,
            "questioned_sha256": self.questioned_sha256,
            "references": [r.source for r in self.references],
            "reference_ids": self.reference_ids,
            "metric": self.metric,
            "model": self.model_id,
            "random_weights": self.random_weights,
            "elapsed_ms": round(self.elapsed_ms, 2),
            "audit_id": self.audit_id,
            "rerun": self.rerun,
        }
        d.update(self.decision.to_dict())
        if self.skipped:
            d["skipped_references"] = [{"path": p, "error": e} for p, e in self.skipped]
        if self.random_weights:
            d["warning"] = UNTRAINED_WARNING
        return d

    def to_result(self):
        """The core ``VerificationResult`` view of this case (what the GUI panes show)."""
        from sigverify.verify.service import VerificationResult

        return VerificationResult(
            self.questioned,
            list(self.references),
            self.decision,
            self.metric,
            self.model_id,
            self.random_weights,
            self.elapsed_ms,
            list(self.skipped),
        )


def build_case(
    verifier: Verifier,
    questioned: str | os.PathLike | Signature,
    references: Sequence[str | os.PathLike | Signature],
    *,
    customer_id: str | None = None,
    keep_stages: bool = False,
    case_id: str | None = None,
    **options,
) -> Case:
    """Load what is not loaded yet (folders expand to their images; bad reference files are skipped
    and reported; a bad questioned file, or no usable reference, raises) and decide. Nothing is recorded."""
    t0 = time.perf_counter()
    q = questioned if isinstance(questioned, Signature) else verifier.load(questioned, keep_stages)
    refs, skipped = verifier.load_references(references, keep_stages)
    dec = decide(verifier, q.embedding, np.stack([r.embedding for r in refs]), **options)
    name, digest = questioned_identity(q)
    card = verifier.card
    return Case(
        case_id or new_case_id(),
        customer_id,
        q,
        refs,
        dec,
        name,
        digest,
        [reference_identity(r) for r in refs],
        verifier.model.model_id,
        card.weights_sha256 or "",
        verifier.metric,
        bool(card.random_init),
        (time.perf_counter() - t0) * 1000,
        skipped,
    )


def find_recorded(library, key: str, customer_id: str | None = None):
    """The earlier audit record of the case with ``key`` (newest first), or None."""
    for rec in library.audit.records(customer_id, newest_first=True):
        if (rec.details or {}).get("case_key") == key:
            return rec
    return None


def record_case(
    case: Case, library, *, verifier: Verifier, source: str = "gui", operator: str | None = None, details: dict | None = None
) -> Case:
    """Append the case to ``library``'s audit log, once: a re-run of a recorded case (same key) gets the
    earlier case id and audit id and ``rerun=True``, and nothing is appended. Returns ``case``."""
    if case.audit_id is not None:
        return case
    key = case.key
    earlier = find_recorded(library, key, case.customer_id)
    if earlier is not None:
        case.audit_id = int(earlier.id)
        case.case_id = str(earlier.details.get("case_id") or case.case_id)
        case.rerun = True
        return case
    det = {"case_id": case.case_id, "case_key": key, "elapsed_ms": round(float(case.elapsed_ms), 2)}
    pre = case.questioned.preprocessed
    if getattr(pre, "region", None):  # where on the scan the signature was taken from, and how
        det["questioned_region"] = [int(v) for v in pre.region]
        det["region_source"] = pre.region_source
    override = float(getattr(case.decision, "threshold_override", 1.0))
    if override != 1.0:  # a supervisor's per-customer threshold multiplier was applied
        det["threshold_override"] = override
    det.update(details or {})
    entry = entry_from_decision(
        case.decision, case.questioned_name, case.questioned_sha256, verifier, case.customer_id, case.reference_ids, det
    )
    entry.model_id, entry.metric = case.model_id, case.metric
    case.audit_id = library.audit.append_verification(entry, source, operator)
    return case


def verify_case(
    verifier: Verifier,
    questioned: str | os.PathLike | Signature,
    references: Sequence[str | os.PathLike | Signature],
    *,
    library=None,
    customer_id: str | None = None,
    record: bool = True,
    source: str = "cli",
    operator: str | None = None,
    keep_stages: bool = False,
    **options,
) -> Case:
    """``build_case`` and, with a ``library`` and ``record``, ``record_case``."""
    case = build_case(verifier, questioned, references, customer_id=customer_id, keep_stages=keep_stages, **options)
    if library is not None and record:
        record_case(case, library, verifier=verifier, source=source, operator=operator)
    return case


__all__ = [
    "Case",
    "decide",
    "build_case",
    "record_case",
    "verify_case",
    "find_recorded",
    "case_key",
    "reference_identity",
    "new_case_id",
]
