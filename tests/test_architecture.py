"""The core stays Qt-free: only sigverify/gui/ may import PySide6 (checked on the syntax tree)."""

import ast
from pathlib import Path

import sigverify

ROOT = Path(sigverify.__file__).parent


def _qt_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        found += [n for n in names if n.split(".")[0] in ("PySide6", "PyQt5", "PyQt6", "shiboken6")]
    return found


def test_no_qt_outside_gui():
    offenders = {}
    for py in ROOT.rglob("*.py"):
        rel = py.relative_to(ROOT)
        if rel.parts[0] == "gui":
            continue
        q = _qt_imports(py)
        if q:
            offenders[str(rel)] = q
    assert offenders == {}


def test_gui_does_use_qt():
    assert _qt_imports(ROOT / "gui" / "main_window.py")
