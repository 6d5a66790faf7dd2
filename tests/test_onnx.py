"""ONNX export and the onnxruntime backend: parity with torch, verified files only, torch-free runtime."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from sigverify.errors import ModelError  # noqa: E402
from sigverify.model import onnx_backend  # noqa: E402
from sigverify.model.embedder import Embedder  # noqa: E402
from sigverify.model.weights import load_model, random_model, save_model  # noqa: E402
from tests.helpers import signature  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A saved (random-weight, calibrated-card) model with its ONNX export beside the weights."""
    d = tmp_path_factory.mktemp("onnx")
    m = random_model(seed=3)
    m.card.name = "onnx-test"
    m.card.random_init = False
    weights = save_model(m.network, m.card, d / "m.safetensors")
    model = load_model(weights)
    info = onnx_backend.export_onnx(model, weights.with_suffix(".onnx"))
    return weights, Path(info["path"]), info


def _inputs(n=12):
    from sigverify.imaging.preprocess import preprocess

    return [preprocess(signature("Alice Smith" if i % 2 else "Bob Jones", i)).input for i in range(n)]


def test_export_writes_verified_file_and_parity(exported):
    weights, onnx, info = exported
    assert onnx.is_file() and onnx_backend.sidecar_for(onnx).is_file()
    assert info["parity_max_abs_diff"] is not None and info["parity_max_abs_diff"] < 1e-5
    meta = onnx_backend.read_sidecar(onnx)
    assert meta["source_weights_sha256"] == load_model(weights).card.weights_sha256
    assert meta["card"]["name"] == "onnx-test"


def test_onnx_embeddings_match_torch_on_real_inputs(exported):
    weights, onnx, _ = exported
    model = load_model(weights)
    imgs = _inputs()
    torch_emb = Embedder(model, "cpu", backend="torch").embed_arrays(imgs)
    lean = onnx_backend.OnnxEmbedder(onnx_backend.open_onnx_model(onnx))
    for got in (lean.embed_arrays(imgs), np.concatenate([lean.embed_arrays(imgs[:2]), lean.embed_arrays(imgs[2:])])):
        assert got.shape == torch_emb.shape and got.dtype == np.float32
        assert np.abs(got - torch_emb).max() < 1e-5
    assert np.allclose(np.linalg.norm(torch_emb, axis=1), 1, atol=1e-5)


def test_embedder_uses_onnx_when_present_and_falls_back(exported, monkeypatch):
    weights, onnx, _ = exported
    e = Embedder(load_model(weights), "cpu")
    assert e.backend == "onnxruntime"
    imgs = _inputs(4)
    a = e.embed_arrays(imgs)
    monkeypatch.setenv("SIGVERIFY_BACKEND", "torch")
    assert Embedder(load_model(weights), "cpu").backend == "torch"
    monkeypatch.delenv("SIGVERIFY_BACKEND")
    # weights changed in place (fine-tuning): the export no longer describes them -> torch
    import torch

    with torch.no_grad():
        for p in e.net.parameters():
            p.mul_(1.5)
    assert e.backend == "torch"
    b = e.embed_arrays(imgs)
    assert np.abs(a - b).max() > 1e-4  # really the changed torch weights, not the stale export


def test_tampered_or_stale_export_is_not_used(exported, tmp_path):
    weights, onnx, _ = exported
    # tampered: one byte changed -> refused by the lean loader, ignored by the Embedder
    d = tmp_path / "t"
    d.mkdir()
    for f in (weights, weights.with_suffix(".json"), onnx, onnx_backend.sidecar_for(onnx)):
        (d / f.name).write_bytes(f.read_bytes())
    bad = d / onnx.name
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="SHA-256"):
        onnx_backend.open_onnx_model(bad)
    assert Embedder(load_model(d / weights.name), "cpu").backend == "torch"
    # stale: an export of other weights beside this model is ignored
    (d / onnx.name).write_bytes(onnx.read_bytes())
    sc = json.loads(onnx_backend.sidecar_for(onnx).read_text())
    sc["source_weights_sha256"] = "0" * 64
    onnx_backend.sidecar_for(d / onnx.name).write_text(json.dumps(sc))
    assert onnx_backend.find_export(load_model(d / weights.name).card, d / weights.name) is None
    with pytest.raises(ModelError, match="does not belong"):
        onnx_backend.open_onnx_model(d / onnx.name)
    with pytest.raises(ModelError, match="no such ONNX model"):
        onnx_backend.open_onnx_model(d / "missing.onnx")


def test_lean_runtime_does_not_import_torch(exported):
    _, onnx, _ = exported
    code = (
        "import sys, numpy as np\n"
        "from sigverify.model.onnx_backend import OnnxEmbedder, open_onnx_model\n"
        "from sigverify.verify.reference import verify_against_references\n"
        f"e = OnnxEmbedder(open_onnx_model({str(onnx)!r}))\n"
        "x = e.embed_arrays([np.zeros((150, 220), np.uint8)] * 3)\n"
        "assert x.shape == (3, 128), x.shape\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[1]
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_cli_export_json(exported, tmp_path, capsys):
    from sigverify.cli import main

    weights, _, _ = exported
    out = tmp_path / "cli.onnx"
    rc = main(["export", "--format", "onnx", "--model", str(weights), "--out", str(out), "--json"])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0 and Path(d["path"]) == out and out.is_file()
    assert d["parity_max_abs_diff"] < 1e-5 and d["model_id"].startswith("onnx-test@")
    with pytest.raises(SystemExit) as exc:
        main(["export", "--format", "pdf"])
    assert exc.value.code == 10


def test_shipped_model_export_is_current():
    """The shipped ONNX export (used by the app when onnxruntime is installed) belongs to the shipped
    weights; re-export with ``sigverify-cli export --out assets/models/sigverify-base.onnx`` after
    retraining."""
    from sigverify.model.card import ModelCard
    from sigverify.paths import default_model_path

    p = default_model_path().with_suffix(".onnx")
    if not p.exists():
        pytest.skip("no shipped ONNX export")
    card = ModelCard.load(default_model_path().with_suffix(".json"))
    assert onnx_backend.read_sidecar(p)["source_weights_sha256"] == card.weights_sha256


def test_verifier_on_the_onnx_file_alone_matches_the_full_verifier(exported, tmp_path):
    """``Verifier('NAME.onnx', device='cpu')`` (the lean runtime) decides exactly like the torch model."""
    from sigverify.verify.service import Verifier
    from tests.helpers import write_sig

    weights, onnx, _ = exported
    a, b = write_sig(tmp_path / "a.png", "Alice Smith", 1), write_sig(tmp_path / "b.png", "Alice Smith", 2)
    c = write_sig(tmp_path / "c.png", "Bob Jones", 3)
    full = Verifier(weights, device="cpu")
    lean = Verifier(onnx, device="cpu")
    assert lean.embedder.backend == "onnxruntime" and "onnxruntime" in lean.device_text
    assert lean.model.model_id == full.model.model_id
    for x, y in ((a, b), (a, c)):
        d_full, d_lean = full.compare(x, y), lean.compare(x, y)
        assert d_lean["verdict"] == d_full["verdict"] and abs(d_lean["distance"] - d_full["distance"]) < 1e-5
    r_full, r_lean = full.verify(c, [a, b]), lean.verify(c, [a, b])
    assert r_lean.decision.verdict.zone == r_full.decision.verdict.zone
    assert abs(r_lean.decision.verdict.distance - r_full.decision.verdict.distance) < 1e-5


def test_lite_cli_verifies_without_torch(exported, tmp_path):
    """sigverify-lite (the lean bundle's command) in a fresh interpreter: verdict exit codes, JSON, no torch."""
    from tests.helpers import write_sig

    _, onnx, _ = exported
    a, b = write_sig(tmp_path / "a.png", "Alice Smith", 1), write_sig(tmp_path / "b.png", "Alice Smith", 1)
    code = (
        "import json, sys\nfrom sigverify.cli.lite import main\n"
        "rc = main(sys.argv[1:])\nprint('TORCH', 'torch' in sys.modules, 'RC', rc)\n"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code, "compare", str(a), str(b), "--model", str(onnx), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
    )
    body, last = out.stdout.rsplit("\n", 2)[0], out.stdout.strip().splitlines()[-1]
    d = json.loads(body)
    assert last == "TORCH False RC 0" and d["verdict"] == "genuine" and d["distance"] < 1e-4  # same image
    bad = subprocess.run(
        [sys.executable, "-m", "sigverify.cli.lite", "compare", str(tmp_path / "none.png"), str(b), "--model", str(onnx)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
    )
    assert bad.returncode == 4 and "no such file" in bad.stderr
    tampered = tmp_path / "t.onnx"
    tampered.write_bytes(onnx.read_bytes()[:-10])
    onnx_backend.sidecar_for(tampered).write_bytes(onnx_backend.sidecar_for(onnx).read_bytes())
    bad = subprocess.run(
        [sys.executable, "-m", "sigverify.cli.lite", "info", "--model", str(tampered)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
    )
    assert bad.returncode == 6 and "SHA-256" in bad.stderr
