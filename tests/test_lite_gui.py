"""The GUI on the verify-only runtime: with ``import torch`` blocked (as in the lean bundle, which has
no torch) the window opens, the shipped model loads on onnxruntime, a comparison gives a verdict, and
fine-tuning is disabled with a message naming the full install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from sigverify.samples import draw_signature

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("onnxruntime")
pytest.importorskip("PySide6")

DRIVER = r"""
import json, sys
assert sys.modules.get("torch", "absent") is None  # the shim is active
import sigverify.gui.models_ui as mu
captured = {}
real = mu.install_training_ui
def spy(win):
    ui = real(win)
    captured["ui"] = ui
    return ui
mu.install_training_ui = spy
from sigverify.gui.app import main
argv = json.loads(sys.argv[1])
rc = main(argv)
a = captured["ui"].actions["finetune"]
print("RESULT " + json.dumps({"rc": rc, "torch_loaded": sys.modules.get("torch") is not None,
    "finetune_enabled": a.isEnabled(), "finetune_text": a.text(), "finetune_tip": a.statusTip(),
    "backend": "onnxruntime" if "onnxruntime" in sys.modules else None}))
"""


def _shim(tmp_path: Path) -> Path:
    d = tmp_path / "notorch"
    d.mkdir()
    (d / "sitecustomize.py").write_text('import sys\nsys.modules["torch"] = None  # import torch -> ImportError\n')
    return d


def _env(tmp_path: Path, shim: Path | None) -> dict:
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["SIGVERIFY_HOME"] = str(tmp_path / "home")
    env["PYTHONPATH"] = os.pathsep.join(([str(shim)] if shim else []) + [str(ROOT)])
    return env


def _run_gui(tmp_path: Path, shim: Path | None):
    refs = []
    for i in range(3):
        p = tmp_path / f"s{i}.png"
        cv2.imwrite(str(p), draw_signature("Alice Smith", i, 0.6))
        refs.append(str(p))
    shot = tmp_path / "shot.png"
    argv = ["--reference", refs[0], refs[1], "--questioned", refs[2], "--screenshot", str(shot), "--no-first-run"]
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(argv)],
        env=_env(tmp_path, shim),
        capture_output=True,
        text=True,
        timeout=240,
        cwd=str(tmp_path),
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, proc.stdout[-2000:] + proc.stderr[-4000:]
    return json.loads(lines[-1][7:]), proc, shot


def test_gui_compares_without_torch_and_fine_tuning_says_it_needs_the_full_install(tmp_path):
    res, proc, shot = _run_gui(tmp_path, _shim(tmp_path))
    assert res["rc"] == 0, proc.stderr[-4000:]
    assert "verdict:" in proc.stdout and shot.is_file() and shot.stat().st_size > 1000
    assert res["torch_loaded"] is False and res["backend"] == "onnxruntime"
    assert res["finetune_enabled"] is False
    assert "full install" in res["finetune_text"] and "full sigverify install" in res["finetune_tip"]


def test_lazy_open_without_torch_uses_the_onnx_export(tmp_path):
    """``open_session`` (the GUI's and CLI's model loader) without torch: the shipped ONNX export, CPU
    (auto device), a GPU request falls back to the CPU with a notice; training says what it needs."""
    code = r"""
import json, sys
from sigverify.app.session import open_session
from sigverify.errors import SigverifyError
from sigverify.model.lazy import require_torch
s = open_session(None, "cuda")
out = {"backend": s.verifier.embedder.backend, "notices": [n.kind for n in s.notices],
       "model": s.verifier.model.model_id, "torch": sys.modules.get("torch") is not None}
try:
    require_torch("fine-tuning")
except SigverifyError as exc:
    out["require"] = str(exc)
print("RESULT " + json.dumps(out))
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], env=_env(tmp_path, _shim(tmp_path)), capture_output=True, text=True, timeout=120
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, proc.stderr[-4000:]
    out = json.loads(lines[-1][7:])
    assert out["backend"] == "onnxruntime" and out["torch"] is False
    assert out["model"].startswith("sigverify-base@")
    assert out["notices"] == ["device_fallback"]
    assert "fine-tuning needs the full sigverify install" in out["require"]
