"""Sign-in for the desktop app: first-run choice (single-user or sign-in with passwords), the sign-in
dialog, the idle lock, sign-out, and the Operator menu (queue, threshold override, export report).

``install_operator_ui(win)`` (called by ``gui/app.py`` after the library UI) opens the operator store on
the library database, runs the first-run choice and the sign-in (modal, before the window shows), and
makes the audit log record the signed-in operator's id. It returns the ``OperatorUI`` (also
``win.operator_ui``), or None when the clerk cancelled the sign-in (the app then quits).

Non-interactive start (``--screenshot``): single-user (or not yet set up) installs use the local
operator; a multi-user install needs ``SIGVERIFY_TOKEN`` (from ``sigverify-cli operator login
--print-token``), else ``AccessDenied`` is raised.

The core is ``sigverify.store.operators`` / ``sigverify.app.operators``; nothing here checks a password
or writes an event itself.
"""

from __future__ import annotations

import os
import time

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from sigverify.errors import SigverifyError
from sigverify.gui.comparison import SETTING_KEYS  # what confirm_verdict_change is told -> the setting key
from sigverify.store.operators import AccessDenied, Operator, OperatorStore, SignInThrottled

INPUT_EVENTS = {
    QEvent.Type.KeyPress,
    QEvent.Type.MouseButtonPress,
    QEvent.Type.MouseMove,
    QEvent.Type.Wheel,
    QEvent.Type.TouchBegin,
    QEvent.Type.Shortcut,
}


def _error_label() -> QLabel:
    lab = QLabel("")
    lab.setWordWrap(True)
    lab.setStyleSheet("color: #a3261b; font-weight: bold;")
    lab.setAccessibleName("Sign-in message")
    return lab


# ==================================================================================== dialogs
class FirstRunDialog(QDialog):
    """How sigverify is used on this computer: by one person (no sign-in) or by several (passwords)."""

    def __init__(self, store: OperatorStore, parent: QWidget | None = None):
        super().__init__(parent)
        self.store = store
        self.operator: Operator | None = None
        self.setWindowTitle("sigverify \u2014 first start")
        lay = QVBoxLayout(self)
        intro = QLabel(
            "<b>Who will use sigverify on this computer?</b><br>This is asked once. Every verification "
            "and decision is recorded in the audit trail under the operator who made it."
        )
        intro.setWordWrap(True)
        lay.addWidget(intro)
        self.single = QRadioButton("&Only me \u2014 a personal install, no sign-in (you hold every role)")
        self.multi = QRadioButton("&Several people \u2014 clerks and supervisors sign in with a password")
        grp = QButtonGroup(self)
        grp.addButton(self.single)
        grp.addButton(self.multi)
        self.multi.setChecked(True)
        lay.addWidget(self.single)
        lay.addWidget(self.multi)
        self.admin_box = QWidget()
        form = QFormLayout(self.admin_box)
        self.user = QLineEdit()
        self.user.setPlaceholderText("e.g. admin")
        self.name = QLineEdit()
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.confirm = QLineEdit()
        self.confirm.setEchoMode(QLineEdit.EchoMode.Password)
        form.addRow("Administrator &user name:", self.user)
        form.addRow("&Display name:", self.name)
        form.addRow("&Password (8+ characters):", self.password)
        form.addRow("&Repeat password:", self.confirm)
        lay.addWidget(self.admin_box)
        self.error = _error_label()
        lay.addWidget(self.error)
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        bb.button(QDialogButtonBox.StandardButton.Ok).setText("&Start")
        bb.accepted.connect(self.try_accept)
        bb.rejected.connect(self.reject)
        lay.addWidget(bb)
        self.multi.toggled.connect(self.admin_box.setEnabled)
        self.user.setFocus()

    def try_accept(self) -> bool:
        try:
            if self.single.isChecked():
                self.operator = self.store.setup_single_user()
            else:
                if self.password.text() != self.confirm.text():
                    raise SigverifyError("the two passwords differ")
                self.operator = self.store.setup_multi_user(self.user.text(), self.password.text(), self.name.text())
        except SigverifyError as exc:
            self.error.setText(str(exc))
            return False
        self.accept()
        return True


class SignInDialog(QDialog):
    """User name + password; wrong passwords, throttling and locked accounts are shown in the dialog."""

    def __init__(self, store: OperatorStore, parent: QWidget | None = None, username: str = "", locked: bool = False):
        super().__init__(parent)
        self.store = store
        self.session = None
        self.setWindowTitle("sigverify \u2014 locked" if locked else "sigverify \u2014 sign in")
        lay = QVBoxLayout(self)
        head = QLabel(
            "<b>sigverify is locked</b> after a while without use. Sign in again to go on."
            if locked
            else "<b>Sign in</b> to verify signatures."
        )
        head.setWordWrap(True)
        lay.addWidget(head)
        form = QFormLayout()
        self.user = QLineEdit(username)
        self.user.setAccessibleName("User name")
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setAccessibleName("Password")
        form.addRow("&User name:", self.user)
        form.addRow("&Password:", self.password)
        lay.addLayout(form)
        self.error = _error_label()
        lay.addWidget(self.error)
        bb = QDialogButtonBox()
        self.sign_in_button = bb.addButton("&Sign in", QDialogButtonBox.ButtonRole.AcceptRole)
        self.quit_button = bb.addButton("&Quit sigverify", QDialogButtonBox.ButtonRole.RejectRole)
        self.sign_in_button.setDefault(True)
        bb.accepted.connect(self.try_sign_in)
        bb.rejected.connect(self.reject)
        lay.addWidget(bb)
        self._retry_timer = QTimer(self)
        self._retry_timer.setSingleShot(True)
        self._retry_timer.timeout.connect(lambda: (self.sign_in_button.setEnabled(True), self.error.setText("")))
        (self.password if username else self.user).setFocus()

    def try_sign_in(self) -> bool:
        try:
            self.session = self.store.sign_in(self.user.text(), self.password.text(), source="gui")
        except SignInThrottled as exc:
            self.error.setText(str(exc))
            self.sign_in_button.setEnabled(False)
            self._retry_timer.start(int(exc.retry_after_s * 1000) + 200)
            return False
        except AccessDenied as exc:
            self.error.setText(str(exc))
            self.password.clear()
            self.password.setFocus()
            return False
        self.accept()
        return True


class UnlockDialog(QDialog):
    """Single-user lock: nothing to type, but the screen is covered until the clerk comes back."""

    def __init__(self, operator: Operator, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("sigverify \u2014 locked")
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel(f"<b>sigverify is locked</b> after a while without use.<br>Operator: {operator.label}"))
        b = QPushButton("&Continue")
        b.setDefault(True)
        b.clicked.connect(self.accept)
        lay.addWidget(b)


class ManageOperatorsDialog(QDialog):
    """Administrators: add operators, change roles, lock / unlock, reset passwords, remove (kept)."""

    def __init__(self, ui, parent: QWidget | None = None):
        from PySide6.QtWidgets import QAbstractItemView, QComboBox, QHBoxLayout, QTableWidget

        super().__init__(parent)
        self.ui = ui
        self.setWindowTitle("Operators")
        self.resize(720, 420)
        lay = QVBoxLayout(self)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["User name", "Name", "Role", "Status", "Created"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        lay.addWidget(self.table, 1)
        add = QHBoxLayout()
        self.new_user = QLineEdit()
        self.new_user.setPlaceholderText("user name")
        self.new_name = QLineEdit()
        self.new_name.setPlaceholderText("display name")
        self.new_role = QComboBox()
        self.new_role.addItems(["clerk", "supervisor", "administrator"])
        self.new_password = QLineEdit()
        self.new_password.setEchoMode(QLineEdit.EchoMode.Password)
        self.new_password.setPlaceholderText("password (8+)")
        self.add_button = QPushButton("&Add")
        self.add_button.clicked.connect(self.add_operator)
        for wdg in (self.new_user, self.new_name, self.new_role, self.new_password, self.add_button):
            add.addWidget(wdg)
        lay.addLayout(add)
        row = QHBoxLayout()
        self.role_box = QComboBox()
        self.role_box.addItems(["clerk", "supervisor", "administrator"])
        self.buttons = {}
        for key, text in (
            ("role", "Set &role"),
            ("lock", "&Lock"),
            ("unlock", "&Unlock"),
            ("password", "Reset &password\u2026"),
            ("remove", "Re&move\u2026"),
        ):
            b = QPushButton(text)
            b.clicked.connect(lambda _=False, k=key: self.act(k))
            self.buttons[key] = b
        row.addWidget(self.role_box)
        for b in self.buttons.values():
            row.addWidget(b)
        row.addStretch(1)
        lay.addLayout(row)
        self.error = _error_label()
        lay.addWidget(self.error)
        self.refresh()

    def refresh(self) -> None:
        from PySide6.QtWidgets import QTableWidgetItem

        self.ops = self.ui.store.list()
        self.table.setRowCount(len(self.ops))
        for i, o in enumerate(self.ops):
            for j, v in enumerate((o.username, o.display_name, o.role, o.status(), o.created_utc[:10])):
                self.table.setItem(i, j, QTableWidgetItem(v))
        self.table.resizeColumnsToContents()

    def selected(self) -> Operator | None:
        rows = self.table.selectionModel().selectedRows()
        return self.ops[rows[0].row()] if rows else None

    def add_operator(self) -> bool:
        try:
            self.ui.store.add(
                self.ui.operator,
                self.new_user.text(),
                self.new_password.text(),
                self.new_role.currentText(),
                self.new_name.text(),
            )
        except SigverifyError as exc:
            self.error.setText(str(exc))
            return False
        self.error.setText("")
        for e in (self.new_user, self.new_name, self.new_password):
            e.clear()
        self.refresh()
        return True

    def ask_text(self, title: str, label: str, password: bool = False) -> str | None:
        """One line of input (tests replace this)."""
        from PySide6.QtWidgets import QInputDialog

        text, ok = QInputDialog.getText(
            self, title, label, QLineEdit.EchoMode.Password if password else QLineEdit.EchoMode.Normal
        )
        return text if ok else None

    def act(self, key: str) -> bool:
        op = self.selected()
        if op is None:
            self.error.setText("choose an operator first")
            return False
        st, me = self.ui.store, self.ui.operator
        try:
            if key == "role":
                st.set_role(me, op.username, self.role_box.currentText())
            elif key == "lock":
                st.lock(me, op.username, "locked in the Operators window")
            elif key == "unlock":
                st.unlock(me, op.username, "unlocked in the Operators window")
            elif key == "password":
                pw = self.ask_text("Reset password", f"New password for {op.username}:", password=True)
                if pw is None:
                    return False
                st.set_password(me, op.username, pw)
            elif key == "remove":
                reason = self.ask_text("Remove operator", f"Why is {op.username} removed? (kept for the audit trail)")
                if reason is None:
                    return False
                st.remove(me, op.username, reason)
        except SigverifyError as exc:
            self.error.setText(str(exc))
            return False
        self.error.setText("")
        self.refresh()
        return True


# ==================================================================================== idle lock
class IdleWatcher(QObject):
    """Emits ``idle`` once when no key / mouse input reached the application for ``minutes``."""

    idle = Signal()

    def __init__(self, minutes: float, parent: QObject | None = None, clock=time.monotonic):
        super().__init__(parent)
        self.minutes = float(minutes)
        self.clock = clock
        self.last_input = clock()
        self.enabled = True
        self.timer = QTimer(self)
        self.timer.setInterval(5000)
        self.timer.timeout.connect(self.check)
        self.timer.start()
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt API
        if event.type() in INPUT_EVENTS:
            self.last_input = self.clock()
        return False

    def check(self) -> bool:
        if self.enabled and self.clock() - self.last_input >= self.minutes * 60:
            self.enabled = False  # re-armed by the unlock
            self.idle.emit()
            return True
        return False

    def rearm(self) -> None:
        self.last_input = self.clock()
        self.enabled = True

    def stop(self) -> None:
        self.timer.stop()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)


# ==================================================================================== controller
class OperatorUI(QObject):
    """The signed-in operator of one main window."""

    operator_changed = Signal(object)  # Operator
    locked_changed = Signal(bool)

    def __init__(self, window, store: OperatorStore, library):
        super().__init__(window)
        self.window = window
        self.store = store
        self.library = library
        self.operator: Operator | None = None
        self.locked = False
        self.idle = IdleWatcher(store.idle_lock_minutes, self)
        self.idle.idle.connect(self.lock)
        self.actions: dict[str, QAction] = {}
        self.queue_dialog = None

    def exec_dialog(self, dlg: QDialog) -> bool:
        """Run a modal dialog (tests replace this to drive the dialogs without a modal loop)."""
        return bool(dlg.exec())

    # ---- who ----
    @property
    def single_user(self) -> bool:
        return self.store.mode == "single"

    def set_operator(self, op: Operator) -> None:
        self.operator = op
        self.library.audit.operator = op.username  # every record names the signed-in operator id
        self.operator_changed.emit(op)
        self._update_menu()

    def start(self, interactive: bool = True, first_run: bool = True) -> bool:
        """First-run choice and sign-in. False: cancelled (the app quits).

        ``first_run=False`` (``sigverify --no-first-run``, ``SIGVERIFY_NO_FIRST_RUN=1``: screenshots, kiosk
        demos) skips only the first-run *choice* on a library where none was made yet: this start runs as
        the local operator, as the CLI does before the choice, and nothing is stored, so the next normal
        start still asks. A library that requires sign-in still asks for the password."""
        if not first_run and self.store.mode is None:
            op = self.store.single_operator()
            self.store.log(op, "signin", details={"source": "gui", "no_first_run": True})
            self.set_operator(op)
            return True
        if not interactive:
            from sigverify.app.operators import TOKEN_ENV

            if self.store.mode == "multi":
                self.set_operator(self.store.session_operator(os.environ.get(TOKEN_ENV, "")))
            else:
                self.set_operator(self.store.single_operator())
            return True
        if self.store.mode is None:
            dlg = FirstRunDialog(self.store, self.window)
            if not self.exec_dialog(dlg) or dlg.operator is None:
                return False
            if self.store.mode == "single":
                self.set_operator(dlg.operator)
                self.store.log(dlg.operator, "signin", details={"source": "gui", "single_user": True})
                return True
        if self.store.mode == "single":
            op = self.store.single_operator()
            self.store.log(op, "signin", details={"source": "gui", "single_user": True})
            self.set_operator(op)
            return True
        dlg = SignInDialog(self.store, self.window)
        if not self.exec_dialog(dlg) or dlg.session is None:
            return False
        self.set_operator(dlg.session.operator)
        return True

    # ---- lock / sign out ----
    def lock(self) -> bool:
        """Cover the window and ask for the password again (single-user: a click). False = quit."""
        if self.operator is None or self.locked:
            return True
        self.locked = True
        self.locked_changed.emit(True)
        central = self.window.centralWidget()
        if central is not None:
            central.setVisible(False)  # no customer's signature stays on an unattended screen
        self.store.log(self.operator, "idle_lock")
        ok = True
        try:
            if self.single_user:
                ok = bool(self.exec_dialog(UnlockDialog(self.operator, self.window)))
                if ok:
                    self.store.log(self.operator, "unlock")
            else:
                dlg = SignInDialog(self.store, self.window, self.operator.username, locked=True)
                ok = bool(self.exec_dialog(dlg)) and dlg.session is not None
                if ok:
                    if dlg.session.operator.id != self.operator.id:
                        self.store.sign_out(operator=self.operator)
                    self.set_operator(dlg.session.operator)
        finally:
            self.locked = False
            self.locked_changed.emit(False)
            if central is not None:
                central.setVisible(True)
            self.idle.rearm()
        if not ok:
            self.store.sign_out(operator=self.operator)
            self.window.close()
        return ok

    def sign_out(self) -> bool:
        """Sign out and show the sign-in dialog for the next operator (cancel quits)."""
        if self.single_user:
            QMessageBox.information(
                self.window,
                "Sign out",
                "This is a single-user install: there is nobody to hand over to. Use Lock (Ctrl+L) when you leave the desk.",
            )
            return False
        if hasattr(self.window, "may_replace_case") and not self.window.may_replace_case("sign out"):
            return False
        self.store.sign_out(operator=self.operator)
        self.operator = None
        self._update_menu()
        dlg = SignInDialog(self.store, self.window)
        if not self.exec_dialog(dlg) or dlg.session is None:
            self.window.close()
            return False
        self.set_operator(dlg.session.operator)
        return True

    def manage_operators(self):
        if not self.allowed("administrator", "managing operators"):
            return None
        dlg = ManageOperatorsDialog(self, self.window)
        dlg.show()
        return dlg

    # ---- roles ----
    def allowed(self, role: str, action: str) -> bool:
        """``require_role`` with a message box instead of an exception."""
        from sigverify.store.operators import require_role

        try:
            require_role(self.operator, role, action)
        except AccessDenied as exc:
            QMessageBox.warning(self.window, "Not allowed", str(exc))
            return False
        return True

    def allow_setting(self, key: str) -> bool:
        """For verdict-changing settings (``sigverify.app.operators.VERDICT_SETTINGS``): supervisor role."""
        from sigverify.app.operators import require_setting_role

        try:
            require_setting_role(self.operator, key)
        except AccessDenied as exc:
            QMessageBox.warning(self.window, "Supervisor setting", str(exc))
            return False
        return True

    def record_setting(self, key: str, old, new, reason: str = "") -> int | None:
        from sigverify.app.operators import record_setting_change

        return record_setting_change(self.store, self.operator, key, old, new, reason)

    # ---- menu ----
    def _update_menu(self) -> None:
        a = self.actions.get("who")
        if a is not None:
            op = self.operator
            a.setText(f"Signed in: {op.label} \u2014 {op.role}" if op else "Not signed in")
            sup = op is not None and op.has_role("supervisor")
            for k in ("queue", "threshold"):
                if k in self.actions:
                    self.actions[k].setEnabled(sup)
            if "operators" in self.actions:
                self.actions["operators"].setEnabled(op is not None and op.has_role("administrator") and not self.single_user)
            if "signout" in self.actions:
                self.actions["signout"].setEnabled(not self.single_user)
        sb = getattr(self.window, "statusBar", None)
        if callable(sb) and self.operator is not None:
            if not hasattr(self, "_who_label"):
                self._who_label = QLabel("")
                self._who_label.setAccessibleName("Signed-in operator")
                sb().addPermanentWidget(self._who_label)
            self._who_label.setText(f" {self.operator.username} ({self.operator.role}) ")
            self._who_label.setToolTip("Signed-in operator (every audit record names them)")

    def build_menu(self) -> None:
        from sigverify.gui import queue_ui

        w = self.window
        menu = w.add_menu("&Operator", "operator")

        def act(key: str, text: str, slot, shortcut: str | None = None) -> QAction:
            a = QAction(text, w)
            if shortcut:
                a.setShortcut(QKeySequence(shortcut))
            a.triggered.connect(lambda _=False: slot())
            menu.addAction(a)
            self.actions[key] = a
            return a

        act("who", "Not signed in", lambda: None).setEnabled(False)
        menu.addSeparator()
        act("queue", "Supervisor's &referral queue\u2026", lambda: queue_ui.open_queue(self), "Ctrl+Shift+R")
        act("threshold", "Customer &threshold override\u2026", lambda: queue_ui.open_threshold_override(self))
        act("operators", "&Manage operators…", self.manage_operators)
        menu.addSeparator()
        act("lock", "&Lock now", self.lock, "Ctrl+L")
        act("signout", "&Sign out\u2026", self.sign_out)
        fm = w.menu("file") if hasattr(w, "menu") else None
        if fm is not None:
            a = QAction("E&xport case report (PDF)\u2026", w)
            a.setShortcut(QKeySequence("Ctrl+E"))
            a.triggered.connect(lambda _=False: queue_ui.export_current_case(self))
            quit_action = getattr(w, "act_quit", None)
            if quit_action is not None and quit_action in fm.actions():
                fm.insertAction(quit_action, a)
            else:
                fm.addAction(a)
            self.actions["export"] = a
        self._guard_verdict_settings()
        ctl = getattr(w, "library_controller", None)
        if ctl is not None and "operator" in getattr(ctl, "actions", {}):
            ctl.actions["operator"].setVisible(False)  # no free-text operator names any more
        self._update_menu()

    def _guard_verdict_settings(self) -> None:
        """Every verdict-changing setting of the window (model, metric, per-person thresholds, using a
        fine-tuned model) passes ``comparison.confirm_verdict_change``: there the role is checked first and
        the change is recorded as a ``setting_changed`` event after it is confirmed."""
        cmp = getattr(self.window, "comparison", None)
        original = getattr(cmp, "confirm_verdict_change", None)
        if not callable(original):
            return

        def guarded(what: str, change: str, old=None, new=None) -> bool:
            key = SETTING_KEYS.get(what, "threshold_policy")
            if not self.allow_setting(key):
                sync = getattr(cmp, "sync_settings_menu", None)
                if callable(sync):
                    sync()  # the refused choice is not left ticked in the menu
                return False
            if not original(what, change, old, new):
                return False
            self.record_setting(key, "" if old is None else old, change if new is None else new, change)
            return True

        cmp.confirm_verdict_change = guarded

    # ---- the questioned image is kept with each recorded case (for the queue and the report) ----
    def keep_questioned(self, audit_id: int) -> None:
        from sigverify.app.referrals import ReferralQueue

        q = self.window.questioned() if hasattr(self.window, "questioned") else None
        if q is None:
            return
        rq = ReferralQueue(self.library, self.store)
        try:
            src = str(getattr(q, "source", "") or "")
            if src and os.path.isfile(src):
                rq.attach_questioned(audit_id, src)
            else:
                orig = q.preprocessed.stages.get("original") if getattr(q.preprocessed, "stages", None) else None
                if orig is not None:
                    rq.attach_questioned_array(audit_id, orig)
        except SigverifyError:
            pass  # the file changed since it was verified: the report says the image was not kept

    def close(self) -> None:
        self.idle.stop()
        if self.operator is not None and not self.single_user:
            self.store.sign_out(operator=self.operator)


def install_operator_ui(
    win, interactive: bool = True, store: OperatorStore | None = None, first_run: bool = True
) -> OperatorUI | None:
    """Sign in and add the Operator menu and File > Export case report to ``win`` (after the library UI).
    ``first_run=False`` skips the first-run choice without making it (see ``OperatorUI.start``)."""
    ctl = getattr(win, "library_controller", None)
    if ctl is None:
        raise RuntimeError("install_library_ui(win) must run first: operators live in the library database")
    st = store or OperatorStore.for_library(ctl.library)
    ui = OperatorUI(win, st, ctl.library)
    win.operator_ui = ui
    ui.build_menu()
    if not ui.start(interactive, first_run):
        return None
    case = getattr(win, "case", None)
    if case is not None and hasattr(case, "case_recorded"):
        case.case_recorded.connect(ui.keep_questioned)
    app = QApplication.instance()
    if app is not None:
        app.aboutToQuit.connect(ui.close)
    return ui


__all__ = [
    "install_operator_ui",
    "OperatorUI",
    "SignInDialog",
    "FirstRunDialog",
    "UnlockDialog",
    "IdleWatcher",
    "ManageOperatorsDialog",
]
_ = Qt
