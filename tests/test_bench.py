"""Smoke test of the benchmark code path with tiny repetition counts: JSON keys and types, not timings."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from sigverify import bench


def _is_num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x)


def test_run_benchmarks_keys_and_types():
    r = bench.run_benchmarks(reps=3, cold_start=False, cpu_images=4, gpu_batch_sizes=(2,), batch_items=6)
    for k in bench.JSON_KEYS:
        assert k in r
    for k in (
        "pair_ms_median",
        "pair_ms_p90",
        "cpu_batch_ratio_vs_plain",
        "preprocess_ms_median",
        "pair_cpu_ms_median",
        "cpu_batch_ratio_vs_plain_wall",
        "cpu_plain_images_per_s",
        "cpu_batch_images_per_s",
        "bench_wall_s",
    ):
        assert _is_num(r[k]) and r[k] > 0, (k, r[k])
    assert r["pair_ms_p90"] >= r["pair_ms_median"]
    assert r["cold_start_s"] is None
    assert (r["gpu_images_per_s"] is None) == (r["machine"]["cuda"] is None)
    assert r["cpu_max_abs_diff"] < 1e-4  # ours and plain embed identically
    assert _is_num(r["batch_items_per_s"]) and r["batch_items"] == 6 and r["ray_items_per_s"] is None
    assert set(r["batch_timing_s"]) >= {"read_preprocess", "embed", "decide", "audit"}
    assert _is_num(r["batch_cpu_ms_per_item"]) and r["batch_cpu_ms_per_item"] > 0
    cores = r["machine"]["cpu_count"]
    assert (
        abs(r["batch_items_per_s_cpu_bound"] - cores * 1000 / r["batch_cpu_ms_per_item"])
        < 1e-6 * r["batch_items_per_s_cpu_bound"]
    )
    if r.get("onnx_note") is None:  # onnxruntime installed: measured side by side, same embeddings
        assert _is_num(r["onnx_ratio_vs_torch"]) and r["onnx_max_abs_diff"] < 1e-5
    assert set(r["pair_breakdown_ms"]) == {"load_2_ms", "preprocess_2_ms", "preprocess_2_clean_ms", "embed_2_ms", "score_ms"}
    json.dumps(r)  # JSON-ready as it is
    text = bench.format_table(r)
    assert "pair end to end" in text and "ratio" in text


def test_gpu_code_path_runs_on_cpu():
    """The GPU path (fused, channels-last, autocast, inference_mode) exercised on CPU with bf16."""
    from sigverify.model.weights import random_model

    imgs = [np.zeros((150, 220), np.uint8), np.full((150, 220), 255, np.uint8)]
    g = bench.gpu_throughput(random_model(), imgs, device="cpu", batch_sizes=(2, 3), reps=1, budget_s=1)
    assert set(g["images_per_s_by_batch"]) == {"2", "3"}
    assert all(_is_num(v) for v in g["images_per_s_by_batch"].values())
    assert g["dtype"] == "bf16" and g["device"] == "cpu"
    # parity of the reduced-precision fast path with plain fp32 (bf16 keeps ~3 significant digits)
    assert g["max_abs_diff_vs_fp32"] < 0.05 and g["cosine_min_vs_fp32"] > 0.99
    g32 = bench.gpu_throughput(random_model(), imgs, device="cpu", batch_sizes=(2,), dtype="fp32", reps=1, budget_s=1)
    assert g32["max_abs_diff_vs_fp32"] < 1e-5


def test_cli_bench_json(capsys):
    from sigverify.cli import main

    rc = main(
        ["bench", "--json", "--reps", "2", "--cpu-images", "4", "--no-cold-start", "--no-gpu", "--batch-items", "0", "--no-onnx"]
    )
    d = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert set(bench.JSON_KEYS) <= set(d) and d["gpu_images_per_s"] is None and d["gpu_note"] == "skipped"
    assert d["batch_items_per_s"] is None and d["onnx_ratio_vs_torch"] is None  # skipped on request


def test_cold_start_polls_for_the_screenshot(tmp_path):
    """A stand-in 'GUI' that writes its --screenshot file: the timing path works without Qt."""
    fake = tmp_path / "fake_gui.py"
    fake.write_text(
        "import sys, time\nargs = sys.argv\ntime.sleep(0.1)\nopen(args[args.index('--screenshot') + 1], 'wb').write(b'png')\n"
    )
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    r = bench.bench_cold_start(a, b, timeout_s=20, command=[sys.executable, str(fake)])
    assert _is_num(r["cold_start_s"]) and 0.1 <= r["cold_start_s"] < 20

    broken = tmp_path / "broken_gui.py"
    broken.write_text("import sys\nprint('cannot open display', file=sys.stderr)\nsys.exit(3)\n")
    r = bench.bench_cold_start(a, b, timeout_s=20, command=[sys.executable, str(broken)])
    assert r["cold_start_s"] is None and "cannot open display" in r["cold_start_note"]


def test_parse_importtime():
    sample = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       100 |        100 |     _io",
            "import time:      2000 |    1500000 | torch",
            "import time:       300 |     300000 |   numpy",
            "import time:       500 |      40000 | cv2",
            "import time:       700 |       9000 |     sigverify.imaging.preprocess",
            "import time:       200 |    1600000 | sigverify.verify.service",
            "import time:        50 |         50 | sigverify",
        ]
    )
    r = bench.parse_importtime(sample)
    assert r["import_s"]["torch"] == pytest.approx(1.5)
    assert r["import_s"]["cv2"] == pytest.approx(0.04)
    assert r["import_s"]["sigverify"] == pytest.approx(0.00095, abs=1e-4)
    assert r["import_sigverify_self_s"]["sigverify.imaging.preprocess"] == pytest.approx(0.0007)


def test_import_costs_real_subprocess():
    r = bench.import_costs(["sigverify.imaging.load"])
    assert _is_num(r["imports_wall_s"]) and "sigverify" in r["import_s"]


@pytest.mark.skipif(not bench.gui_available(), reason="GUI not written yet")
def test_first_window_subprocess():
    r = bench.bench_first_window(timeout_s=60)
    assert _is_num(r["first_window_s"]), r.get("first_window_note")


def _reference_threshold_components(mask, h, w):
    """The speckle filter as it was before the fast path: default labelling, always re-mapped."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    keep = np.zeros(n, dtype=bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= max(3, int(2e-5 * h * w))
    return keep[labels].astype(np.uint8)


def test_fast_preprocessing_is_bit_identical(monkeypatch):
    """The preprocessing speedups (Grana labelling, no re-map when no speck is dropped) give exactly
    the network input of the reference implementation, on clean, specked, noisy and colour scans."""
    import cv2

    import sigverify.imaging.preprocess  # noqa: F401
    from sigverify.imaging.preprocess import preprocess
    from sigverify.samples import draw_signature

    rng = np.random.default_rng(7)
    images = []
    for k in range(12):
        img = draw_signature(
            ["Alice Smith", "Bob Jones", "Chen Wei"][k % 3],
            k,
            0.6,
            forged=k % 4 == 0,
            size=[(300, 800), (150, 420), (640, 1200)][k % 3],
        )
        if k % 2:  # specks and noise: the filter drops components
            img = img.copy()
            ys, xs = rng.integers(0, img.shape[0], 60), rng.integers(0, img.shape[1], 60)
            img[ys, xs] = 0
            img = np.clip(img.astype(np.int16) + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
        if k % 3 == 2:
            img = np.dstack([img, np.minimum(255, img.astype(np.int16) + 20).astype(np.uint8), img])
        images.append(img)
    fast = [preprocess(i, document=False).input for i in images]
    real_cc = cv2.connectedComponentsWithStatsWithAlgorithm
    seen = {"drops": 0}

    def reference(mask, connectivity, ltype, ccltype):
        n, labels, stats, cent = cv2.connectedComponentsWithStats(mask, connectivity=connectivity)
        if (stats[1:, cv2.CC_STAT_AREA] < max(3, int(2e-5 * mask.size))).any():
            seen["drops"] += 1
        return n, labels, stats, cent

    monkeypatch.setattr(cv2, "connectedComponentsWithStatsWithAlgorithm", reference)
    ref = [preprocess(i, document=False).input for i in images]
    monkeypatch.setattr(cv2, "connectedComponentsWithStatsWithAlgorithm", real_cc)
    assert seen["drops"] >= 3  # both branches (drop / nothing to drop) were exercised
    for a, b in zip(fast, ref):
        assert a.dtype == np.uint8 and np.array_equal(a, b)
    # and the component membership itself equals the reference filter on a specked mask
    m = (rng.random((300, 800)) < 0.02).astype(np.uint8)
    n, labels, stats, _ = real_cc(m, 8, cv2.CV_32S, cv2.CCL_GRANA)
    keep = np.zeros(n, dtype=bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= max(3, int(2e-5 * 300 * 800))
    assert np.array_equal(keep[labels].astype(np.uint8), _reference_threshold_components(m, 300, 800))
