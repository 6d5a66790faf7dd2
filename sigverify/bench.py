"""Speed benchmarks, measured side by side in one process (``sigverify-cli bench``).

What is measured (see docs/benchmarks.md for the exact definitions and the latest numbers):

* ``pair``        one pair end to end on CPU through ``Verifier.compare`` with a warm model:
                  load both PNGs + preprocess both + embed both (one batch of 2) + distance + verdict.
* ``preprocess``  ``preprocess()`` of one decoded image (no file I/O).
* ``cpu_batch``   embedding throughput: *plain* = the same network, eval-mode float32 eager PyTorch,
                  contiguous (NCHW) memory, autograd on (no ``inference_mode``/``no_grad``), one image
                  per call; *ours* = ``Embedder.embed_arrays`` on all images at once (BatchNorm folded
                  into the conv/linear weights, channels-last, ``inference_mode``, micro-batches).
                  Both sides run at the same torch thread count.
* ``gpu``         (only with CUDA) images/s at batch 256..1024: uint8 upload, channels-last,
                  fp16/bf16 autocast, ``inference_mode``, BatchNorm folded, optionally ``torch.compile``.
* ``cold_start``  GUI (QT_QPA_PLATFORM=offscreen): a fresh interpreter until the main window is shown
                  and exposed (the model still loading in the background, as in the app); also a
                  fresh ``sigverify --screenshot`` run until its PNG exists (model loaded + one
                  comparison shown); plus a ``python -X importtime`` breakdown.

Images are synthetic (``sigverify.samples.draw_signature``) written to a temporary folder - never a
data set. Qt-free: the GUI is only ever started in a subprocess.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from sigverify.progress import Progress

#: keys always present in the JSON result (None where not measured)
JSON_KEYS = (
    "pair_ms_median",
    "pair_ms_p90",
    "cpu_batch_ratio_vs_plain",
    "preprocess_ms_median",
    "cold_start_s",
    "gpu_images_per_s",
    "batch_items_per_s",
    "ray_items_per_s",
    "onnx_ratio_vs_torch",
    "bundle_mb",
)

CPU_WARM = 16  # images embedded once before timing (builds the fused network)

_NAMES = ("Alice Smith", "Bob Jones", "Chen Wei", "Dana Kowalski", "Emeka Obi", "Fatima Zahra")


def _stats(ts: list[float]) -> tuple[float, float]:
    a = np.asarray(ts, dtype=np.float64) * 1000.0
    return float(np.median(a)), float(np.percentile(a, 90))


def _timed(
    fn: Callable[[], object], reps: int, budget_s: float, min_reps: int = 3, cpu: list[float] | None = None
) -> list[float]:
    """Run ``fn`` up to ``reps`` times (at least ``min_reps``) or until ``budget_s`` is spent; returns
    wall seconds per call, and appends process CPU seconds per call to ``cpu`` when given."""
    ts: list[float] = []
    start = time.perf_counter()
    for i in range(max(reps, 1)):
        c = time.process_time()
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
        if cpu is not None:
            cpu.append(time.process_time() - c)
        if i + 1 >= min_reps and time.perf_counter() - start > budget_s:
            break
    return ts


def make_images(out_dir: str | os.PathLike, n: int = 6) -> list[Path]:
    """Write ``n`` synthetic signatures (300x800 grey PNG) into ``out_dir``."""
    import cv2

    from sigverify.samples import draw_signature

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        img = draw_signature(_NAMES[i % len(_NAMES)], seed=i, variation=0.6)
        p = out / f"bench_{i}.png"
        cv2.imwrite(str(p), img)
        paths.append(p)
    return paths


# --------------------------------------------------------------------------------------------- pair
def bench_pair(verifier, paths: list[Path], reps: int = 40, budget_s: float = 6.0) -> dict:
    pairs = [(paths[i % len(paths)], paths[(i + 1) % len(paths)]) for i in range(len(paths))]
    for a, b in pairs[:2]:  # warm-up: first-call allocations, fused network built
        verifier.compare(a, b)
    k = iter(range(10**9))

    def one():
        a, b = pairs[next(k) % len(pairs)]
        verifier.compare(a, b)

    cpu: list[float] = []
    ts = _timed(one, reps, budget_s, cpu=cpu)
    med, p90 = _stats(ts)
    return {"pair_ms_median": med, "pair_ms_p90": p90, "pair_cpu_ms_median": _stats(cpu)[0], "pair_reps": len(ts)}


def bench_pair_breakdown(verifier, path_a: Path, path_b: Path, reps: int = 15) -> dict:
    """Median ms of each stage of one pair (load x2, preprocess x2, embed pair, score)."""
    from sigverify.imaging.load import load_image
    from sigverify.imaging.preprocess import preprocess
    from sigverify.verify.calibration import verdict_for
    from sigverify.verify.distances import distance

    cfg = verifier.embedder.preprocess_config
    ia, ib = load_image(path_a), load_image(path_b)
    pa, pb = preprocess(ia, cfg), preprocess(ib, cfg)
    ea, eb = verifier.embedder.embed_arrays([pa.input, pb.input])
    parts = {
        "load_2_ms": lambda: (load_image(path_a), load_image(path_b)),
        "preprocess_2_ms": lambda: (preprocess(ia, cfg), preprocess(ib, cfg)),
        # the clean-crop pipeline alone (what the default costs without the cheque/document check)
        "preprocess_2_clean_ms": lambda: (preprocess(ia, cfg, document=False), preprocess(ib, cfg, document=False)),
        "embed_2_ms": lambda: verifier.embedder.embed_arrays([pa.input, pb.input]),
        "score_ms": lambda: verdict_for(distance(ea, eb, verifier.metric), verifier.calibration),
    }
    return {k: _stats(_timed(f, reps, 2.0))[0] for k, f in parts.items()}


def profile_pair(verifier, path_a: Path, path_b: Path, reps: int = 30, top: int = 18) -> str:
    """cProfile of ``reps`` warm ``Verifier.compare`` calls; the top functions by own time."""
    import cProfile
    import io
    import pstats

    verifier.compare(path_a, path_b)
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(reps):
        verifier.compare(path_a, path_b)
    pr.disable()
    s = io.StringIO()
    pstats.Stats(pr, stream=s).strip_dirs().sort_stats("tottime").print_stats(top)
    return s.getvalue()


# ------------------------------------------------------------------------------------- preprocess
def bench_preprocess(paths: list[Path], cfg=None, reps: int = 40, budget_s: float = 3.0) -> dict:
    from sigverify.imaging.load import load_image
    from sigverify.imaging.preprocess import preprocess

    imgs = [load_image(p) for p in paths]
    preprocess(imgs[0], cfg)
    k = iter(range(10**9))
    cpu: list[float] = []
    ts = _timed(lambda: preprocess(imgs[next(k) % len(imgs)], cfg), reps, budget_s, cpu=cpu)
    med, p90 = _stats(ts)
    return {
        "preprocess_ms_median": med,
        "preprocess_ms_p90": p90,
        "preprocess_cpu_ms_median": _stats(cpu)[0],
        "preprocess_shape": list(imgs[0].shape),
    }


# -------------------------------------------------------------------------------------- CPU batch
def bench_cpu_batch(
    model, inputs: list[np.ndarray], n_images: int = 64, threads: int | None = 1, rounds: int = 4, budget_s: float = 10.0
) -> dict:
    """Plain eager per-image vs ``Embedder.embed_arrays`` batched: same network, same thread count,
    measured in interleaved rounds (plain, ours, plain, ours, ...) so both see the same machine load.

    The headline ratio uses process CPU time per image (robust to other jobs competing for the
    cores); the wall-clock ratio is reported beside it.
    """
    import torch

    from sigverify.model.embedder import Embedder

    old_threads = torch.get_num_threads()
    threads = threads or old_threads
    torch.set_num_threads(threads)
    try:
        imgs = [inputs[i % len(inputs)] for i in range(n_images)]
        # plain: a private copy, default (contiguous) memory format, eval mode, autograd on, batch 1
        plain = copy.deepcopy(model.network).to("cpu").to(memory_format=torch.contiguous_format).eval()
        n_plain = max(4, min(n_images, 16))  # per-image speed is flat: fewer images suffice
        xs = [torch.from_numpy(imgs[i].astype(np.float32)[None, None] / 255.0) for i in range(n_plain)]

        def run_plain():
            for x in xs:
                plain(x).detach().numpy()

        emb = Embedder(model, "cpu", backend="torch")  # the torch path (onnxruntime: bench_onnx)
        emb.cpu_threads = threads
        run_plain()
        emb.embed_arrays(imgs[:CPU_WARM])
        p_wall, p_cpu, o_wall, o_cpu = [], [], [], []
        start = time.perf_counter()
        for r in range(max(2, rounds)):
            p_wall += _timed(run_plain, 1, 0, min_reps=1, cpu=p_cpu)
            o_wall += _timed(lambda: emb.embed_arrays(imgs), 1, 0, min_reps=1, cpu=o_cpu)
            if r >= 1 and time.perf_counter() - start > budget_s:
                break
        per = lambda ts, n: float(np.median(ts)) / n  # noqa: E731
        plain_ips, ours_ips = 1 / per(p_wall, n_plain), 1 / per(o_wall, n_images)
        plain_cpu_ips, ours_cpu_ips = 1 / per(p_cpu, n_plain), 1 / per(o_cpu, n_images)
        # results must agree (same network): report the largest embedding difference
        with torch.inference_mode():
            ref = plain(torch.from_numpy(np.stack(imgs[:4]).astype(np.float32)[:, None] / 255.0)).numpy()
        diff = float(np.abs(emb.embed_arrays(imgs[:4]) - ref).max())
    finally:
        torch.set_num_threads(old_threads)
    return {
        "cpu_batch_ratio_vs_plain": ours_cpu_ips / plain_cpu_ips,
        "cpu_batch_ratio_vs_plain_wall": ours_ips / plain_ips,
        "cpu_plain_images_per_cpu_s": plain_cpu_ips,
        "cpu_batch_images_per_cpu_s": ours_cpu_ips,
        "cpu_plain_images_per_s": plain_ips,
        "cpu_batch_images_per_s": ours_ips,
        "cpu_batch_images": n_images,
        "cpu_batch_rounds": len(o_wall),
        "cpu_threads": threads,
        "cpu_max_abs_diff": diff,
    }


# -------------------------------------------------------------------------------------------- GPU
def gpu_throughput(
    model,
    inputs: list[np.ndarray],
    device: str = "cuda",
    batch_sizes=(256, 1024),
    dtype: str = "auto",
    compile: bool = False,
    reps: int = 5,
    budget_s: float = 10.0,
) -> dict:
    """Images/s of the embedding network on ``device`` per batch size (uint8 upload included).

    Path: BatchNorm folded, channels-last, autocast (fp16 on CUDA, or bf16 where supported /
    requested), ``inference_mode``, optionally ``torch.compile``. Works on CPU too (bf16 autocast) so
    the code path can be tested without a GPU.
    """
    import torch

    from sigverify.model.embedder import fuse_for_inference

    dev = torch.device(device)
    if dtype == "auto":
        dtype = "fp16" if dev.type == "cuda" else "bf16"
    amp = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": None}[dtype]
    net = fuse_for_inference(model.network).to(dev).to(memory_format=torch.channels_last)
    if compile:
        net = torch.compile(net, mode="max-autotune-no-cudagraphs" if dev.type == "cuda" else "default")
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    out: dict[str, float] = {}
    for bs in batch_sizes:
        host = torch.from_numpy(np.stack([inputs[i % len(inputs)] for i in range(bs)])[:, None].copy())
        if dev.type == "cuda":
            host = host.pin_memory()

        @torch.inference_mode()
        def run():
            x = host.to(dev, non_blocking=True).float().div_(255.0).contiguous(memory_format=torch.channels_last)
            if amp is not None:
                with torch.autocast(device_type=dev.type, dtype=amp):
                    y = net(x)
            else:
                y = net(x)
            y.float().cpu()
            sync()

        run()
        run()
        ts = _timed(run, reps, budget_s / max(len(batch_sizes), 1), min_reps=2)
        out[str(bs)] = bs / float(np.median(ts))
    # parity of the fast path (fused, channels-last, reduced precision, compiled) with plain fp32
    probe = torch.from_numpy(np.stack([inputs[i % len(inputs)] for i in range(8)])[:, None].astype(np.float32) / 255.0)
    with torch.inference_mode():
        ref = copy.deepcopy(model.network).to("cpu").float().eval()(probe).numpy()
        x = probe.to(dev).contiguous(memory_format=torch.channels_last)
        if amp is not None:
            with torch.autocast(device_type=dev.type, dtype=amp):
                fast = net(x).float().cpu().numpy()
        else:
            fast = net(x).float().cpu().numpy()
    return {
        "images_per_s_by_batch": out,
        "dtype": dtype,
        "compiled": compile,
        "device": str(dev),
        "max_abs_diff_vs_fp32": float(np.abs(fast - ref).max()),
        "cosine_min_vs_fp32": float(np.min(np.sum(fast * ref, 1) / (np.linalg.norm(fast, axis=1) * np.linalg.norm(ref, axis=1)))),
    }


# ------------------------------------------------------------------------------------ onnxruntime
def bench_onnx(
    model,
    inputs: list[np.ndarray],
    n_images: int = 64,
    threads: int | None = 1,
    rounds: int = 4,
    budget_s: float = 8.0,
    onnx_path=None,
) -> dict:
    """onnxruntime vs our torch path (BatchNorm folded, channels-last, inference_mode), same network,
    same thread count, interleaved rounds, batch ``n_images`` and a pair (batch 2). Needs onnxruntime
    and an ONNX export of the model (the verified one beside the weights / in the user folder, else a
    temporary export, which needs the ``onnx`` extra)."""
    from sigverify.model import onnx_backend
    from sigverify.model.embedder import Embedder

    if not onnx_backend.available():
        return {"onnx_note": "onnxruntime not installed (extra 'onnx')"}
    import torch

    threads = threads or torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix="sigverify-onnx-") as td:
        path = onnx_path or onnx_backend.find_export(model.card, model.path)
        if path is None:
            try:
                path = onnx_backend.export_onnx(model, Path(td) / "bench.onnx", parity_images=2)["path"]
            except Exception as exc:  # noqa: BLE001 - reported, not fatal for the rest of the bench
                return {"onnx_note": f"no ONNX export and exporting failed ({exc})"}
        rt = onnx_backend.OnnxRuntime(path, threads=threads)
        emb = Embedder(model, "cpu", backend="torch")
        emb.cpu_threads = threads
        imgs = [inputs[i % len(inputs)] for i in range(n_images)]
        old = torch.get_num_threads()
        try:
            rt.run(imgs[:CPU_WARM])
            emb.embed_arrays(imgs[:CPU_WARM])
            t_wall, t_cpu, o_wall, o_cpu, tp, op = [], [], [], [], [], []
            start = time.perf_counter()
            for r in range(max(2, rounds)):
                t_wall += _timed(lambda: emb.embed_arrays(imgs), 1, 0, min_reps=1, cpu=t_cpu)
                o_wall += _timed(lambda: rt.run(imgs), 1, 0, min_reps=1, cpu=o_cpu)
                tp += _timed(lambda: emb.embed_arrays(imgs[:2]), 10, 0, min_reps=10)
                op += _timed(lambda: rt.run(imgs[:2]), 10, 0, min_reps=10)
                if r >= 1 and time.perf_counter() - start > budget_s:
                    break
            diff = float(np.abs(rt.run(imgs[:8]) - emb.embed_arrays(imgs[:8])).max())
        finally:
            torch.set_num_threads(old)
    med = lambda ts: float(np.median(ts))  # noqa: E731
    return {
        "onnx_ratio_vs_torch": med(t_cpu) / med(o_cpu),
        "onnx_ratio_vs_torch_wall": med(t_wall) / med(o_wall),
        "onnx_images_per_s": n_images / med(o_wall),
        "torch_images_per_s": n_images / med(t_wall),
        "onnx_pair_embed_ms": med(op) * 1000,
        "torch_pair_embed_ms": med(tp) * 1000,
        "onnx_max_abs_diff": diff,
        "onnx_threads": threads,
    }


# ------------------------------------------------------------------------------------------ batch
def make_batch_world(root: str | os.PathLike, verifier, n: int = 120, customers: int = 4, refs: int = 3, size=(300, 800)):
    """A temporary library with ``customers`` enrolled (``refs`` synthetic specimens each) and ``n``
    synthetic questioned scans; returns (library, manifest CSV path, plain batch CSV path)."""
    import cv2

    from sigverify.app.library_service import LibraryService
    from sigverify.samples import draw_signature
    from sigverify.store.library import Library

    root = Path(root)
    lib = Library(root / "library.sqlite3", operator="benchmark")
    for c in range(customers):
        name = _NAMES[c % len(_NAMES)]
        paths = []
        for i in range(refs):
            p = root / "refs" / f"C{c:03d}_{i}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(p), draw_signature(name, i, 0.6, size=size))
            paths.append(p)
        LibraryService(lib, verifier).enrol(f"C{c:03d}", paths, name=name)
    rows = []
    for k in range(n):
        c = k % customers
        p = root / "q" / f"C{c:03d}" / f"q{k:05d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(p), draw_signature(_NAMES[c % len(_NAMES)], 1000 + k, 0.6, forged=(k % 3 == 0), size=size))
        rows.append((f"item{k:05d}", f"C{c:03d}", str(p)))
    manifest = root / "manifest.csv"
    manifest.write_text("item_id,customer_id,path\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows))
    plain = root / "plain.csv"
    plain.write_text("".join(f"{b},{c}\n" for _, b, c in rows))
    return lib, manifest, plain


def bench_batch(verifier, n: int = 120, ray_workers=(), workers: int | None = None) -> dict:
    """Batch verification end to end (read + decode + preprocess + embed + decide + audit) of ``n``
    synthetic 300x800 scans: the single-process ``run_batch`` and, for each count in ``ray_workers``,
    the Ray engine on a local Ray (2 CPUs), each on its own fresh copy of the library."""
    from sigverify.batch import load_items, run_batch

    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="sigverify-batch-") as td:
        lib, manifest, plain = make_batch_world(Path(td) / "a", verifier, n)
        items = load_items(plain)
        run_batch(items[:8], lib, verifier, audit=False, workers=workers)  # warm-up
        c0 = time.process_time()
        rep = run_batch(items, lib, verifier, workers=workers)
        cpu_s = time.process_time() - c0  # all threads of this process: the CPU work per item
        lib.close()
        out.update(
            {
                "batch_items_per_s": rep.images_per_s,
                # process CPU time per item, and the rate that work allows on the machine's cores when
                # they are free (a loaded machine inflates the wall clock, not the work per item)
                "batch_cpu_ms_per_item": 1000 * cpu_s / max(n, 1),
                "batch_items_per_s_cpu_bound": (os.cpu_count() or 1) * n / cpu_s if cpu_s > 0 else None,
                "batch_items": n,
                "batch_timing_s": rep.summary_dict()["timing_s"],
                "batch_backend": verifier.embedder.backend,
            }
        )
        if ray_workers:
            try:
                from sigverify.cluster import ray_batch

                ray_batch.require_ray()
            except Exception as exc:  # noqa: BLE001
                out["ray_note"] = str(exc)
                return out
            per: dict[str, float] = {}
            t0 = time.perf_counter()
            ray_batch.start_ray(None, num_cpus=2)
            out["ray_start_s"] = time.perf_counter() - t0
            warm_lib, warm_manifest, _ = make_batch_world(Path(td) / "warm", verifier, 8, customers=2)
            half = max(1, n // 2)
            for k, w in enumerate(ray_workers):
                lib_r, manifest_r, _ = make_batch_world(Path(td) / f"r{k}", verifier, n)
                # warm-up run: worker processes import sigverify once (Ray keeps them for later tasks)
                ray_batch.run_ray_batch(
                    warm_manifest, warm_lib, verifier, Path(td) / "warm" / f"o{k}.csv", workers=w, audit=False
                )
                items = ray_batch.read_manifest(manifest_r)
                walls = {}
                for m in (half, n):  # two sizes: the difference is the steady rate, the rest fixed cost
                    t0 = time.perf_counter()
                    r = ray_batch.run_ray_batch(items[:m], lib_r, verifier, Path(td) / f"r{k}" / f"out{m}.csv", workers=w)
                    walls[m] = time.perf_counter() - t0
                lib_r.close()
                steady = (n - half) / (walls[n] - walls[half]) if n > half and walls[n] > walls[half] else None
                per[str(w)] = {
                    "items_per_s": n / walls[n],
                    "steady_items_per_s": steady,
                    "fixed_s": (walls[half] - half / steady) if steady else None,
                    "timing_s": r.ray_summary["timing_s"],
                }
            warm_lib.close()
            import ray

            ray.shutdown()
            out["ray_by_workers"] = per
            out["ray_items_per_s"] = max(v["items_per_s"] for v in per.values())
            out["ray_steady_items_per_s"] = max((v["steady_items_per_s"] or 0) for v in per.values()) or None
    return out


def bundle_sizes(root: str | os.PathLike | None = None) -> dict:
    """MB of built PyInstaller bundles found in ``dist/`` (full: dist/sigverify, lean: dist/sigverify-lite)."""
    root = Path(root) if root else Path(__file__).resolve().parent.parent
    out = {}
    for key, name in (("bundle_mb", "sigverify"), ("bundle_lite_mb", "sigverify-lite")):
        d = root / "dist" / name
        if d.is_dir():
            out[key] = sum(f.stat().st_size for f in d.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6
    return out


# ------------------------------------------------------------------------------------ cold start
def gui_available() -> bool:
    try:
        return importlib.util.find_spec("sigverify.gui.app") is not None
    except (ImportError, ValueError):
        return False


def _child_env() -> dict:
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def bench_cold_start(
    reference: Path, questioned: Path, timeout_s: float = 30.0, runs: int = 1, command: list[str] | None = None
) -> dict:
    """Seconds from spawning the GUI to its screenshot PNG existing (first window shown + painted).

    ``command`` (default: this interpreter running ``sigverify.gui.app.main``) gets
    ``--reference --questioned --screenshot`` appended. Returns ``cold_start_s`` None when the GUI is
    not installed or does not produce a screenshot.
    """
    if command is None and not gui_available():
        return {"cold_start_s": None, "cold_start_note": "GUI (sigverify.gui.app) not present: skipped"}
    cmd = command or [sys.executable, "-c", "import sys; from sigverify.gui.app import main; sys.exit(main())"]
    times, note = [], None
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as td:
            shot = Path(td) / "shot.png"
            full = cmd + ["--reference", str(reference), "--questioned", str(questioned), "--screenshot", str(shot)]
            t0 = time.perf_counter()
            proc = subprocess.Popen(full, env=_child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            t_shot = None
            while time.perf_counter() - t0 < timeout_s:
                if shot.exists() and shot.stat().st_size > 0:
                    t_shot = time.perf_counter() - t0
                    break
                if proc.poll() is not None:
                    if shot.exists() and shot.stat().st_size > 0:
                        t_shot = time.perf_counter() - t0
                    break
                time.sleep(0.01)
            try:
                _, err = proc.communicate(timeout=max(1.0, timeout_s - (time.perf_counter() - t0)))
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            if t_shot is None:
                tail = (err or b"").decode(errors="replace").strip().splitlines()[-3:]
                note = f"no screenshot (exit {proc.returncode}): {' | '.join(tail)}"
                break
            times.append(t_shot)
    if not times:
        return {"cold_start_s": None, "cold_start_note": note}
    return {"cold_start_s": float(min(times)), "cold_start_runs": [round(t, 3) for t in times]}


_FIRST_WINDOW = r"""
import os, sys, time
from PySide6.QtWidgets import QApplication
from PySide6.QtTest import QTest
from sigverify.gui.main_window import MainWindow
app = QApplication.instance() or QApplication(sys.argv[:1])
app.setStyle("Fusion")
w = MainWindow()  # no verifier given: the model loads in the background, as in the app
w.show()
QTest.qWaitForWindowExposed(w, 10000)
app.processEvents()
print("SHOWN", flush=True)
try:
    w.jobs.shutdown()
finally:
    os._exit(0)
"""


def bench_first_window(timeout_s: float = 30.0, runs: int = 1) -> dict:
    """Seconds from spawning a fresh interpreter to the main window being shown and exposed
    (QT_QPA_PLATFORM=offscreen): imports + QApplication + MainWindow; the model keeps loading in the
    background, as it does in the app."""
    if not gui_available():
        return {"first_window_s": None, "first_window_note": "GUI (sigverify.gui.main_window) not present: skipped"}
    times, note = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", _FIRST_WINDOW], env=_child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        line = proc.stdout.readline() if proc.stdout else ""
        t = time.perf_counter() - t0
        try:
            _, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if line.strip() != "SHOWN":
            note = "window not shown: " + " | ".join((err or "").strip().splitlines()[-3:])
            break
        times.append(t)
    if not times:
        return {"first_window_s": None, "first_window_note": note}
    return {"first_window_s": float(min(times)), "first_window_runs": [round(x, 3) for x in times]}


IMPORT_GROUPS = ("torch", "cv2", "PySide6", "numpy", "PIL", "safetensors", "matplotlib", "sigverify")


def import_costs(modules: list[str] | None = None, timeout_s: float = 60.0) -> dict:
    """``python -X importtime`` of what the app imports at start: cumulative seconds per top-level
    package (torch, cv2, PySide6, ...) and per sigverify module, plus the wall time of the imports."""
    if modules is None:  # in the app's order: the window's modules first, then the model side
        modules = []
        if importlib.util.find_spec("PySide6") is not None:
            modules.append("PySide6.QtWidgets")
        if gui_available():
            modules += ["sigverify.gui.app", "sigverify.gui.main_window"]
        modules.append("sigverify.verify.service")
    code = "import time; t=time.perf_counter(); " + "; ".join(f"import {m}" for m in modules) + "; print(time.perf_counter()-t)"
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], env=_child_env(), capture_output=True, text=True, timeout=timeout_s
    )
    return parse_importtime(proc.stderr) | {"imports_wall_s": _float_or_none(proc.stdout.strip()), "imported": modules}


def _float_or_none(s: str):
    try:
        return float(s.splitlines()[-1])
    except (ValueError, IndexError):
        return None


_IT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)\s*$")


def parse_importtime(stderr: str) -> dict:
    """Group ``-X importtime`` output by top-level package: the cumulative seconds of every import of a
    package's modules that was not made by the same package (so ``torch`` includes what torch pulls
    in, e.g. sympy, and ``PySide6`` the Qt modules imported by sigverify's GUI); plus each sigverify
    module's own (self) time. ``sigverify`` is reported as the sum of its modules' self times."""
    entries = []
    for line in stderr.splitlines():
        m = _IT_LINE.match(line)
        if m:
            entries.append((int(m.group(1)), int(m.group(2)), (len(m.group(3)) - 1) // 2, m.group(4)))
    groups: dict[str, float] = {}
    sig_self: dict[str, float] = {}
    stack: list[str] = []
    for self_us, cum_us, depth, name in reversed(entries):  # reversed post-order = pre-order
        del stack[depth:]
        parent = stack[-1] if stack else None
        stack.append(name)
        top = name.split(".")[0]
        if parent is None or parent.split(".")[0] != top:
            groups[top] = groups.get(top, 0.0) + cum_us / 1e6
        if top == "sigverify":
            sig_self[name] = sig_self.get(name, 0.0) + self_us / 1e6
    if sig_self:
        groups["sigverify"] = sum(sig_self.values())
    main = {k: round(v, 4) for k, v in groups.items() if k in IMPORT_GROUPS}
    others = sorted(((v, k) for k, v in groups.items() if k not in IMPORT_GROUPS), reverse=True)[:5]
    top_sig = dict(sorted(sig_self.items(), key=lambda kv: -kv[1])[:12])
    return {
        "import_s": main,
        "import_other_top_s": {k: round(v, 4) for v, k in others},
        "import_sigverify_self_s": {k: round(v, 4) for k, v in top_sig.items()},
    }


# ------------------------------------------------------------------------------------------- all
def run_benchmarks(
    model_path=None,
    reps: int = 40,
    cold_start: bool = True,
    gpu: bool = True,
    gpu_batch_sizes=(256, 1024),
    gpu_compile: bool = False,
    threads: int | None = 1,
    cpu_images: int = 64,
    breakdown: bool = True,
    progress: Progress | None = None,
    batch_items: int = 120,
    ray_workers=(),
    onnx: bool = True,
) -> dict:
    """All benchmarks; returns a JSON-ready dict with at least ``JSON_KEYS``."""
    import torch

    from sigverify.imaging.load import load_image
    from sigverify.imaging.preprocess import preprocess
    from sigverify.verify.service import Verifier

    steps = iter(range(7))

    def say(msg: str) -> None:  # progress(fraction, message): the one progress type
        if progress:
            progress(next(steps, 6) / 7, msg)

    t_all = time.perf_counter()
    res: dict = {k: None for k in JSON_KEYS}
    res["machine"] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(terse=True),
        "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    with tempfile.TemporaryDirectory(prefix="sigverify-bench-") as td:
        paths = make_images(td, 6)
        say("pair (load + preprocess + embed + score)")
        v = Verifier(model_path, device="cpu")
        res["model"] = v.model.model_id
        res["random_weights"] = v.card.random_init
        res.update(bench_pair(v, paths, reps))
        if breakdown:
            res["pair_breakdown_ms"] = bench_pair_breakdown(v, paths[0], paths[1])
        say("preprocess")
        res.update(bench_preprocess(paths, v.embedder.preprocess_config, reps))
        inputs = [preprocess(load_image(p), v.embedder.preprocess_config).input for p in paths]
        res["backend"] = v.embedder.backend
        say("CPU batch vs plain")
        res.update(bench_cpu_batch(v.model, inputs, n_images=cpu_images, threads=threads))
        if onnx:
            say("onnxruntime vs torch")
            res.update(bench_onnx(v.model, inputs, n_images=cpu_images, threads=threads))
        if batch_items:
            say(f"batch of {batch_items} items" + (f" (+ Ray, workers {list(ray_workers)})" if ray_workers else ""))
            res.update(bench_batch(v, batch_items, tuple(ray_workers)))
        res.update(bundle_sizes())
        if gpu and torch.cuda.is_available():
            say("GPU")
            g = gpu_throughput(v.model, inputs, "cuda", gpu_batch_sizes, compile=gpu_compile)
            res["gpu"] = g
            res["gpu_images_per_s"] = max(g["images_per_s_by_batch"].values())
        else:
            res["gpu_note"] = "no CUDA device" if gpu else "skipped"
        if cold_start:
            say("cold start")
            fw = bench_first_window()
            shot = bench_cold_start(paths[0], paths[1])
            res["cold_start_s"] = fw["first_window_s"]
            res["cold_start_note"] = fw.get("first_window_note")
            res["first_window_runs"] = fw.get("first_window_runs")
            res["cold_start_screenshot_s"] = shot["cold_start_s"]
            res["cold_start_screenshot_note"] = shot.get("cold_start_note")
            res.update(import_costs())
    res["loadavg_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    res["bench_wall_s"] = time.perf_counter() - t_all
    return res


def format_table(r: dict) -> str:
    def f(x, fmt="{:.1f}"):
        return "n/a" if x is None else fmt.format(x)

    rows = [
        (
            "pair end to end (CPU, warm)",
            f"median {f(r['pair_ms_median'])} ms, p90 {f(r['pair_ms_p90'])} ms (CPU time {f(r.get('pair_cpu_ms_median'))} ms)",
            "target <= 15 ms median",
        ),
    ]
    if r.get("pair_breakdown_ms"):
        b = r["pair_breakdown_ms"]
        rows.append(("  of which", ", ".join(f"{k[:-3]} {v:.1f}" for k, v in b.items()) + " ms", ""))
    rows += [
        (
            "preprocess one image",
            f"median {f(r['preprocess_ms_median'])} ms"
            f" (CPU {f(r.get('preprocess_cpu_ms_median'))} ms)"
            + (f" ({r['preprocess_shape'][1]}x{r['preprocess_shape'][0]})" if r.get("preprocess_shape") else ""),
            "",
        ),
        (
            "CPU embed, plain eager b=1",
            f"{f(r.get('cpu_plain_images_per_cpu_s'))} img/CPU-s, {f(r.get('cpu_plain_images_per_s'))} img/s wall",
            f"{r.get('cpu_threads')} thread(s)",
        ),
        (
            "CPU embed, ours batched",
            f"{f(r.get('cpu_batch_images_per_cpu_s'))} img/CPU-s, {f(r.get('cpu_batch_images_per_s'))} img/s wall",
            f"ratio {f(r['cpu_batch_ratio_vs_plain'], '{:.2f}')}x CPU time, "
            f"{f(r.get('cpu_batch_ratio_vs_plain_wall'), '{:.2f}')}x wall (target >= 2x)",
        ),
        (
            "CPU embed, onnxruntime vs torch",
            "n/a"
            if r.get("onnx_ratio_vs_torch") is None
            else f"{r['onnx_ratio_vs_torch']:.2f}x CPU time, {r['onnx_ratio_vs_torch_wall']:.2f}x wall "
            f"({r['onnx_images_per_s']:.0f} vs {r['torch_images_per_s']:.0f} img/s; pair embed "
            f"{r['onnx_pair_embed_ms']:.1f} vs {r['torch_pair_embed_ms']:.1f} ms)",
            r.get("onnx_note") or f"backend in use: {r.get('backend')}",
        ),
        (
            "batch end to end (1 process)",
            "n/a"
            if r.get("batch_items_per_s") is None
            else f"{r['batch_items_per_s']:.1f} items/s ({r.get('batch_items')} items)"
            + (
                f", {r['batch_cpu_ms_per_item']:.1f} CPU-ms/item (= {r['batch_items_per_s_cpu_bound']:.0f}/s on free cores)"
                if r.get("batch_items_per_s_cpu_bound")
                else ""
            ),
            "target >= 60 items/s",
        ),
        (
            "batch on local Ray",
            "n/a"
            if r.get("ray_items_per_s") is None
            else ", ".join(
                f"{k} worker(s) {v['items_per_s']:.1f} items/s"
                + (
                    f" (steady {v['steady_items_per_s']:.1f}/s + {v['fixed_s']:.1f} s fixed)"
                    if v.get("steady_items_per_s")
                    else ""
                )
                for k, v in r["ray_by_workers"].items()
            )
            + f" (Ray start {r['ray_start_s']:.1f} s)",
            r.get("ray_note") or "--ray",
        ),
        (
            "bundle size",
            "n/a"
            if r.get("bundle_mb") is None and r.get("bundle_lite_mb") is None
            else f"full {f(r.get('bundle_mb'), '{:.0f}')} MB, lean {f(r.get('bundle_lite_mb'), '{:.0f}')} MB",
            "dist/",
        ),
        (
            "GPU embed",
            "n/a (no CUDA)"
            if r["gpu_images_per_s"] is None
            else f"{r['gpu_images_per_s']:.0f} img/s best; "
            + ", ".join(f"b{k}: {v:.0f}" for k, v in r["gpu"]["images_per_s_by_batch"].items()),
            "",
        ),
        (
            "GUI cold start to window",
            "n/a" if r.get("cold_start_s") is None else f"{r['cold_start_s']:.2f} s",
            r.get("cold_start_note") or "target <= 2.5 s",
        ),
        (
            "GUI start + compare + screenshot",
            "n/a" if r.get("cold_start_screenshot_s") is None else f"{r['cold_start_screenshot_s']:.2f} s",
            r.get("cold_start_screenshot_note") or "model load + 1 pair",
        ),
    ]
    if r.get("import_s"):
        rows.append(
            (
                "import costs (cumulative)",
                ", ".join(f"{k} {v:.2f}" for k, v in sorted(r["import_s"].items(), key=lambda kv: -kv[1])) + " s",
                "",
            )
        )
    w = max(len(a) for a, _, _ in rows)
    lines = [f"{a:<{w}}  {b}" + (f"   [{c}]" if c else "") for a, b, c in rows]
    m = r.get("machine", {})
    la = m.get("loadavg_at_start")
    lines.append(
        f"model {r.get('model')}{' (RANDOM weights)' if r.get('random_weights') else ''}; "
        f"{m.get('cpu_count')} CPUs, torch {m.get('torch')}, load average {la[0]:.2f} at start"
        if la
        else f"model {r.get('model')}"
    )
    return "\n".join(lines)
