"""The house keeps its shape: the layer order of the packages, Qt only in the GUI, one decision path,
and a clean lint (all checked on the syntax tree / by ruff, so function-local imports count too)."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sigverify

ROOT = Path(sigverify.__file__).parent

#: Layer of each top-level module or package of ``sigverify`` (lower layers never import higher ones).
#:   base < imaging < model < verify < store < application (app, train, batch, ...) < front ends (cli, gui)
LAYERS = {
    "__init__": 0,
    "errors": 0,
    "atomic": 0,
    "hashing": 0,
    "paths": 0,
    "metrics": 0,
    "progress": 0,
    "safetext": 0,
    "samples": 0,
    "imaging": 1,
    "model": 2,
    "verify": 3,
    "store": 4,
    "app": 5,
    "train": 5,
    "batch": 5,
    "bench": 5,
    "cluster": 5,
    "cli": 6,
    "gui": 6,
    "__main__": 6,
}
LAYER_NAMES = ["base", "imaging", "model", "verify", "store", "application", "front end"]
FRONT_ENDS = {"cli", "gui"}  # two front doors side by side: neither imports the other


def _unit(rel: Path) -> str:
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, absolute module) of every sigverify import in the file, at any depth (function-local too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
                out.append((node.lineno, mod))
            elif node.module:
                out.append((node.lineno, node.module))
                if node.module == "sigverify":  # from sigverify import x -> sigverify.x
                    out += [(node.lineno, f"sigverify.{a.name}") for a in node.names]
    return [(ln, m) for ln, m in out if m == "sigverify" or m.startswith("sigverify.")]


def _sources():
    for py in sorted(ROOT.rglob("*.py")):
        rel = py.relative_to(ROOT)
        if rel.parts[0].startswith("_") and rel.parts[0] not in ("__init__.py", "__main__.py"):
            continue  # data-only packages such as sigverify/_assets
        yield py, rel


def layer_violations() -> list[str]:
    bad = []
    for py, rel in _sources():
        unit = _unit(rel)
        if unit not in LAYERS:
            bad.append(f"{rel}: '{unit}' has no layer: add it to LAYERS in tests/test_architecture.py")
            continue
        pkg = ".".join(("sigverify", *rel.parts[:-1]))
        for line, mod in _imports(py, pkg):
            parts = mod.split(".")
            if len(parts) == 1:
                continue  # "import sigverify" / "from sigverify import __version__"
            target = parts[1]
            if target not in LAYERS:
                continue  # e.g. sigverify.__version__ read through "from sigverify import"
            if target == unit:
                continue
            lo, hi = LAYERS[unit], LAYERS[target]
            if hi > lo or (unit in FRONT_ENDS and target in FRONT_ENDS):
                bad.append(f"{rel}:{line}: {LAYER_NAMES[lo]} module imports {mod} ({LAYER_NAMES[hi]})")
    return bad


def test_layer_order():
    assert layer_violations() == []


def test_layer_check_catches_a_function_local_upward_import(tmp_path, monkeypatch):
    f = tmp_path / "calibration.py"
    f.write_text("def fit():\n    from sigverify.train.evaluate import eer\n    return eer\n")
    assert _imports(f, "sigverify.verify") == [(2, "sigverify.train.evaluate")]
    rel = tmp_path / "pkg" / "reference.py"
    rel.parent.mkdir()
    rel.write_text("from ..store import library\n")
    assert _imports(rel, "sigverify.verify") == [(1, "sigverify.store")]


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


#: The app decides in Verifier.decide_embeddings; train/decision.py fits the decision stage's thresholds
#: offline by scoring validation writers with the very same function (so fitted = applied).
DECISION_CALLERS = sorted([str(Path("verify") / "service.py"), str(Path("train") / "decision.py")])


def test_one_place_builds_a_decision_from_embeddings():
    """Only Verifier.decide_embeddings (reached through sigverify.app.case.decide) calls
    verify_against_references in the app; library, batch, CLI and GUI go through it."""
    callers = []
    for py, rel in _sources():
        for node in ast.walk(ast.parse(py.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
                if name == "verify_against_references":
                    callers.append(str(rel))
    assert sorted(set(callers)) == DECISION_CALLERS and callers.count(str(Path("verify") / "service.py")) == 1


def test_the_library_store_is_only_sql():
    """store/library.py and store/audit.py keep rows: they decode no image, run no model and build no
    decision (that is ``app.library_service``, which applies a supervisor's override)."""
    from sigverify.store.library import Library

    bad = []
    for name in ("library.py", "audit.py"):
        for line, mod in _imports(ROOT / "store" / name, "sigverify.store"):
            if mod.startswith(("sigverify.imaging", "sigverify.model", "sigverify.verify.service", "sigverify.app")):
                bad.append(f"store/{name}:{line} imports {mod}")
    assert bad == []
    moved = {"enrol", "verify", "refresh_embeddings", "reference_embeddings", "load_signatures", "customer_status"}
    assert moved.isdisjoint(dir(Library))


def _progress_type_problems(path: Path) -> list[str]:
    """Progress-callback types other than ``sigverify.progress.Progress`` in one file: a name for a
    progress type bound to anything but ``Progress`` (``ProgressFn = Callable[..., None]``), a progress
    Protocol of its own, a ``progress`` parameter annotated with something else, or the old
    ``Callable[[float, str], ...]`` signature anywhere."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = []

    def is_progress_alias(value: ast.AST) -> bool:
        return isinstance(value, (ast.Name, ast.Attribute)) and ast.unparse(value).split(".")[-1] == "Progress"

    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name) and "progress" in t.id.lower() and node.value is not None:
                    if isinstance(node.value, ast.Subscript) or (
                        isinstance(node.value, ast.Name) and node.value.id == "Callable"
                    ):
                        bad.append(f"{node.lineno}: {t.id} = {ast.unparse(node.value)}")
                    elif t.id[:1].isupper() and not is_progress_alias(node.value):
                        bad.append(f"{node.lineno}: {t.id} = {ast.unparse(node.value)}")
        elif isinstance(node, ast.ClassDef) and "progress" in node.name.lower():
            if any(ast.unparse(b).split(".")[-1] == "Protocol" for b in node.bases):
                bad.append(f"{node.lineno}: class {node.name}(Protocol)")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs]:
                if arg.arg == "progress" and arg.annotation is not None:
                    text = ast.unparse(arg.annotation)
                    if "Progress" not in text or "Callable" in text:
                        bad.append(f"{arg.lineno}: {node.name}(progress: {text})")
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value).split(".")[-1] == "Callable":
            sl = node.slice
            if isinstance(sl, ast.Tuple) and sl.elts and isinstance(sl.elts[0], ast.List):
                args = [ast.unparse(e) for e in sl.elts[0].elts]
                if args[:2] == ["float", "str"]:
                    bad.append(f"{node.lineno}: {ast.unparse(node)}")
    return bad


def test_one_progress_callback_type():
    """Every long job takes ``progress: Progress`` (sigverify/progress.py); no module defines another."""
    found = {}
    for py, rel in _sources():
        if rel == Path("progress.py"):
            continue
        problems = _progress_type_problems(py)
        if problems:
            found[str(rel)] = problems
    assert found == {}


def test_progress_check_catches_a_second_type(tmp_path):
    f = tmp_path / "m.py"
    f.write_text(
        "from typing import Callable, Protocol\n"
        "from sigverify.progress import Progress\n"
        "ProgressFn = Callable[..., None]\n"
        "OkAlias = Progress\n"
        "MyProgress = Progress\n"
        "class JobProgress(Protocol):\n    def __call__(self, f: float) -> None: ...\n"
        "def run(progress: Callable[[float, str], None] | None = None): ...\n"
        "def fine(progress: Progress | None = None, on_step: Callable[[float, str], None] = print): ...\n"
    )
    got = _progress_type_problems(f)
    assert sorted(g.split(":")[0] for g in got) == ["3", "6", "8", "8", "9"], got


def _ruff() -> list[str] | None:
    exe = shutil.which("ruff") or shutil.which("ruff", path=str(Path(sys.executable).parent))
    if exe:
        return [exe]
    try:
        import ruff  # noqa: F401
    except ImportError:
        return None
    return [sys.executable, "-m", "ruff"]


def test_ruff_check_is_clean():
    """``ruff check`` with the configuration in pyproject.toml (the test extra installs ruff)."""
    cmd = _ruff()
    if cmd is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    repo = ROOT.parent
    r = subprocess.run(
        [*cmd, "check", "--no-cache", "sigverify", "tests", "benchmarks"], cwd=repo, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_ruff_format_is_clean():
    """``ruff format --check``: the whole tree is in the formatter's style (run ``ruff format .`` to fix)."""
    cmd = _ruff()
    if cmd is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    repo = ROOT.parent
    r = subprocess.run([*cmd, "format", "--check", "--no-cache", "."], cwd=repo, capture_output=True, text=True)
    assert r.returncode == 0, "run `ruff format .`:\n" + r.stdout[-4000:] + r.stderr[-2000:]
