"""Fixtures shared by the GUI tests (tests/conftest.py already gives every test headless Qt, its own
empty settings and the ``verifier`` fixture)."""

from __future__ import annotations

import pytest
from helpers import SMALL, write_sig

TIMEOUT = 30000


@pytest.fixture(scope="module")
def loaded_model():
    """The shipped model, opened once per test module (windows get a fresh ``Verifier`` on it)."""
    from sigverify.model.embedder import open_model

    return open_model(None)


@pytest.fixture
def audited_window(qtbot, loaded_model, tmp_path):
    """A shown main window with an audit log (``w.case.library``), verdict-setting changes confirmed and
    every "undecided case" question answered "leave" (recorded in ``w.asked``): never a modal box."""
    from sigverify.gui.main_window import MainWindow
    from sigverify.store.library import Library
    from sigverify.verify.service import Verifier

    w = MainWindow(verifier=Verifier(loaded_model, "cpu"))
    qtbot.addWidget(w)
    lib = Library(tmp_path / "audit.sqlite3")
    w.case.set_library(lib)
    w.comparison.confirm = lambda title, text: True
    w.asked = []
    w.case.ask = lambda text: w.asked.append(text) or "leave"
    w.show()
    yield w
    w.case.ask = lambda text: "leave"  # a test may have replaced it: no question at teardown
    w.jobs.shutdown()
    lib.close()


@pytest.fixture
def db(tmp_path, verifier):
    """A library database with C1 (Alice Smith, 3 specimens) and C2 (Bob Jones, 1 specimen)."""
    from sigverify.app.library_service import LibraryService
    from sigverify.store.library import Library

    path = tmp_path / "lib.sqlite3"
    with Library(path) as lib:
        svc = LibraryService(lib, verifier)
        alice = [write_sig(tmp_path / "r" / f"a{i}.png", "Alice Smith", i, size=SMALL) for i in range(3)]
        svc.enrol("C1", alice, name="Alice Smith")
        svc.enrol("C2", [write_sig(tmp_path / "r" / "b0.png", "Bob Jones", 0, size=SMALL)], name="Bob Jones")
    return path


@pytest.fixture
def library_window(qtbot, verifier, db):
    """The real main window with the library UI installed on ``db`` (``w.library_controller``), not shown
    yet; the undecided-case question answered "leave". Operators (if installed) are signed out after."""
    from sigverify.gui.library_ui import install_library_ui
    from sigverify.gui.main_window import MainWindow

    w = MainWindow(verifier=verifier)
    qtbot.addWidget(w)
    ctl = install_library_ui(w, db_path=db)
    w.case.ask = lambda text: "leave"
    yield w
    if getattr(w, "operator_ui", None) is not None:
        w.operator_ui.close()
    ctl.close()
    w.jobs.shutdown()
