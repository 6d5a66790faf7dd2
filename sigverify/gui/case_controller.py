"""The case in the GUI: one customer (or ad-hoc references) + one questioned signature -> one audit
record -> one clerk decision, shown in the verdict panel.

- A verification of a *new* case (new questioned file, other references) builds the case with
  ``sigverify.app.case`` and records it once (when an audit log is open).
- Re-running the same case (same questioned bytes and the same references) after a model switch or a
  setting change is shown as a re-run ("Re-run with ...; audit record #N kept") and records nothing.
- The decision controls in the verdict panel record the clerk's decision; an override needs a reason.
- Before an undecided recorded case is replaced (new customer, new questioned signature, Clear, quit)
  the clerk is asked; "Go back" keeps the case on screen with the focus on the decision.

Nothing here touches the database directly: recording goes through ``sigverify.app.case.record_case``
and the audit log's ``append_decision``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox

from sigverify.gui.verdict_panel import SAFE_DECISION, VerdictPanel

log = logging.getLogger(__name__)

BACK, LEAVE = "back", "leave"


@dataclass
class GuiCase:
    """What the window knows about the case on screen."""

    customer_id: str | None
    identity: tuple  # case_identity(): the same case across models and settings
    case: object  # sigverify.app.case.Case of the first verification of this case
    verdict: str  # the recorded (first) verdict zone
    audit_id: int | None = None
    decision: str | None = None
    reruns: int = 0
    last_verdict: str | None = None

    @property
    def undecided(self) -> bool:
        return self.audit_id is not None and self.decision is None


def clerk_crop(questioned) -> tuple[int, ...] | None:
    """The rectangle the clerk drew on the questioned scan (Crop...), or None (automatic region)."""
    pre = getattr(questioned, "preprocessed", None)
    if pre is None or getattr(pre, "region_source", None) != "crop" or not getattr(pre, "region", None):
        return None
    return tuple(int(v) for v in pre.region)


def case_identity(case, customer_id: str | None) -> tuple:
    """What makes two verifications the same case in the window: the questioned bytes, the clerk's crop
    rectangle (a re-crop is a different comparison with a record of its own, as in ``Case.key``), the
    references and the customer - not the model or the settings (a change of those is a re-run)."""
    return (
        case.questioned_sha256,
        case.crop,
        tuple(sorted(case.reference_keys)),
        customer_id or "",
    )


def _ask_undecided(parent, text: str) -> str:
    box = QMessageBox(QMessageBox.Icon.Warning, "Undecided case", text, QMessageBox.StandardButton.NoButton, parent)
    back = box.addButton("Go &back to the case", QMessageBox.ButtonRole.RejectRole)
    leave = box.addButton("&Leave it undecided", QMessageBox.ButtonRole.DestructiveRole)
    box.setDefaultButton(back)
    box.setEscapeButton(back)
    box.exec()
    return LEAVE if box.clickedButton() is leave else BACK


class CaseController(QObject):
    """Owns the current case of one main window and its decision controls."""

    case_recorded = Signal(int)  # audit id of a newly recorded case
    decision_recorded = Signal(int, str)  # audit id, decision
    case_changed = Signal(object)  # GuiCase or None

    def __init__(self, window, panel: VerdictPanel):
        super().__init__(window)
        self.window = window
        self.panel = panel
        self.library = None  # set by the library UI: the case is recorded in its audit log
        self.customer_id: str | None = None  # the customer whose references are loaded (None: ad-hoc)
        self.current: GuiCase | None = None
        #: asked before an undecided case is replaced: ``ask(text) -> "back" | "leave"`` (tests replace it)
        self.ask: Callable[[str], str] = lambda text: _ask_undecided(self.window, text)
        self.decided_cases = 0
        panel.decision.decided.connect(self.decide)

    # -- audit log -------------------------------------------------------------------------------
    def set_library(self, library) -> None:
        self.library = library

    # -- lifecycle -------------------------------------------------------------------------------
    def may_replace(self, what: str) -> bool:
        """True when the current case may be replaced by ``what`` (e.g. "load customer C2"). An
        undecided recorded case is asked about first; "Go back" keeps it and returns False."""
        c = self.current
        if c is None or not c.undecided:
            return True
        name = Path(str(c.case.questioned.source)).name
        who = f" for {c.customer_id}" if c.customer_id else ""
        text = (
            f"The case{who} ({name}, verdict {c.verdict}, audit record #{c.audit_id}) has no decision yet.\n\n"
            f"Go back and decide it, or leave it undecided and {what}?"
        )
        if self.ask(text) == LEAVE:
            log.info("case #%s left undecided (%s)", c.audit_id, what)
            return True
        self.focus_decision()
        return False

    def focus_decision(self) -> None:
        d = self.panel.decision
        safe = d.safe_decision()
        if safe and d.buttons[safe].isEnabled():
            d.buttons[safe].setFocus()

    def new_case(self, customer_id: str | None = None) -> None:
        """Forget the case on screen (the panes were cleared or replaced)."""
        self.customer_id = customer_id
        self._set_current(None)
        self.panel.decision.reset(None)
        self.panel.set_rerun("")

    def clear_result(self) -> None:
        """No verdict on screen any more (an input is missing or failed): nothing to decide."""
        self._set_current(None)
        self.panel.decision.reset(None)

    def _set_current(self, c: GuiCase | None) -> None:
        self.current = c
        self.case_changed.emit(c)

    # -- verification ----------------------------------------------------------------------------
    def on_verified(self, verifier, questioned, references, elapsed_ms: float, skipped=()):
        """A comparison finished: build the case, record it once, update the decision controls.
        Returns the ``VerificationResult`` to show."""
        from sigverify.app.case import build_case
        from sigverify.app.operators import case_options  # a supervisor's per-customer threshold override

        opts = case_options(self.library, self.customer_id) if self.library is not None and self.customer_id else {}
        case = build_case(verifier, questioned, references, customer_id=self.customer_id, **opts)
        case.elapsed_ms = elapsed_ms
        case.skipped = list(skipped)
        identity = case_identity(case, self.customer_id)
        c = self.current
        if c is not None and c.identity == identity:
            c.reruns += 1
            c.last_verdict = case.verdict
            self._show_rerun(c, case, verifier)
            return case.to_result()
        c = GuiCase(self.customer_id, identity, case, case.verdict, last_verdict=case.verdict)
        self._record(c, case, verifier)
        self._set_current(c)
        return case.to_result()

    def _record(self, c: GuiCase, case, verifier) -> None:
        d = self.panel.decision
        self.panel.set_rerun("")
        if self.library is None:
            d.reset(case.verdict, "No audit log is open: the decision is not recorded.", focus=True)
            return
        from sigverify.app.case import record_case

        try:
            record_case(case, self.library, verifier=verifier, source="gui")
        except Exception as exc:  # noqa: BLE001 - the clerk must see it; the verdict stays on screen
            log.error("the case could not be recorded", exc_info=exc)
            d.reset(case.verdict, f"\u26a0 The case could not be written to the audit log: {exc}")
            self.window.show_error(f"The case could not be written to the audit log: {exc}")
            return
        c.audit_id = case.audit_id
        if case.rerun:
            rec = self.library.audit.get(case.audit_id)
            fd = rec.final_decision if rec is not None else None
            if fd is not None:
                c.decision = fd.decision
                d.reset(case.verdict)
                d.set_recorded(
                    fd.decision, f"Already recorded as audit #{case.audit_id}; decision: {fd.decision}. No new record."
                )
                return
            d.reset(case.verdict, f"Already recorded as audit #{case.audit_id} (no new record); not decided yet.", focus=True)
            return
        self.case_recorded.emit(int(case.audit_id))
        d.reset(case.verdict, f"Audit record #{case.audit_id} \u2014 not decided yet.", focus=True)

    def _show_rerun(self, c: GuiCase, case, verifier) -> None:
        changed = case.verdict != c.verdict
        rec = f"audit record #{c.audit_id}" if c.audit_id is not None else "the first run"
        text = (
            f"Re-run with {verifier.card.name} ({verifier.metric}, {verifier.aggregate}): verdict now "
            f"<b>{case.verdict}</b>"
            + (f" (was <b>{c.verdict}</b>)" if changed else "")
            + f". Not recorded again; {rec} keeps verdict {c.verdict}."
        )
        self.panel.set_rerun(text)

    # -- decisions -------------------------------------------------------------------------------
    def decide(self, decision: str, reason: str = "") -> bool:
        """Record the clerk's decision for the current case (the verdict panel's buttons call this)."""
        c = self.current
        if c is None:
            return False
        safe = SAFE_DECISION.get(c.verdict)
        if decision != safe and not reason.strip():
            self.panel.decision.set_note("An override needs a reason.")
            return False
        if c.decision is not None:
            return False
        text = f"Decision: {decision}" + (f" (override: {reason.strip()})" if decision != safe else "")
        if self.library is not None and c.audit_id is not None:
            try:
                self.library.audit.append_decision(c.audit_id, decision, reason.strip())
            except Exception as exc:  # noqa: BLE001
                log.error("the decision could not be recorded", exc_info=exc)
                self.panel.decision.set_note(f"\u26a0 Not recorded: {exc}")
                self.window.show_error(f"The decision could not be recorded: {exc}")
                return False
            text += f" \u2014 recorded in audit #{c.audit_id}."
            self.decision_recorded.emit(int(c.audit_id), decision)
        else:
            text += " \u2014 not recorded (no audit log open)."
        c.decision = decision
        self.decided_cases += 1
        self.panel.decision.set_recorded(decision, text)
        self.window.statusBar().showMessage(text, 8000)
        return True


__all__ = ["CaseController", "GuiCase", "case_identity", "clerk_crop", "BACK", "LEAVE"]
