"""The supervisor's queue window: cases with both signatures, gauge, verdict and clerk's note; approve /
reject with a reason (four eyes); clerks cannot open it; the threshold override dialog."""

from __future__ import annotations

import os
from types import SimpleNamespace

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from helpers import write_sig  # noqa: E402

from sigverify.app.library_service import LibraryService
from sigverify.app.referrals import ReferralQueue  # noqa: E402
from sigverify.hashing import sha256_file  # noqa: E402
from sigverify.store.audit import VerificationEntry  # noqa: E402
from sigverify.store.library import Library  # noqa: E402
from sigverify.store.operators import OperatorStore  # noqa: E402

PW = "correct horse 1"


@pytest.fixture
def env(tmp_path):
    lib = Library(tmp_path / "lib.sqlite3")
    st = OperatorStore.for_library(lib)
    admin = st.setup_multi_user("admin", PW)
    clerk = st.add(admin, "clerk1", PW, "clerk", "Carl Clerk")
    sup = st.add(admin, "super1", PW, "supervisor", "Sue Super")
    refs = (
        LibraryService(lib, None)
        .enrol("C1", [write_sig(tmp_path / f"r{i}.png", seed=i) for i in range(3)], name="Alice Smith")
        .added
    )
    rq = ReferralQueue(lib, st)
    ids = []
    for k, (verdict, d, decision, note) in enumerate(
        [
            ("forgery", 2.4, "accept", "customer at the desk with ID"),
            ("refer", 1.3, "refer", "hesitant strokes"),
            ("genuine", 0.4, "accept", ""),
        ]
    ):
        q = write_sig(tmp_path / f"q{k}.png", seed=10 + k, forged=verdict == "forgery")
        vid = lib.audit.append_verification(
            VerificationEntry(
                q.name,
                sha256_file(q),
                "sigverify-base",
                "ab" * 32,
                "euclidean",
                [d, d + 0.1, d - 0.1],
                d,
                40.0,
                verdict,
                "C1",
                1.0,
                2.0,
                refs,
            ),
            "gui",
            operator="clerk1",
        )
        rq.attach_questioned(vid, q)
        rq.decide(clerk, vid, decision, note)
        ids.append(vid)
    yield SimpleNamespace(library=lib, store=st, operator=sup, window=None, ids=ids, clerk=clerk, sup=sup)
    lib.close()


def dialog(qtbot, ui):
    from PySide6.QtWidgets import QMainWindow

    from sigverify.gui.queue_ui import QueueDialog

    ui.window = QMainWindow()
    qtbot.addWidget(ui.window)
    dlg = QueueDialog(ui, ui.window)
    qtbot.addWidget(dlg)
    return dlg


def test_queue_shows_cases_with_signatures_gauge_and_note(qtbot, env):
    dlg = dialog(qtbot, env)
    assert dlg.table.rowCount() == 2 and "2 case(s) waiting" in dlg.summary.text()
    assert [dlg.table.item(i, 0).text() for i in range(2)] == [f"#{env.ids[0]}", f"#{env.ids[1]}"]
    dlg.table.selectRow(0)
    assert dlg.gauge.zone() == "forgery" and dlg.gauge.value() == pytest.approx(2.4)
    assert dlg.gauge.reference_distances() == pytest.approx([2.4, 2.5, 2.3])
    assert dlg.images.count() == 4  # questioned + 3 specimens
    thumbs = [dlg.images.itemAt(i).widget() for i in range(dlg.images.count())]
    assert all(not t.findChildren(type(dlg.info))[0].pixmap().isNull() for t in thumbs)
    info = dlg.info.text()
    assert "customer at the desk with ID" in info and "overrides the model" in info and "FORGERY" in info
    assert "Alice Smith" in info and "Approve \u2192 final decision <b>accept</b>" in info


def test_approve_and_reject_need_a_reason_and_close_the_case(qtbot, env):
    dlg = dialog(qtbot, env)
    dlg.table.selectRow(0)
    assert not dlg.review(True) and "reason" in dlg.note.text()
    dlg.reason.setText("signature differs from the account card")
    with qtbot.waitSignal(dlg.reviewed) as sig:
        assert dlg.review(False)
    assert sig.args == [env.ids[0], "reject"]
    assert dlg.table.rowCount() == 1 and env.library.audit.get(env.ids[0]).final_decision.source == "supervisor"
    dlg.table.selectRow(0)
    dlg.reason.setText("called the customer")
    assert dlg.review(True)
    assert dlg.table.rowCount() == 0 and "No case is waiting" in dlg.info.text()
    assert not dlg.approve_button.isEnabled()
    dlg.show_closed.setChecked(True)  # closed cases are still listed with their review
    assert dlg.table.rowCount() == 3


def test_four_eyes_in_the_window(qtbot, env):
    rq = ReferralQueue(env.library, env.store)
    q = env.library.audit.append_verification(
        VerificationEntry("x.png", "cd" * 32, "m", "w", "euclidean", [1.5], 1.5, 40.0, "refer", "C1", 1.0, 2.0),
        "gui",
        operator="super1",
    )
    rq.refer(env.sup, q, "my own referral")
    dlg = dialog(qtbot, env)
    row = next(i for i, c in enumerate(dlg.cases) if c.id == q)
    dlg.table.selectRow(row)
    dlg.reason.setText("self approval")
    assert not dlg.review(True) and "four eyes" in dlg.note.text()


def test_clerk_cannot_open_the_queue(qtbot, env, monkeypatch):
    from PySide6.QtWidgets import QMainWindow, QMessageBox

    from sigverify.gui import queue_ui
    from sigverify.gui.signin import OperatorUI

    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    ui = SimpleNamespace(**env.__dict__)
    ui.operator = env.clerk
    ui.window = QMainWindow()
    qtbot.addWidget(ui.window)
    ui.allowed = lambda role, action: OperatorUI.allowed(ui, role, action)
    assert queue_ui.open_queue(ui) is None and "supervisor role" in shown[0]


def test_threshold_override_dialog(qtbot, env):
    from sigverify.gui.queue_ui import ThresholdOverrideDialog

    dlg = ThresholdOverrideDialog(env, "C1")
    qtbot.addWidget(dlg)
    assert "No override" in dlg.current.text()
    dlg.scale.setValue(1.15)
    assert not dlg.save() and "reason" in dlg.error.text()
    dlg.reason.setText("tremor after surgery")
    assert dlg.save()
    assert env.store.threshold_override("C1").scale == pytest.approx(1.15)
    dlg.customer.setText("NOPE")
    dlg.reason.setText("x")
    assert not dlg.save() and "unknown customer" in dlg.error.text()
    assert dlg.scale.maximum() == pytest.approx(1.25) and dlg.scale.minimum() == pytest.approx(0.8)
