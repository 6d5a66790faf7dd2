"""The supervisor's referral queue and four-eyes review (Qt-free).

A *case* is one verification in the audit trail (``audit_verifications.id``; the app layer's string
case id in ``details["case_id"]`` finds it too). Its state follows from the append-only records alone:

- ``open``             no decision yet: the clerk still has to decide;
- ``awaiting_review``  the clerk's latest decision needs a supervisor (``needs_review``): the clerk
                       referred it, or the clerk's decision overrides the model's verdict (four eyes),
                       except a clerk's outright *reject* of a refer / forgery verdict (refusing is never
                       an override that needs a second pair of eyes);
- ``closed``           the clerk's decision agrees with the verdict, or a supervisor reviewed it.

A supervisor (or an administrator) reviews with ``approve`` or ``reject`` and a reason. The review
appends a final decision to ``audit_decisions`` (source ``supervisor``) *and* a ``case_approved`` /
``case_rejected`` event to ``operator_events``; the reviewer must be another operator than the clerk
whose decision is reviewed (in a single-user install the one operator reviews and the event says so).

What the final decision is:

| clerk's decision | approve | reject |
| --- | --- | --- |
| accept (an override) | accept | reject |
| reject (an override of *genuine*) | reject | accept |
| refer | accept (the signature is the customer's) | reject |
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from sigverify.errors import SigverifyError
from sigverify.hashing import sha256_bytes, sha256_file
from sigverify.store.audit import VERDICT_DECISION, AuditRecord, Decision
from sigverify.store.operators import Operator, OperatorEvent, OperatorStore, require_role

OPEN, AWAITING, CLOSED = "open", "awaiting_review", "closed"
REVIEW_EVENTS = ("case_approved", "case_rejected")
SUPERVISOR_SOURCE = "supervisor"


def needs_review(verdict: str, decision: str) -> bool:
    """Does a clerk's ``decision`` on a ``verdict`` need a supervisor before the case closes?"""
    if decision == "refer":
        return True
    if VERDICT_DECISION.get(verdict) == decision:
        return False
    # an override: only refusing a refer / forgery outright closes without review
    return not (decision == "reject" and verdict in ("refer", "forgery"))


def final_decision(clerk_decision: str, approve: bool) -> str:
    if clerk_decision == "refer":
        return "accept" if approve else "reject"
    if approve:
        return clerk_decision
    return "reject" if clerk_decision == "accept" else "accept"


class CaseNotFound(SigverifyError):
    """No such case in the audit trail (CLI exit code 3)."""


@dataclass
class Case:
    record: AuditRecord
    status: str
    clerk_decision: Decision | None  # the decision a supervisor reviews / reviewed (None: open)
    review: OperatorEvent | None = None
    events: list[OperatorEvent] = field(default_factory=list)
    threshold_override: float | None = None  # multiplier in force for the customer now

    @property
    def id(self) -> int:
        return self.record.id

    @property
    def final(self) -> Decision | None:
        return self.record.final_decision

    @property
    def why(self) -> str:
        d = self.clerk_decision
        if d is None:
            return "waiting for the clerk's decision"
        if d.decision == "refer":
            return "referred by the clerk"
        if d.overrides_verdict:
            return f"clerk's {d.decision} overrides the model's {self.record.verdict} verdict (four eyes)"
        return ""

    def to_dict(self) -> dict:
        d = {
            "case_id": self.id,
            "app_case_id": (self.record.details or {}).get("case_id"),
            "status": self.status,
            "why": self.why,
            "customer_id": self.record.customer_id,
            "verdict": self.record.verdict,
            "distance": self.record.distance,
            "score": self.record.score,
            "threshold_accept": self.record.threshold_accept,
            "threshold_reject": self.record.threshold_reject,
            "questioned_name": self.record.questioned_name,
            "questioned_sha256": self.record.questioned_sha256,
            "time_utc": self.record.time_utc,
            "operator": self.record.operator,
            "clerk_decision": None if self.clerk_decision is None else self.clerk_decision.decision,
            "clerk_operator": None if self.clerk_decision is None else self.clerk_decision.operator,
            "clerk_note": None if self.clerk_decision is None else self.clerk_decision.reason,
            "final_decision": None if self.final is None else self.final.decision,
            "review": None if self.review is None else self.review.to_dict(),
            "threshold_override": self.threshold_override,
        }
        return d


class ReferralQueue:
    """Cases, the queue of those awaiting a supervisor, and the review itself, over one library."""

    def __init__(self, library, store: OperatorStore | None = None):
        self.library = library
        self.store = store or OperatorStore.for_library(library)

    # ---- reading ----
    def _record(self, case_id: int | str) -> AuditRecord:
        rec = None
        key = str(case_id).strip().lstrip("#")
        if key.isdigit():
            rec = self.library.audit.get(int(key))
        if rec is None and key:
            for r in self.library.audit.records(newest_first=True):
                if str((r.details or {}).get("case_id", "")) == key:
                    rec = r
                    break
        if rec is None:
            raise CaseNotFound(
                f"no case {case_id!r} in the audit trail (use the audit record id shown in the "
                "history, e.g. `sigverify-cli audit history CUSTOMER`)"
            )
        return rec

    def _build(self, rec: AuditRecord, events: list[OperatorEvent] | None = None) -> Case:
        events = self.store.events(case_id=rec.id) if events is None else events
        reviews = [e for e in events if e.event in REVIEW_EVENTS]
        decs = [d for d in rec.decisions if d.source != SUPERVISOR_SOURCE]
        clerk = decs[-1] if decs else None
        review = None
        if clerk is not None:
            review = next((e for e in reversed(reviews) if e.details.get("clerk_decision_id") == clerk.id), None)
        ov = self.store.threshold_override(rec.customer_id)
        if clerk is None:
            status = OPEN
        elif review is not None:
            status = CLOSED
        elif (
            rec.final_decision is not None and rec.final_decision.source == SUPERVISOR_SOURCE and rec.final_decision.id > clerk.id
        ):
            status = CLOSED
        else:
            status = AWAITING if needs_review(rec.verdict, clerk.decision) else CLOSED
        return Case(rec, status, clerk, review, events, None if ov is None else ov.scale)

    def case(self, case_id: int | str) -> Case:
        return self._build(self._record(case_id))

    def cases(self, status: str | None = None, customer_id: str | None = None) -> list[Case]:
        recs = self.library.audit.records(customer_id)
        by_case: dict[int, list[OperatorEvent]] = {}
        for e in self.store.events():
            if e.case_id is not None:
                by_case.setdefault(int(e.case_id), []).append(e)
        from sigverify.app.settings_audit import is_setting_note  # a note in the trail is not a case

        out = [self._build(r, by_case.get(r.id, [])) for r in recs if not is_setting_note(r)]
        return [c for c in out if status is None or c.status == status]

    def queue(self) -> list[Case]:
        """Cases awaiting a supervisor, oldest first."""
        return self.cases(AWAITING)

    # ---- clerk ----
    def decide(self, clerk: Operator, case_id: int | str, decision: str, note: str = "", source: str = "clerk") -> Case:
        """The clerk's decision on a case (recorded under the signed-in operator). A closed case cannot
        be decided again; a decision that needs review puts the case in the queue."""
        require_role(clerk, "clerk", "deciding a case")
        c = self.case(case_id)
        if c.status == CLOSED and c.review is not None:
            raise SigverifyError(f"case #{c.id} was reviewed by a supervisor and is closed")
        if c.status == AWAITING:
            raise SigverifyError(f"case #{c.id} is waiting for a supervisor's review")
        did = self.library.audit.append_decision(c.id, decision, note, operator=clerk.username, source=source)
        c = self.case(c.id)
        if c.status == AWAITING:
            self.store.log(clerk, "case_referred", c.id, c.record.customer_id, note, {"clerk_decision_id": did, "why": c.why})
        return c

    def refer(self, clerk: Operator, case_id: int | str, note: str = "") -> Case:
        return self.decide(clerk, case_id, "refer", note)

    # ---- supervisor ----
    def review(self, supervisor: Operator, case_id: int | str, approve: bool, reason: str) -> Case:
        """Approve or reject the clerk's decision on a queued case (reason required, four eyes)."""
        require_role(supervisor, "supervisor", "reviewing a referred case")
        reason = (reason or "").strip()
        if not reason:
            raise SigverifyError("a reason is required to approve or reject a case")
        c = self.case(case_id)
        if c.status != AWAITING:
            raise SigverifyError(f"case #{c.id} is not waiting for review (it is {c.status.replace('_', ' ')})")
        clerk = c.clerk_decision
        clerk_op = self.store.get(clerk.operator)
        single = self.store.mode == "single"
        if not single and (
            clerk_op is None or clerk_op.id == supervisor.id or clerk.operator.lower() == supervisor.username.lower()
        ):
            raise SigverifyError(
                f"four eyes: the case must be reviewed by another operator than the clerk who decided it ({clerk.operator})"
            )
        final = final_decision(clerk.decision, approve)
        did = self.library.audit.append_decision(c.id, final, reason, operator=supervisor.username, source=SUPERVISOR_SOURCE)
        self.store.log(
            supervisor,
            "case_approved" if approve else "case_rejected",
            c.id,
            c.record.customer_id,
            reason,
            {
                "clerk_decision_id": clerk.id,
                "clerk_decision": clerk.decision,
                "clerk_operator": clerk.operator,
                "final_decision": final,
                "final_decision_id": did,
                "single_user_self_review": single,
            },
        )
        return self.case(c.id)

    # ---- the questioned image kept with the case ----
    def attach_questioned(
        self, case_id: int | str, path: str | os.PathLike | None = None, *, data: bytes | None = None, name: str | None = None
    ) -> bool:
        """Keep the questioned file with the case (for the review and the report). Its SHA-256 must be
        the one in the audit record, so a different file cannot be attached."""
        rec = self._record(case_id)
        if path is not None:
            digest = sha256_file(path)
            data = open(path, "rb").read()
            name = name or os.path.basename(str(path))
        elif data is not None:
            digest = sha256_bytes(data)
        else:
            raise ValueError("a path or the data is needed")
        if digest != rec.questioned_sha256:
            raise SigverifyError(
                f"{name or 'the file'} is not the questioned file of case #{rec.id} "
                f"(SHA-256 {digest[:12]}... differs from {rec.questioned_sha256[:12]}...)"
            )
        return self.store.put_case_image(rec.id, name or rec.questioned_name, data, digest)

    def attach_questioned_array(self, case_id: int | str, original, name: str | None = None) -> bool:
        """Keep an in-memory questioned image (pasted, not a file): stored as PNG; its audit digest is
        ``array:`` + the SHA-256 of the raw array bytes, checked here."""
        import numpy as np

        rec = self._record(case_id)
        arr = np.ascontiguousarray(original)
        digest = "array:" + sha256_bytes(arr.tobytes())
        if digest != rec.questioned_sha256:
            raise SigverifyError(f"the image is not the questioned image of case #{rec.id}")
        import io

        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "PNG")
        return self.store.put_case_image(rec.id, name or rec.questioned_name, buf.getvalue(), digest)


__all__ = ["ReferralQueue", "Case", "CaseNotFound", "needs_review", "final_decision", "OPEN", "AWAITING", "CLOSED"]
