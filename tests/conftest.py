"""Shared test setup: headless Qt, and no test ever touches the real user folder or settings."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
_SESSION_HOME = tempfile.mkdtemp(prefix="sigverify-test-home-")
os.environ["SIGVERIFY_HOME"] = _SESSION_HOME  # user models / library go here, never to the real folder
os.environ["SIGVERIFY_SETTINGS_DIR"] = os.path.join(_SESSION_HOME, "settings")  # QSettings INI file

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402


@pytest.fixture(scope="module")
def verifier():
    """The shipped (default) model on the CPU."""
    from sigverify.verify.service import Verifier

    return Verifier(device="cpu")


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path_factory, monkeypatch):
    """Each test starts from empty GUI settings (an INI file in its own temporary folder)."""
    d = tmp_path_factory.mktemp("qsettings")
    monkeypatch.setenv("SIGVERIFY_SETTINGS_DIR", str(d))
    if "PySide6.QtCore" in sys.modules:  # only once Qt is in use; core tests never import it
        from sigverify.gui.settings import use_settings_dir

        use_settings_dir(str(d))
    yield
