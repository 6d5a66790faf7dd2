"""Library GUI: menu + search toolbar, loading a customer, audit + decision bar, dialogs, batch with cancel."""

from __future__ import annotations

import csv
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from PySide6.QtCore import Signal  # noqa: E402
from PySide6.QtWidgets import QMainWindow, QMenu  # noqa: E402

from sigverify.store.library import Library, account_of  # noqa: E402

from helpers import SMALL, write_sig

SIZE = SMALL
TIMEOUT = 30000


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path):
    from sigverify.gui.settings import use_settings_dir

    use_settings_dir(tmp_path / "settings")
    yield
    use_settings_dir(None)


class StubWindow(QMainWindow):
    """The MainWindow hooks the library UI codes against, nothing else."""

    verification_done = Signal(object)
    verifier_changed = Signal(object)

    def __init__(self, verifier):
        super().__init__()
        self._v = verifier
        self.menus: dict[str, QMenu] = {}
        self.loaded: list[tuple[list, str]] = []

    def add_menu(self, title):
        m = self.menuBar().addMenu(title)
        self.menus[title] = m
        return m

    def current_verifier(self):
        return self._v

    def set_reference_signatures(self, sigs, label=""):
        self.loaded.append((list(sigs), label))

    def set_references(self, paths):
        pass

    def set_questioned(self, path):
        q = self._v.load(path)
        refs = self.loaded[-1][0]
        from sigverify.verify.service import VerificationResult

        res = VerificationResult(q, refs, self._v.decide(q, refs), self._v.metric, self._v.model.model_id,
                                 self._v.card.random_init, 1.0)
        self.verification_done.emit(res)


@pytest.fixture
def db(tmp_path, verifier):
    path = tmp_path / "lib.sqlite3"
    with Library(path) as lib:
        lib.enrol("C1", [write_sig(tmp_path / "r" / f"a{i}.png", "Alice Smith", i) for i in range(3)], verifier,
                  name="Alice Smith")
        lib.enrol("C2", [write_sig(tmp_path / "r" / "b0.png", "Bob Jones", 0)], verifier, name="Bob Jones")
    return path


@pytest.fixture
def stub(qtbot, verifier, db):
    from sigverify.gui.library_ui import install_library_ui

    w = StubWindow(verifier)
    qtbot.addWidget(w)
    ctl = install_library_ui(w, db_path=db)
    yield w, ctl
    ctl.close()


def test_menu_toolbar_search_and_load(qtbot, stub, tmp_path):
    w, ctl = stub
    menu = w.menus["&Library"]
    texts = [a.text().replace("&", "") for a in menu.actions() if a.text()]
    for t in ("Enrol", "Manage references", "History", "Batch verification", "Export audit log"):
        assert any(t in x for x in texts), t
    assert ctl.toolbar in w.findChildren(type(ctl.toolbar))
    # incremental search: id or name, case-insensitive
    assert ctl.search.update_matches("ali") == ["C1 - Alice Smith"]
    assert ctl.search.update_matches("c") == ["C1 - Alice Smith", "C2 - Bob Jones (add more specimens)"]
    assert ctl.search.completer.model().stringList()[0] == "C1 - Alice Smith"
    with qtbot.waitSignal(ctl.customer_loaded, timeout=TIMEOUT):
        ctl.search.completer.activated.emit("C1 - Alice Smith")
    sigs, label = w.loaded[-1]
    assert len(sigs) == 3 and label == "C1 - Alice Smith" and {account_of(s.source) for s in sigs} == {"C1"}
    assert "3 reference" in ctl.current_label.text()
    # Return on an exact id; a customer with < 3 references is flagged in the pane label
    ctl.search.edit.setText("C2")
    with qtbot.waitSignal(ctl.customer_loaded, timeout=TIMEOUT):
        ctl.search.edit.returnPressed.emit()
    assert "add more specimens" in w.loaded[-1][1] and ctl.current == "C2"


def test_verification_is_audited_and_decision_recorded(qtbot, stub, tmp_path):
    w, ctl = stub
    with qtbot.waitSignal(ctl.customer_loaded, timeout=TIMEOUT):
        ctl.load_customer("C1")
    q = write_sig(tmp_path / "q.png", "Alice Smith", 77)
    with qtbot.waitSignal(ctl.audit_recorded, timeout=TIMEOUT) as sig:
        w.set_questioned(str(q))
    vid = sig.args[0]
    rec = ctl.library.audit.get(vid)
    assert rec.customer_id == "C1" and rec.source == "gui" and len(rec.reference_ids) == 3
    assert rec.questioned_name == "q.png" and rec.decisions == []
    bar = ctl.decision_bar
    assert bar.isVisible() and not bar.isModal() and "C1" in bar.info.text()
    override = next(d for d in ("accept", "reject") if d != {"genuine": "accept", "forgery": "reject"}.get(rec.verdict))
    bar.reason.setText("customer confirmed in branch")
    with qtbot.waitSignal(ctl.decision_recorded, timeout=TIMEOUT):
        bar.buttons[override].click()
    fd = ctl.library.audit.get(vid).final_decision
    assert fd.decision == override and fd.overrides_verdict and fd.reason == "customer confirmed in branch"
    assert not bar.isVisible()
    # references set by hand (not the loaded customer's) are not audited
    n = ctl.library.audit.count()[0]
    from sigverify.verify.service import VerificationResult

    v = w.current_verifier()
    refs = [v.load(str(q))]
    ctl.on_verification_done(VerificationResult(refs[0], refs, v.decide(refs[0], refs), v.metric, "m", True, 1.0))
    assert ctl.library.audit.count()[0] == n


def test_enrol_manage_history_dialogs(qtbot, stub, tmp_path):
    from sigverify.gui.library_ui import EnrolDialog, HistoryDialog, ManageReferencesDialog

    w, ctl = stub
    dlg = EnrolDialog(ctl, None, w)
    qtbot.addWidget(dlg)
    dlg.account.setText("C3")
    dlg.name.setText("Carol King")
    dlg.has_expiry.setChecked(True)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    folder = tmp_path / "carol"
    for i in range(2):
        write_sig(folder / f"c{i}.png", "Carol King", i)
    dlg.set_files([folder, bad])
    with qtbot.waitSignal(dlg.enrolled, timeout=TIMEOUT) as sig:
        dlg.enrol_button.click()
    assert len(sig.args[0].added) == 2 and len(sig.args[0].errors) == 1
    assert "add more specimens" in dlg.result.text() and "bad.png" in dlg.result.text()
    c = ctl.library.get_customer("C3")
    assert c.name == "Carol King" and c.n_active == 2
    assert all(r.expires_utc for r in ctl.library.references("C3"))

    m = ManageReferencesDialog(ctl, "C1", w)
    qtbot.addWidget(m)
    assert m.table.rowCount() == 3 and "Thresholds for this customer" in m.status.text()
    m.table.selectRow(0)
    assert m.preview.pixmap() is not None and not m.preview.pixmap().isNull()
    m.remove_selected()
    m.table.selectRow(1)
    m.expire_selected()
    assert ctl.library.get_customer("C1").n_active == 1
    assert "Add more specimens" in m.status.text()
    assert [m.table.item(i, 4).text() for i in range(m.table.rowCount())] == ["active", "expired"]

    ctl.library.verify("C2", write_sig(tmp_path / "qb.png", "Bob Jones", 9), w.current_verifier(), source="cli")
    h = HistoryDialog(ctl, "C2", w)
    qtbot.addWidget(h)
    assert h.table.rowCount() == 1 and h.table.item(0, 3).text() == "cli"
    out = tmp_path / "hist.csv"
    assert h.export(str(out)) == 1
    assert [r["customer_id"] for r in csv.DictReader(out.open(newline=""))] == ["C2"]


def test_batch_dialog_progress_and_cancel(qtbot, stub, tmp_path):
    from sigverify.gui.library_ui import BatchDialog

    w, ctl = stub
    qdir = tmp_path / "batch"
    for i in range(3):
        write_sig(qdir / "C1" / f"q{i}.png", "Alice Smith", 30 + i)
    (qdir / "C1" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    dlg = BatchDialog(ctl, w)
    qtbot.addWidget(dlg)
    dlg.input.setText(str(qdir))
    dlg.output.setText(str(tmp_path / "out.csv"))
    with qtbot.waitSignal(dlg.finished_report, timeout=TIMEOUT) as sig:
        dlg.start_button.click()
    rep = sig.args[0]
    assert rep.processed == 4 and len(rep.errors) == 1 and not rep.cancelled
    assert dlg.progress.value() == 1000 and "corrupt.png" in dlg.summary.toPlainText()
    assert (tmp_path / "out.csv").exists() and ctl.library.audit.count()[0] == 3
    # cancel: many items in batches of one; cancel as soon as the first progress arrives
    for i in range(3, 40):
        (qdir / "C1" / f"q{i}.png").write_bytes((qdir / "C1" / "q0.png").read_bytes())
    ctl.verifier().embedder.batch_size = 1
    try:
        dlg.progress.valueChanged.connect(lambda v: dlg.cancel() if 0 < v < 1000 else None)
        with qtbot.waitSignal(dlg.finished_report, timeout=TIMEOUT) as sig:
            dlg.start_button.click()
    finally:
        ctl.verifier().embedder.batch_size = 64
    assert sig.args[0].cancelled and sig.args[0].processed < 41
    assert "Cancelled" in dlg.state.text()


def test_refresh_embeddings_on_model_change(qtbot, stub):
    from sigverify.model.weights import random_model
    from sigverify.verify.service import Verifier

    w, ctl = stub
    other = random_model(seed=3)
    other.card.name = "another-model"
    v2 = Verifier(other, device="cpu")
    assert ctl.library.stale_count(v2) == 4
    with qtbot.waitSignal(ctl.embeddings_refreshed, timeout=TIMEOUT) as sig:
        w.verifier_changed.emit(v2)
    assert sig.args[0].computed == 4 and ctl.library.stale_count(v2) == 0


def test_operator_setting(stub):
    w, ctl = stub
    ctl.set_operator("Teller 7")
    assert ctl.library.audit.operator == "Teller 7"
    from sigverify.gui.library_ui import _settings

    assert _settings().value("audit/operator") == "Teller 7"


def test_install_on_real_main_window(qtbot, verifier, db, tmp_path):
    from sigverify.gui.library_ui import install_library_ui
    from sigverify.gui.main_window import MainWindow

    w = MainWindow(verifier=verifier)
    qtbot.addWidget(w)
    ctl = install_library_ui(w, db_path=db)
    try:
        titles = [a.text() for a in w.menuBar().actions()]
        assert "&Library" in titles and titles.index("&Library") < len(titles) - 1  # before Help
        with qtbot.waitSignal(ctl.customer_loaded, timeout=TIMEOUT):
            ctl.load_customer("C1")
        assert len(w.references()) == 3
        q = write_sig(tmp_path / "q.png", "Alice Smith", 5)
        with qtbot.waitSignal(ctl.audit_recorded, timeout=TIMEOUT) as sig:
            w.set_questioned(str(q))
        rec = ctl.library.audit.get(sig.args[0])
        assert rec.customer_id == "C1" and rec.verdict == w.result().decision.verdict.zone
        with qtbot.waitSignal(ctl.decision_recorded, timeout=TIMEOUT):
            ctl.decision_bar.buttons["refer"].click()
    finally:
        ctl.close()
        w.jobs.shutdown() if hasattr(w, "jobs") else None
