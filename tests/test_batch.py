"""Batch verification over a folder or a CSV: bad rows reported and skipped, results CSV, audit, cancel."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest
from helpers import SMALL, write_sig

from sigverify.app.library_service import LibraryService
from sigverify.batch import BatchItem, items_from_csv, items_from_folder, load_items, run_batch
from sigverify.errors import DataError, SigverifyError
from sigverify.store.library import Library

SIZE = SMALL


@pytest.fixture
def setup(tmp_path, verifier):
    lib = Library(tmp_path / "lib.sqlite3", operator="batcher")
    for cid, name in (("C1", "Alice Smith"), ("C2", "Bob Jones")):
        refs = [write_sig(tmp_path / "refs" / cid / f"r{i}.png", name, i) for i in range(3)]
        LibraryService(lib, verifier).enrol(cid, refs, name=name)
    lib.add_customer("C3", "No Specimens")
    q = tmp_path / "questioned"
    write_sig(q / "C1" / "a_genuine.png", "Alice Smith", 40)
    write_sig(q / "C1" / "b_forged.png", "Alice Smith", 41, forged=True)
    (q / "C1" / "c_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00garbage")
    write_sig(q / "C2" / "bob.png", "Bob Jones", 42)
    write_sig(q / "C3" / "x.png", "Someone", 1)
    write_sig(q / "C9" / "unknown.png", "Someone", 2)
    cv2.imwrite(str(q / "C2" / "blank.png"), np.full(SIZE, 245, np.uint8))
    yield lib, q
    lib.close()


def by_file(rep):
    return {r.file: r for r in rep.results}


def test_batch_over_folder_with_corrupt_file(setup, verifier):
    lib, q = setup
    items = load_items(q)
    assert len(items) == 7
    seen = []
    rep = run_batch(items, lib, verifier, progress=lambda f, m: seen.append(f), batch_size=3, workers=2)
    assert not rep.cancelled and rep.processed == 7 and seen[-1] == 1.0
    res = by_file(rep)
    assert res["C1/c_corrupt.png"].error.startswith("c_corrupt.png: ") and not res["C1/c_corrupt.png"].verdict
    assert "no signature" in res["C2/blank.png"].error
    assert "no active reference" in res["C3/x.png"].error
    assert "unknown customer" in res["C9/unknown.png"].error
    ok = [r for r in rep.results if not r.error]
    assert {r.file for r in ok} == {"C1/a_genuine.png", "C1/b_forged.png", "C2/bob.png"}
    assert all(r.verdict in ("genuine", "refer", "forgery") and 0 <= r.score <= 100 and r.audit_id for r in ok)
    assert sum(rep.counts().values()) == 3 and len(rep.errors) == 4
    # identical numbers to a one-off library verification
    one = LibraryService(lib, verifier).verify("C1", q / "C1" / "a_genuine.png", record=False)
    assert res["C1/a_genuine.png"].distance == pytest.approx(one.decision.verdict.distance, abs=1e-5)
    # every successful row is in the audit log, source and decision source "batch"
    recs = {r.id: r for r in lib.audit.records()}
    for r in ok:
        a = recs[r.audit_id]
        assert a.source == "batch" and a.operator == "batcher" and a.customer_id == r.customer
        assert a.final_decision.source == "batch" and a.verdict == r.verdict
    assert len(recs) == 3
    assert rep.images_per_s > 0 and rep.read_preprocess_s > 0 and rep.embed_s > 0


def test_results_csv(setup, verifier, tmp_path):
    lib, q = setup
    rep = run_batch(load_items(q), lib, verifier, audit=False)
    out = tmp_path / "out" / "results.csv"
    rep.write_csv(out)
    rows = list(csv.DictReader(out.open(newline="")))
    assert list(rows[0])[:6] == ["customer", "file", "verdict", "score", "distance", "error"]
    assert len(rows) == 7
    corrupt = next(r for r in rows if r["file"] == "C1/c_corrupt.png")
    assert corrupt["verdict"] == "" and corrupt["error"]
    assert lib.audit.count() == (0, 0)
    assert "errors 4" in rep.summary_text()


def test_csv_input(tmp_path, setup, verifier):
    lib, q = setup
    sub = tmp_path / "jobs"
    sub.mkdir()
    (sub / "list.csv").write_text(
        "customer_id,questioned_path\n"
        "# a comment line\n"
        f"C1,../questioned/C1/a_genuine.png\n"
        f"C2,{q / 'C2' / 'bob.png'}\n"  # absolute path
        "\n"
        "C1,missing.png\n"
        "only-one-field\n"
        "C1,a,b\n",
        encoding="utf-8",
    )
    items = items_from_csv(sub / "list.csv")
    assert len(items) == 5
    rep = run_batch(items, lib, verifier)
    errs = [r.error for r in rep.results]
    assert errs[0] == "" and errs[1] == ""
    assert "no such file" in errs[2]
    assert "line 7" in errs[3] and "line 8" in errs[4]
    # header-less CSV works too
    (sub / "plain.csv").write_text("C2,../questioned/C2/bob.png\n", encoding="utf-8")
    assert [(i.customer_id, i.label) for i in items_from_csv(sub / "plain.csv")] == [("C2", "../questioned/C2/bob.png")]


def test_cancel_returns_partial_report(setup, verifier):
    lib, q = setup
    items = [BatchItem("C1", str(q / "C1" / "a_genuine.png"))] * 10
    calls = []
    rep = run_batch(
        items, lib, verifier, progress=lambda f, m: calls.append(f), should_stop=lambda: len(calls) >= 1, batch_size=4
    )
    assert rep.cancelled and rep.processed == 4 and rep.n_items == 10
    assert lib.audit.count()[0] == 4


def test_bad_inputs(tmp_path):
    with pytest.raises(DataError):
        load_items(tmp_path / "nothing-here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no questioned images"):
        load_items(tmp_path / "empty")
    (tmp_path / "empty" / "loose.png").write_bytes(b"x")
    items = items_from_folder(tmp_path / "empty")
    assert items[0].error and "sub-folder" in items[0].error


def test_cli_batch(setup, tmp_path, capsys):
    from sigverify.cli import main

    lib, q = setup
    out = tmp_path / "res.csv"
    rc = main(["batch", str(q), "--db", str(lib.path), "--out", str(out), "--json", "--device", "cpu"])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0 and d["processed"] == 7 and d["errors"] == 4 and d["images_per_s"] > 0
    assert len(d["results"]) == 7 and out.exists()
    rc = main(["batch", str(q), "--db", str(lib.path), "--out", str(out), "--strict", "--quiet", "--device", "cpu"])
    text = capsys.readouterr().out
    assert rc == 3 and "images/s" in text and "c_corrupt.png" in text
    rc = main(["batch", str(tmp_path / "nope"), "--db", str(lib.path), "--out", str(out)])
    assert rc == 7 and "no such CSV file or folder" in capsys.readouterr().err


# ---- issue 14: durable, resumable, idempotent batches; hostile inputs and outputs -----------------------
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402
from pathlib import Path  # noqa: E402


def _many(tmp_path, lib, n=24):
    q = tmp_path / "many"
    for i in range(n):
        write_sig(q / ("C1" if i % 2 else "C2") / f"q{i:02d}.png", "Alice Smith" if i % 2 else "Bob Jones", 100 + i)
    return q


def _audit_keys(lib):
    rows = lib._q("SELECT details FROM audit_verifications WHERE source = 'batch'")
    return [json.loads(r[0]).get("batch_item_key") for r in rows]


def test_kill_9_then_rerun_finishes_only_the_missing_items(setup, tmp_path):
    lib, _ = setup
    q = _many(tmp_path, lib)
    code = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
        from sigverify.batch import load_items, run_batch
        from sigverify.store.library import Library
        from sigverify.verify.service import Verifier
        calls = []
        def progress(f, msg):
            calls.append(f)
            if len(calls) == 2:
                os.kill(os.getpid(), signal.SIGKILL)  # a crash after the second chunk is committed
        with Library({str(lib.path)!r}) as lib:
            run_batch(load_items({str(q)!r}), lib, Verifier(device="cpu"), progress, batch_size=5, workers=1)
    """)
    p = subprocess.run([sys.executable, "-c", code], env=dict(os.environ), timeout=300)
    assert p.returncode == -signal.SIGKILL
    keys = _audit_keys(lib)
    assert len(keys) == 10 and len(set(keys)) == 10  # two chunks of 5 were committed, nothing else

    from sigverify.verify.service import Verifier

    rep = run_batch(load_items(q), lib, Verifier(device="cpu"), batch_size=5, workers=1)
    assert rep.resumed == 10 and rep.processed == 24 and not rep.errors
    keys = _audit_keys(lib)
    assert len(keys) == 24 and len(set(keys)) == 24  # no duplicate audit record (it was 592 for 400)
    assert all(r.audit_id for r in rep.results)
    # a rerun of the finished run changes nothing; --new-run verifies again
    again = run_batch(load_items(q), lib, Verifier(device="cpu"), batch_size=5)
    assert again.resumed == 24 and len(_audit_keys(lib)) == 24
    assert [r.audit_id for r in again.results] == [r.audit_id for r in rep.results]
    fresh = run_batch(load_items(q), lib, Verifier(device="cpu"), batch_size=50, new_run=True)
    assert fresh.resumed == 0 and len(_audit_keys(lib)) == 48
    assert lib.audit.verify_chain().ok


def test_results_and_audit_rows_commit_together(setup, verifier, monkeypatch):
    lib, q = setup
    n0 = lib.audit.count()[0]

    def full_disk(*a, **k):
        raise sqlite3.OperationalError("database or disk is full")

    import sqlite3

    monkeypatch.setattr(lib, "batch_store", full_disk)
    with pytest.raises(sqlite3.OperationalError):
        run_batch(load_items(q), lib, verifier)
    assert lib.audit.count()[0] == n0  # the audit rows of the failed chunk were rolled back with it
    monkeypatch.undo()
    rep = run_batch(load_items(q), lib, verifier)
    assert rep.processed == 7 and lib.audit.count()[0] == n0 + 3  # 3 verifiable items, audited once


def test_bad_numeric_options(setup, verifier, tmp_path, capsys):
    from sigverify.cli import main

    lib, q = setup
    with pytest.raises(SigverifyError, match="batch size"):
        run_batch(load_items(q), lib, verifier, batch_size=-1)
    for opt in (["--batch-size", "-1"], ["--batch-size", "0"], ["--workers", "0"], ["--batch-size", "x"]):
        with pytest.raises(SystemExit) as ex:
            main(["batch", str(q), "--db", str(lib.path), "--out", str(tmp_path / "o.csv"), *opt])
        assert ex.value.code == 10, opt
    capsys.readouterr()


@pytest.mark.parametrize("target", ["folder", "fifo", "/dev/full", "/proc/self/status"])
def test_out_must_be_a_regular_file_and_is_checked_first(setup, tmp_path, capsys, target):
    from sigverify.cli import main

    lib, q = setup
    if target == "folder":
        out = tmp_path / "outdir"
        out.mkdir()
    elif target == "fifo":
        out = tmp_path / "out.csv"
        os.mkfifo(out)
    else:
        if not os.path.exists(target):
            pytest.skip(f"no {target}")
        out = Path(target)
    n0 = lib.audit.count()[0]
    rc = main(["batch", str(q), "--db", str(lib.path), "--out", str(out), "--json", "--device", "cpu"])
    cap = capsys.readouterr()
    assert rc == 3 and json.loads(cap.out)["exit_code"] == 3
    assert "not a regular file" in cap.err or "system path" in cap.err
    assert lib.audit.count()[0] == n0  # refused before any verification
    if target == "/dev/full":
        assert Path("/dev/full").is_char_device()


def test_hostile_files_in_a_batch(setup, verifier, tmp_path):
    lib, _ = setup
    q = tmp_path / "hostile"
    tmp = write_sig(q / "C1" / "tmp.png", "Alice Smith", 50)
    tmp.rename(q / "C1" / os.fsdecode(b"caf\xe9.png"))  # not valid UTF-8 (OpenCV cannot even write such a name)
    os.mkfifo(q / "C1" / "pipe.png")
    (q / "C1" / "ps.png").write_bytes(b"%!PS-Adobe-3.0\n{} loop\n")
    f = write_sig(tmp_path / "=HYPERLINK(1).png", "Alice Smith", 51)
    rep = run_batch(load_items(q) + [BatchItem("C1", str(f), "=HYPERLINK(1).png")], lib, verifier)
    res = {r.file.split("/")[-1]: r for r in rep.results}
    assert res["caf\ufffd.png"].verdict and res["caf\ufffd.png"].audit_id
    assert "named pipe" in res["pipe.png"].error and "PostScript" in res["ps.png"].error
    out = tmp_path / "r.csv"
    rep.write_csv(out)
    text = out.read_text(encoding="utf-8")
    assert "caf\ufffd.png" in text and "'=HYPERLINK" in text


def test_cli_batch_refuses_a_broken_trail(setup, tmp_path, capsys):
    import sqlite3

    from sigverify.cli import main

    lib, q = setup
    run_batch(load_items(q), lib, __import__("sigverify.verify.service", fromlist=["Verifier"]).Verifier(device="cpu"))
    raw = sqlite3.connect(lib.path)
    raw.execute("DROP TRIGGER audit_verifications_no_update")
    raw.execute("UPDATE audit_verifications SET verdict = 'genuine'")
    raw.commit()
    raw.close()
    rc = main(
        ["batch", str(q), "--db", str(lib.path), "--out", str(tmp_path / "o.csv"), "--new-run", "--json", "--device", "cpu"]
    )
    d = json.loads(capsys.readouterr().out)
    assert rc == 9 and d["exit_code"] == 9 and d["first_bad"]["kind"] == "verification"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_twice_stops_at_once_and_the_rerun_resumes(setup, tmp_path):
    import sqlite3
    import time

    lib, _ = setup
    q = _many(tmp_path, lib, 40)
    out = tmp_path / "r.csv"
    cmd = [
        sys.executable,
        "-m",
        "sigverify",
        "batch",
        str(q),
        "--db",
        str(lib.path),
        "--out",
        str(out),
        "--batch-size",
        "1",
        "--workers",
        "1",
        "--quiet",
        "--device",
        "cpu",
    ]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.02)
        try:
            n = sqlite3.connect(lib.path).execute("SELECT COUNT(*) FROM batch_results").fetchone()[0]
        except sqlite3.Error:
            continue
        if n >= 3:
            break
    p.send_signal(signal.SIGINT)
    p.send_signal(signal.SIGINT)  # the second one: give up at once
    t0 = time.time()
    rc = p.wait(60)
    assert rc == 8 and time.time() - t0 < 30, p.stderr.read()
    done = sqlite3.connect(lib.path).execute("SELECT COUNT(*) FROM batch_results").fetchone()[0]
    assert 3 <= done < 40
    from sigverify.verify.service import Verifier

    rep = run_batch(load_items(q), lib, Verifier(device="cpu"), batch_size=1, workers=1)
    assert rep.resumed == done and rep.processed == 40
    keys = _audit_keys(lib)
    assert len(keys) == 40 and len(set(keys)) == 40
