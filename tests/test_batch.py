"""Batch verification over a folder or a CSV: bad rows reported and skipped, results CSV, audit, cancel."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from sigverify.batch import BatchItem, items_from_csv, items_from_folder, load_items, run_batch
from sigverify.errors import DataError
from sigverify.store.library import Library

from helpers import SMALL, write_sig

SIZE = SMALL


@pytest.fixture
def setup(tmp_path, verifier):
    lib = Library(tmp_path / "lib.sqlite3", operator="batcher")
    for cid, name in (("C1", "Alice Smith"), ("C2", "Bob Jones")):
        refs = [write_sig(tmp_path / "refs" / cid / f"r{i}.png", name, i) for i in range(3)]
        lib.enrol(cid, refs, verifier, name=name)
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
    one = lib.verify("C1", q / "C1" / "a_genuine.png", verifier, record=False)
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
        "C1,a,b\n", encoding="utf-8")
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
    rep = run_batch(items, lib, verifier, progress=lambda f, m: calls.append(f),
                    should_stop=lambda: len(calls) >= 1, batch_size=4)
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
