"""sigverify-cli: JSON output and documented exit codes (in-process and as a real console script)."""

import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
from helpers import signature

from sigverify.cli import VERDICT_EXIT, main


@pytest.fixture(scope="module")
def imgs(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    paths = {}
    for key, (name, seed, forged) in {
        "a1": ("Alice Smith", 1, False),
        "a2": ("Alice Smith", 2, False),
        "a3": ("Alice Smith", 3, False),
        "b1": ("Bob Jones", 1, False),
    }.items():
        p = d / f"{key}.png"
        cv2.imwrite(str(p), signature(name, seed))
        paths[key] = str(p)
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    paths["corrupt"] = str(d / "corrupt.png")
    cv2.imwrite(str(d / "blank.png"), np.full((200, 400), 255, np.uint8))
    paths["blank"] = str(d / "blank.png")
    refs = d / "refs"
    refs.mkdir()
    for k in ("a1", "a2", "a3"):
        shutil.copy(paths[k], refs / f"{k}.png")
    paths["refs"] = str(refs)
    return paths


def run_json(capsys, argv):
    code = main(argv + ["--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_compare_json_and_exit_code(capsys, imgs):
    code, d = run_json(capsys, ["compare", imgs["a1"], imgs["b1"]])
    for key in ("distance", "score", "verdict", "verdict_text", "threshold_accept", "threshold_reject", "model", "metric"):
        assert key in d
    assert code == VERDICT_EXIT[d["verdict"]]
    assert 0 <= d["score"] <= 100 and d["distance"] >= 0


def test_compare_same_file_is_genuine(capsys, imgs):
    code, d = run_json(capsys, ["compare", imgs["a1"], imgs["a1"]])
    assert d["distance"] == pytest.approx(0.0, abs=1e-5)
    assert d["verdict"] == "genuine" and code == 0


def test_cosine_metric(capsys, imgs):
    code, d = run_json(capsys, ["compare", imgs["a1"], imgs["a2"], "--metric", "cosine"])
    assert d["metric"] == "cosine" and code == VERDICT_EXIT[d["verdict"]]


def test_verify_with_folder_of_references(capsys, imgs):
    code, d = run_json(capsys, ["verify", imgs["b1"], imgs["refs"]])
    assert len(d["distances"]) == 3 and len(d["references"]) == 3
    assert d["mean_distance"] == pytest.approx(np.mean(d["distances"]))
    assert code == VERDICT_EXIT[d["verdict"]]


def test_verify_skips_bad_reference_but_reports_it(capsys, imgs):
    code, d = run_json(capsys, ["verify", imgs["b1"], imgs["a1"], imgs["corrupt"]])
    assert len(d["distances"]) == 1
    assert d["skipped_references"][0]["path"] == imgs["corrupt"]


def test_embed_and_info(capsys, imgs, tmp_path):
    out = tmp_path / "e.npy"
    code, d = run_json(capsys, ["embed", imgs["a1"], imgs["b1"], "--out", str(out)])
    assert code == 0 and d["dim"] == 128 and len(d["results"][0]["embedding"]) == 128
    assert np.load(out).shape == (2, 128)
    code, d = run_json(capsys, ["info"])
    assert code == 0 and "architecture" in d and "calibration" in d and "random_init" in d


@pytest.mark.parametrize("key,code", [("corrupt", 4), ("blank", 5)])
def test_bad_input_exit_codes(capsys, imgs, key, code):
    assert main(["compare", imgs["a1"], imgs[key]]) == code
    err = capsys.readouterr().err
    assert "error" in err and os.path.basename(imgs[key]) in err


def test_missing_file_and_bad_model(capsys, imgs, tmp_path):
    assert main(["compare", imgs["a1"], str(tmp_path / "nope.png")]) == 4
    assert "no such file" in capsys.readouterr().err
    assert main(["compare", imgs["a1"], imgs["a2"], "--model", str(tmp_path / "m.safetensors")]) == 6


def test_usage_error_is_not_a_verdict_code(capsys):
    with pytest.raises(SystemExit) as e:
        main(["compare", "only-one"])
    assert e.value.code == 10


def test_console_script_runs(imgs):
    exe = shutil.which("sigverify-cli") or ""
    cmd = [exe] if exe else [sys.executable, "-m", "sigverify"]
    r = subprocess.run(cmd + ["compare", imgs["a1"], imgs["a1"], "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["verdict"] == "genuine"
