"""Where sigverify finds its shipped assets and keeps the user's files (no Qt)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "sigverify"
DEFAULT_MODEL_NAME = "sigverify-base"


def assets_dir() -> Path:
    """The shipped assets: PyInstaller bundle, installed wheel copy, or the source checkout."""
    candidates = []
    if getattr(sys, "_MEIPASS", None):
        candidates.append(Path(sys._MEIPASS) / "assets")
    here = Path(__file__).resolve().parent
    candidates.append(here / "_assets")  # wheel install (see pyproject package-dir mapping)
    candidates.append(here.parent / "assets")  # source checkout / editable install
    for c in candidates:
        if (c / "models").is_dir() or (c / "samples").is_dir():
            return c
    return candidates[-1]


def shipped_models_dir() -> Path:
    return assets_dir() / "models"


def samples_dir() -> Path:
    return assets_dir() / "samples"


def default_model_path() -> Path:
    return shipped_models_dir() / f"{DEFAULT_MODEL_NAME}.safetensors"


def user_data_dir() -> Path:
    """Per-user data folder (models, reference library). ``SIGVERIFY_HOME`` overrides it."""
    env = os.environ.get("SIGVERIFY_HOME")
    if env:
        return Path(env)
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / APP_NAME


def user_models_dir() -> Path:
    d = user_data_dir() / "models"
    return d
