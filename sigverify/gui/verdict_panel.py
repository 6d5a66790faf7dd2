"""The verdict panel: which questioned file the verdict belongs to, the distance gauge, the clerk's
decision controls and the numbers behind the verdict.

The decision controls live here (no floating popup) and follow the verdict's safe side:

- the button that agrees with the verdict (Accept on genuine, Refer on refer, Reject on forgery) is the
  default one and gets the keyboard focus when a verdict arrives: Enter or Space records it;
- a button that disagrees with the verdict only *starts* an override: a reason is required and the
  override is recorded with "Record override" (never the default button, never by a bare Enter);
- once a decision is recorded the buttons are disabled until the next case, so a repeated Enter
  records nothing.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QLineEdit, QPushButton, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

from sigverify.gui.gauge import DistanceGauge
from sigverify.gui.panes import ElidedLabel

DECISION_TEXT = {"accept": "&Accept", "refer": "Re&fer", "reject": "&Reject"}
DECISION_WORD = {"accept": "accept", "refer": "refer", "reject": "reject"}
#: the clerk decision that agrees with each verdict zone (the same table as the audit log's)
SAFE_DECISION = {"genuine": "accept", "refer": "refer", "forgery": "reject"}
ZONE_COLOUR = {"genuine": "#00694C", "refer": "#8A5C00", "forgery": "#A63A00"}


def _min_width_for(button: QPushButton) -> None:
    """The button is never narrower than its full text (no shortened labels)."""
    fm = button.fontMetrics()
    button.setMinimumWidth(fm.horizontalAdvance(button.text().replace("&", "")) + 28)


class DecisionControls(QFrame):
    """Accept / Refer / Reject for the current case, plus the reason an override needs."""

    decided = Signal(str, str)  # decision, reason (the case controller records it)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("decision")
        self._verdict: str | None = None
        self._override: str | None = None
        self._recorded = False
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 0)
        lay.setSpacing(4)
        self.prompt = QLabel("Your decision")
        self.prompt.setObjectName("decisionPrompt")
        self.prompt.setWordWrap(True)
        lay.addWidget(self.prompt)
        row = QHBoxLayout()
        row.setSpacing(6)
        self.buttons: dict[str, QPushButton] = {}
        for d in ("accept", "refer", "reject"):
            b = QPushButton(DECISION_TEXT[d])
            b.setObjectName(f"decide_{d}")
            b.setAutoDefault(False)
            b.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            b.clicked.connect(lambda _=False, d=d: self.choose(d))
            _min_width_for(b)
            b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            self.buttons[d] = b
            row.addWidget(b)
        lay.addLayout(row)
        self.override_row = QWidget()
        orow = QVBoxLayout(self.override_row)
        orow.setContentsMargins(0, 0, 0, 0)
        orow.setSpacing(4)
        self.override_label = QLabel()
        self.override_label.setWordWrap(True)
        self.override_label.setStyleSheet("color:#8a1c12;")
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("Reason for overriding the verdict (required)")
        self.reason.setAccessibleName("Reason for the override")
        self.reason.textChanged.connect(self._reason_changed)
        self.override_label.setBuddy(self.reason)
        brow = QHBoxLayout()
        brow.setContentsMargins(0, 0, 0, 0)
        self.confirm = QPushButton("Record &override")
        self.confirm.setAutoDefault(False)
        self.confirm.setDefault(False)
        self.confirm.clicked.connect(self._confirm_override)
        _min_width_for(self.confirm)
        self.back = QPushButton("Ca&ncel")
        self.back.setAutoDefault(False)
        self.back.clicked.connect(self.cancel_override)
        _min_width_for(self.back)
        brow.addWidget(self.confirm)
        brow.addWidget(self.back)
        brow.addStretch(1)
        orow.addWidget(self.override_label)
        orow.addWidget(self.reason)
        orow.addLayout(brow)
        lay.addWidget(self.override_row)
        self.override_row.hide()
        self.state = QLabel("")
        self.state.setObjectName("decisionState")
        self.state.setWordWrap(True)
        lay.addWidget(self.state)
        self.reset(None)

    # -- state ----------------------------------------------------------------------------------
    def reset(self, verdict: str | None, note: str = "", focus: bool = False) -> None:
        """A new case with ``verdict`` (None: nothing to decide). ``focus`` moves the keyboard focus to
        the button on the verdict's safe side."""
        self._verdict = verdict
        self._recorded = False
        self.cancel_override()
        safe = SAFE_DECISION.get(verdict or "")
        for d, b in self.buttons.items():
            b.setEnabled(verdict is not None)
            b.setAutoDefault(d == safe)  # Enter on the focused safe button records it; the others ignore Enter
            b.setDefault(d == safe)
        if verdict is None:
            self.prompt.setText("Your decision (after a comparison)")
            self.state.setText(note)
            return
        self.prompt.setText(f"Your decision (suggested: <b>{DECISION_WORD[safe]}</b>)")
        self.state.setText(note or "Not decided yet.")
        if focus:
            self.buttons[safe].setFocus(Qt.FocusReason.OtherFocusReason)

    def set_recorded(self, decision: str, text: str) -> None:
        """The case's decision is recorded: nothing more to decide until the next case."""
        self._recorded = True
        self.cancel_override()
        for b in self.buttons.values():
            b.setEnabled(False)
            b.setDefault(False)
            b.setAutoDefault(False)
        self.state.setText(text)

    def set_note(self, text: str) -> None:
        self.state.setText(text)

    def verdict(self) -> str | None:
        return self._verdict

    def safe_decision(self) -> str | None:
        return SAFE_DECISION.get(self._verdict or "")

    def is_recorded(self) -> bool:
        return self._recorded

    def in_override(self) -> str | None:
        return self._override

    # -- actions ---------------------------------------------------------------------------------
    def choose(self, decision: str) -> None:
        if self._verdict is None or self._recorded or decision not in self.buttons:
            return
        if decision == self.safe_decision():
            self.decided.emit(decision, "")
            return
        self._override = decision
        self.override_label.setText(
            f"Override: <b>{DECISION_WORD[decision]}</b> although the verdict suggests "
            f"<b>{DECISION_WORD[self.safe_decision()]}</b>. A reason is required."
        )
        self.reason.clear()
        self.confirm.setEnabled(False)
        self.override_row.show()
        self.reason.setFocus(Qt.FocusReason.OtherFocusReason)

    def _reason_changed(self, text: str) -> None:
        self.confirm.setEnabled(bool(text.strip()) and self._override is not None)

    def _confirm_override(self) -> None:
        reason = self.reason.text().strip()
        if self._override is None or not reason or self._recorded:
            return
        d = self._override
        self.decided.emit(d, reason)

    def cancel_override(self) -> None:
        self._override = None
        self.reason.clear()
        self.override_row.hide()

    def keyPressEvent(self, e) -> None:  # noqa: N802
        if e.key() == Qt.Key.Key_Escape and self._override is not None:
            self.cancel_override()
            safe = self.safe_decision()
            if safe:
                self.buttons[safe].setFocus()
            return
        super().keyPressEvent(e)


class VerdictPanel(QFrame):
    """Right-hand panel: questioned file name, gauge, decision controls, details."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("pane")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 10, 12, 10)
        lay.setSpacing(4)
        t = QLabel("Verdict")
        t.setObjectName("paneTitle")
        t.setMinimumWidth(t.fontMetrics().horizontalAdvance("Verdict") + 8)
        lay.addWidget(t)
        self.file_label = ElidedLabel("")  # a long file name is shortened in the middle (tooltip: the path)
        self.file_label.setObjectName("paneCaption")
        lay.addWidget(self.file_label)
        self.rerun_label = QLabel("")
        self.rerun_label.setObjectName("rerun")
        self.rerun_label.setWordWrap(True)
        self.rerun_label.hide()
        lay.addWidget(self.rerun_label)
        self.gauge = DistanceGauge()
        lay.addWidget(self.gauge, 3)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color:#8a1c12;")
        self.message.hide()
        lay.addWidget(self.message)
        self.decision = DecisionControls()
        lay.addWidget(self.decision)
        self.details = QLabel()
        self.details.setObjectName("details")
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details_scroll = QScrollArea()
        self.details_scroll.setWidgetResizable(True)
        self.details_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.details_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.details_scroll.setWidget(self.details)
        self.details_scroll.setMinimumHeight(30)
        # the gauge gets the height first; the numbers (also on the gauge) scroll when space is short
        self.details_scroll.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Ignored)
        lay.addWidget(self.details_scroll, 1)
        note = QLabel("Advisory: Refer and Forgery cases go to a supervisor.")
        note.setObjectName("paneCaption")
        note.setWordWrap(True)
        lay.addWidget(note)
        self.note = note

    def set_questioned_name(self, source: str | None) -> None:
        if not source:
            self.file_label.setText("")
            self.file_label.setToolTip("")
            return
        name = Path(str(source)).name if "://" not in str(source) else str(source)
        self.file_label.setText(f"Questioned: {name}")
        self.file_label.setToolTip(str(source))

    def questioned_name(self) -> str:
        return self.file_label.text()

    def show_message(self, text: str) -> None:
        self.message.setText("\u26a0 " + text if text else "")
        self.message.setVisible(bool(text))

    def set_rerun(self, text: str) -> None:
        self.rerun_label.setText(text)
        self.rerun_label.setVisible(bool(text))

    def show_empty(self, calibration=None) -> None:
        """No verdict: the gauge keeps the active model's thresholds, the numbers are cleared."""
        if calibration is not None:
            self.gauge.set_thresholds(calibration.accept, calibration.reject, calibration.reject * 1.6)
        self.gauge.clear()
        self.set_questioned_name(None)
        self.set_rerun("")
        self.details.setText(
            "<p style='color:#5f6b77'>Load a customer (Ctrl+K) or drop the account holder's "
            "reference signatures on the left pane, and the signature to verify on the middle "
            "pane (F5 tries a sample).</p>"
        )

    def show_result(self, res) -> None:
        dec = res.decision
        vd = dec.verdict
        mx = max(vd.reject * 1.6, max(dec.distances) * 1.05, vd.accept * 1.2)
        self.gauge.set_thresholds(vd.accept, vd.reject, mx)
        n = len(dec.distances)
        cap = f"{dec.aggregate} of {n} references" if n > 1 else "1 reference"
        self.gauge.set_result(vd.distance, vd.score, vd.zone, dec.distances if n > 1 else None, cap)
        self.set_questioned_name(res.questioned.source)
        rows = [
            ("Distance", f"{vd.distance:.3f} ({cap}, {res.metric})"),
            ("Genuine if", f"\u2264 {vd.accept:.3f}"),
            ("Forgery if", f"&gt; {vd.reject:.3f}"),
        ]
        if abs(dec.person_scale - 1.0) > 1e-6:
            rows.append(("Person", f"thresholds \u00d7{dec.person_scale:.2f} (own variation)"))
        if n > 1:
            rows.append(("Per ref.", ", ".join(f"#{i + 1} {d:.3f}" for i, d in enumerate(dec.distances))))
        rows.append(("Time", f"{res.elapsed_ms:.0f} ms"))
        table = "".join(f"<tr><td style='color:#5f6b77; padding-right:10px'>{k}</td><td>{val}</td></tr>" for k, val in rows)
        extra = "".join(f"<p style='color:#6b4500; margin-top:4px'>\u26a0 {html.escape(w)}</p>" for w in dec.warnings)
        if res.random_weights:
            extra += "<p style='color:#6b4500; margin-top:4px'><b>Untrained model:</b> this verdict is meaningless.</p>"
        self.details.setText(f"<table cellspacing='0' cellpadding='1'>{table}</table>{extra}")


__all__ = ["VerdictPanel", "DecisionControls", "SAFE_DECISION"]
