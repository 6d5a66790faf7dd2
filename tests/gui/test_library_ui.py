"""Library GUI on the real main window: menu + search toolbar, loading a customer (a new case), the case
recorded once with the decision in the verdict panel, confirmations before removing specimens, the window
following library changes, dialogs, batch with cancel, embedding refresh (failures on screen)."""

from __future__ import annotations

import csv
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from helpers import SMALL, write_sig

from sigverify.app.library_service import LibraryService

SIZE = SMALL
TIMEOUT = 30000


@pytest.fixture
def stub(library_window):
    """The real MainWindow with the library installed (tests/gui/conftest.py); dialogs answered by the test."""
    w = library_window
    ctl = w.library_controller
    ctl.confirm = lambda title, text: True
    w.comparison.confirm = lambda title, text: True
    w.show()
    return w, ctl


def test_menu_toolbar_search_and_load(qtbot, stub, tmp_path):
    w, ctl = stub
    menu = w.menu("library")
    texts = [a.text().replace("&", "") for a in menu.actions() if a.text()]
    for t in ("Enrol", "Manage references", "History", "Batch verification", "Export audit log"):
        assert any(t in x for x in texts), t
    titles = [a.text() for a in w.menuBar().actions()]
    assert titles.index("&Library") == len(titles) - 2  # declared by the feature, inserted before Help
    assert ctl.toolbar in w.findChildren(type(ctl.toolbar))
    # incremental search: id or name, case-insensitive
    assert ctl.search.update_matches("ali") == ["C1 - Alice Smith"]
    assert ctl.search.update_matches("c") == ["C1 - Alice Smith", "C2 - Bob Jones (add more specimens)"]
    assert ctl.search.completer.model().stringList()[0] == "C1 - Alice Smith"
    with qtbot.waitSignal(ctl.customer_loaded, timeout=TIMEOUT):
        ctl.search.completer.activated.emit("C1 - Alice Smith")
    sigs = w.references()
    assert len(sigs) == 3 and {s.account_id for s in sigs} == {"C1"}
    assert w.ref_pane.title_label.text() == "Reference" and "Alice Smith" in w.ref_pane.subtitle_label.toolTip()
    assert "3 reference" in ctl.current_label.text()
    # Return on an exact id; a customer with < 3 references is flagged in the pane label
    ctl.search.edit.setText("C2")
    with qtbot.waitSignal(ctl.customer_loaded, timeout=TIMEOUT):
        ctl.search.edit.returnPressed.emit()
    assert "add more specimens" in w.ref_pane.subtitle_label.toolTip() and ctl.current == "C2"


def test_choosing_a_customer_with_enter_loads_once(qtbot, stub):
    """Enter in the completer also fires returnPressed: one load, not two (no duplicate case)."""
    w, ctl = stub
    loads = []
    ctl.customer_loaded.connect(loads.append)
    ctl.search.update_matches("ali")
    ctl.search.completer.activated.emit("C1 - Alice Smith")
    ctl.search.edit.setText("C1 - Alice Smith")
    ctl.search.edit.returnPressed.emit()
    ctl.wait_idle()
    qtbot.wait(50)
    assert loads == ["C1"]


def test_verification_is_recorded_once_and_decided_in_the_verdict_panel(qtbot, stub, tmp_path):
    w, ctl = stub
    with qtbot.waitSignal(ctl.customer_loaded, timeout=TIMEOUT):
        ctl.load_customer("C1")
    q = write_sig(tmp_path / "q.png", "Alice Smith", 77)
    with qtbot.waitSignal(w.case.case_recorded, timeout=TIMEOUT) as sig:
        w.set_questioned(str(q))
    vid = sig.args[0]
    rec = ctl.library.audit.get(vid)
    assert rec.customer_id == "C1" and rec.source == "gui" and len(rec.reference_ids) == 3
    assert rec.questioned_name == "q.png" and rec.decisions == []
    panel = w.verdict_panel
    assert panel.decision.isVisible() and "q.png" in panel.questioned_name()
    safe = {"genuine": "accept", "refer": "refer", "forgery": "reject"}[rec.verdict]
    override = next(d for d in ("accept", "reject") if d != safe)
    panel.decision.buttons[override].click()  # starts an override: nothing recorded yet
    assert ctl.library.audit.get(vid).decisions == [] and panel.decision.in_override() == override
    assert not panel.decision.confirm.isEnabled()  # no reason, no override
    panel.decision.reason.setText("customer confirmed in branch")
    with qtbot.waitSignal(w.case.decision_recorded, timeout=TIMEOUT):
        panel.decision.confirm.click()
    fd = ctl.library.audit.get(vid).final_decision
    assert fd.decision == override and fd.overrides_verdict and fd.reason == "customer confirmed in branch"
    assert not any(b.isEnabled() for b in panel.decision.buttons.values())
    # the same cheque again (e.g. re-opened): no second record
    n = ctl.library.audit.count()[0]
    w.set_questioned(str(q))
    assert w.wait_idle(TIMEOUT)
    assert ctl.library.audit.count()[0] == n


def test_loading_a_customer_starts_a_new_case(qtbot, stub, tmp_path):
    """The cheque of the previous case is never verified against the next customer."""
    w, ctl = stub
    with qtbot.waitSignal(ctl.customer_loaded, timeout=TIMEOUT):
        ctl.load_customer("C1")
    q = write_sig(tmp_path / "q.png", "Alice Smith", 7)
    with qtbot.waitSignal(w.case.case_recorded, timeout=TIMEOUT):
        w.set_questioned(str(q))
    n = ctl.library.audit.count()[0]
    asked = []
    w.case.ask = lambda text: asked.append(text) or "back"
    assert ctl.load_customer("C2") is None  # undecided: asked, "Go back" keeps the case
    assert asked and "no decision yet" in asked[0] and w.questioned() is not None and ctl.current == "C1"
    w.case.ask = lambda text: "leave"
    with qtbot.waitSignal(ctl.customer_loaded, timeout=TIMEOUT):
        ctl.load_customer("C2")
    assert w.questioned() is None and w.result() is None and w.gauge.value() is None
    assert ctl.library.audit.count()[0] == n  # no verification of the old cheque against C2
    assert w.verdict_panel.questioned_name() == ""


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

    LibraryService(ctl.library, w.current_verifier()).verify("C2", write_sig(tmp_path / "qb.png", "Bob Jones", 9), source="cli")
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
    assert LibraryService(ctl.library, v2).stale_count() == 4
    with qtbot.waitSignal(ctl.embeddings_refreshed, timeout=TIMEOUT) as sig:
        w.verifier_changed.emit(v2)
    assert sig.args[0].computed == 4 and LibraryService(ctl.library, v2).stale_count() == 0


def test_operator_setting(stub):
    w, ctl = stub
    ctl.set_operator("Teller 7")
    assert ctl.library.audit.operator == "Teller 7"
    from sigverify.gui.library_ui import _settings

    assert _settings().value("audit/operator") == "Teller 7"


def test_removing_specimens_asks_first_and_the_window_follows(qtbot, stub):
    from PySide6.QtCore import Qt

    from sigverify.gui.library_ui import ManageReferencesDialog

    w, ctl = stub
    with qtbot.waitSignal(ctl.customer_loaded, timeout=TIMEOUT):
        ctl.load_customer("C1")
    assert len(w.references()) == 3
    m = ManageReferencesDialog(ctl, "C1", w)
    qtbot.addWidget(m)
    m.show()
    # Enter in the dialog never removes a specimen (Close is the default button)
    assert not m.buttons["remove"].autoDefault() and not m.buttons["remove"].isDefault()
    m.table.selectRow(0)
    asked = []
    ctl.confirm = lambda title, text: asked.append(text) or False
    assert m.remove_selected() == 0 and asked and ctl.library.get_customer("C1").n_active == 3
    ctl.confirm = lambda title, text: True
    with qtbot.waitSignal(ctl.customer_loaded, timeout=TIMEOUT):
        assert m.remove_selected() == 1
    assert ctl.library.get_customer("C1").n_active == 2
    assert len(w.references()) == 2  # the main window shows the library as it is now
    assert {s.reference_id for s in w.references()} == {r.id for r in ctl.library.active_references("C1")}
    qtbot.keyClick(m.table, Qt.Key.Key_Return)
    assert ctl.library.get_customer("C1").n_active == 2


def test_refresh_failure_is_shown_on_screen(qtbot, stub, monkeypatch):
    from sigverify.model.weights import random_model
    from sigverify.verify.service import Verifier

    w, ctl = stub
    v2 = Verifier(random_model(seed=5), device="cpu")

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(LibraryService, "refresh", boom)
    ctl.refresh_embeddings(v2)
    assert ctl.wait_idle()
    qtbot.waitUntil(lambda: w.job_error.isVisible(), timeout=TIMEOUT)
    assert "disk on fire" in w.job_error.text() and "disk on fire" in ctl.refresh_dialog.label.text()
    # a second model switch reuses the same dialog and job runner (the old "already deleted" crash)
    monkeypatch.undo()
    for seed in (6, 7):
        ctl.refresh_embeddings(Verifier(random_model(seed=seed), device="cpu"))
        assert ctl.wait_idle()
    assert "computed" in ctl.refresh_dialog.label.text()
