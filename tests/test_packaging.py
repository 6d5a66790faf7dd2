"""Packaging: the PyInstaller spec, desktop entry and AppStream metainfo parse; ``pip install .`` ships
the assets (model, samples, icons) as ``sigverify._assets`` and both entry points."""

from __future__ import annotations

import ast
import configparser
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "packaging"


def test_spec_is_valid_python_with_expected_parts():
    src = (PKG / "sigverify.spec").read_text()
    tree = ast.parse(src, "sigverify.spec")
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert {"Analysis", "PYZ", "EXE", "COLLECT"} <= calls
    for needle in (
        '"tkinter"',
        "assets",
        "sigverify-256.png",
        'name="sigverify-cli"',
        'name="sigverify"',
        "console=False",
        "console=True",
        "torch/include",
        "models",
        "samples",
        "icons",
    ):
        assert needle in src, needle


def test_build_and_smoke_scripts_are_valid_bash():
    bash = shutil.which("bash")
    if not bash:
        pytest.skip("no bash")
    for name in ("build.sh", "smoke.sh"):
        r = subprocess.run([bash, "-n", str(PKG / name)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def test_desktop_entry():
    cp = configparser.ConfigParser(interpolation=None, strict=True)
    cp.optionxform = str
    cp.read(PKG / "sigverify.desktop", encoding="utf-8")
    e = cp["Desktop Entry"]
    assert e["Type"] == "Application" and e["Exec"].split()[0] == "sigverify"
    assert e["Icon"] == "sigverify" and e["Terminal"] == "false"
    assert e["Categories"].endswith(";") and "image/png" in e["MimeType"]
    assert (ROOT / "assets" / "icons" / "sigverify.svg").exists()


def test_metainfo():
    root = ElementTree.parse(PKG / "io.sigverify.SigVerify.metainfo.xml").getroot()
    assert root.tag == "component" and root.get("type") == "desktop-application"
    assert root.findtext("id") == "io.sigverify.SigVerify"
    assert root.find("launchable").text == "sigverify.desktop"
    assert root.findtext("name") and root.findtext("summary") and root.findtext("metadata_license")


def test_every_subpackage_is_listed_in_pyproject():
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(conf["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "sigverify").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    assert found - listed == set(), f"add to [tool.setuptools] packages in pyproject.toml: {sorted(found - listed)}"
    assert conf["tool"]["setuptools"]["package-dir"]["sigverify._assets"] == "assets"
    assert conf["project"]["scripts"]["sigverify-cli"] == "sigverify.cli:main"
    assert conf["project"]["gui-scripts"]["sigverify"] == "sigverify.gui.app:main"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Build a wheel from a copy of the checkout with a (random) model in assets/models."""
    src = tmp_path_factory.mktemp("src")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(ROOT / "sigverify", src / "sigverify", ignore=ignore)
    shutil.copytree(ROOT / "assets", src / "assets", ignore=ignore)
    for f in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / f).exists():
            shutil.copy2(ROOT / f, src / f)
    from sigverify.model.weights import random_model, save_model

    models = src / "assets" / "models"
    if not (models / "sigverify-base.safetensors").exists():
        m = random_model(seed=0)
        m.card.name = "sigverify-base"
        save_model(m.network, m.card, models / "sigverify-base.safetensors")
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", ".", "-w", str(out)],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    (whl,) = out.glob("sigverify-*.whl")
    return whl


@pytest.mark.slow
def test_wheel_contains_assets_and_entry_points(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        ep = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        entry_points = z.read(ep).decode()
    for f in (
        "sigverify/_assets/models/sigverify-base.safetensors",
        "sigverify/_assets/models/sigverify-base.json",
        "sigverify/_assets/samples/alice_ref1.png",
        "sigverify/_assets/samples/alice_cheque_scan.jpg",
        "sigverify/_assets/icons/sigverify.svg",
        "sigverify/_assets/icons/sigverify-256.png",
        "sigverify/cli/__init__.py",
        "sigverify/cli/bench.py",
        "sigverify/bench.py",
        "sigverify/model/embedder.py",
    ):
        assert f in names, f
    samples = {Path(n).name for n in names if n.startswith("sigverify/_assets/samples/")}
    assert samples >= {p.name for p in (ROOT / "assets" / "samples").iterdir() if p.suffix in (".png", ".jpg")}
    assert not any("/tests/" in n or n.startswith("tests/") for n in names)
    ep_cfg = configparser.ConfigParser()
    ep_cfg.read_string(entry_points)
    assert ep_cfg["console_scripts"]["sigverify-cli"] == "sigverify.cli:main"
    assert ep_cfg["gui_scripts"]["sigverify"] == "sigverify.gui.app:main"


@pytest.mark.slow
def test_installed_copy_finds_its_assets(wheel, tmp_path):
    """Unpacked like ``pip install`` does: sigverify.paths.assets_dir() -> <site-packages>/sigverify/_assets."""
    target = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(target)
    code = (
        "import sigverify.paths as p, json; print(json.dumps([str(p.assets_dir()), "
        "str(p.default_model_path()), p.default_model_path().exists(), (p.samples_dir() / 'alice_ref1.png').exists(),"
        " str(p.__file__)]))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONPATH"] = str(target)
    # -S: no site-packages, so the checkout's editable install cannot shadow the unpacked copy
    r = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    import json

    assets, model, model_exists, sample_exists, mod = json.loads(r.stdout)
    assert Path(mod).is_relative_to(target)
    assert Path(assets) == target / "sigverify" / "_assets"
    assert model_exists and sample_exists and Path(model).is_relative_to(target)
