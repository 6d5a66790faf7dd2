"""Append-only audit trail: records appended, never changed; crash-consistent; CSV export."""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from sigverify.errors import SigverifyError
from sigverify.store.audit import AuditLog, VerificationEntry, default_operator
from sigverify.store.library import Library


def entry(i: int = 0, customer: str = "C1", verdict: str = "genuine") -> VerificationEntry:
    return VerificationEntry(questioned_name=f"q{i}.png", questioned_sha256=f"{i:064x}", model_id="m@abc",
                             weights_sha256="ab" * 32, metric="euclidean", distances=[0.1, 0.2], distance=0.15,
                             score=90.0, verdict=verdict, customer_id=customer, threshold_accept=0.6,
                             threshold_reject=0.9, reference_ids=[1, 2], details={"k": i})


@pytest.fixture
def lib(tmp_path):
    with Library(tmp_path / "audit.sqlite3", operator="clerk1") as lib:
        yield lib


def test_append_and_read(lib):
    a = lib.audit
    v1 = a.append_verification(entry(1), "gui")
    v2 = a.append_verification(entry(2, "C2", "forgery"), "cli", operator="other")
    d1 = a.append_decision(v1, "accept")
    d2 = a.append_decision(v2, "accept", "customer present, ID checked")
    recs = a.records()
    assert [r.id for r in recs] == [v1, v2]
    r1, r2 = recs
    assert r1.operator == "clerk1" and r1.source == "gui" and r1.distances == [0.1, 0.2] and r1.details == {"k": 1}
    assert r1.time_utc.endswith("Z") and "T" in r1.time_utc
    assert r1.final_decision.decision == "accept" and not r1.final_decision.overrides_verdict
    assert r2.operator == "other" and r2.final_decision.overrides_verdict  # forgery verdict, clerk accepted
    assert r2.final_decision.reason == "customer present, ID checked" and r2.final_decision.id == d2 != d1
    assert [r.id for r in a.history("C1")] == [v1] and a.history("C3") == []
    # a later decision is appended, the first one stays
    a.append_decision(v1, "refer", "second look")
    r1 = a.get(v1)
    assert [d.decision for d in r1.decisions] == ["accept", "refer"] and r1.final_decision.overrides_verdict
    assert a.count() == (2, 3)


def test_history_is_newest_first(lib):
    ids = [lib.audit.append_verification(entry(i)) for i in range(3)]
    assert [r.id for r in lib.audit.history("C1")] == ids[::-1]
    assert [r.id for r in lib.audit.history("C1", limit=2)] == ids[::-1][:2]


def test_batch_append_is_one_transaction(lib):
    ids = lib.audit.append_many([entry(i) for i in range(5)], "batch", decide_automatically=True)
    recs = lib.audit.records()
    assert [r.id for r in recs] == ids
    assert all(r.final_decision.source == "batch" and r.final_decision.decision == "accept" for r in recs)
    bad = [entry(10), entry(11)]
    bad[1].distance = "not a number"  # fails mid-way: nothing of this call may be stored
    with pytest.raises(Exception):
        lib.audit.append_many(bad, "batch")
    assert lib.audit.count()[0] == 5


def test_bad_decisions_are_refused(lib):
    v = lib.audit.append_verification(entry())
    with pytest.raises(SigverifyError, match="decision must be one of"):
        lib.audit.append_decision(v, "maybe")
    with pytest.raises(SigverifyError, match="no verification #999"):
        lib.audit.append_decision(999, "accept")
    with pytest.raises(SigverifyError, match="source"):
        lib.audit.append_verification(entry(), "email")


def test_no_update_or_delete_api():
    names = [n for n in dir(AuditLog) if not n.startswith("_")]
    assert not [n for n in names if any(w in n.lower() for w in ("update", "delete", "remove", "edit", "set_"))]


@pytest.mark.parametrize("sql", [
    "UPDATE audit_verifications SET verdict = 'genuine'",
    "UPDATE audit_verifications SET operator = 'someone else' WHERE id = 1",
    "DELETE FROM audit_verifications",
    "DELETE FROM audit_verifications WHERE id = 1",
    "UPDATE audit_decisions SET decision = 'accept'",
    "DELETE FROM audit_decisions",
])
def test_raw_sqlite_cannot_change_records(lib, sql):
    v = lib.audit.append_verification(entry(1, verdict="forgery"))
    lib.audit.append_decision(v, "reject")
    before = lib.audit.to_csv_text()
    raw = sqlite3.connect(lib.path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            raw.execute(sql)
        raw.rollback()
        # INSERT OR REPLACE would delete the old row without firing DELETE triggers: refused too
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            raw.execute("INSERT OR REPLACE INTO audit_verifications SELECT * FROM audit_verifications")
        raw.rollback()
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            raw.execute("REPLACE INTO audit_decisions SELECT * FROM audit_decisions")
        raw.rollback()
    finally:
        raw.close()
    assert lib.audit.to_csv_text() == before
    assert lib.audit.verify_append_only() == []


def test_missing_triggers_are_detected(lib):
    raw = sqlite3.connect(lib.path)
    raw.execute("DROP TRIGGER audit_decisions_no_delete")
    raw.commit()
    raw.close()
    assert lib.audit.verify_append_only() == ["audit_decisions_no_delete"]
    lib.close()
    with Library(lib.path) as again:  # reopening restores the protection
        assert again.audit.verify_append_only() == []


def test_export_csv(lib, tmp_path):
    v1 = lib.audit.append_verification(entry(1, "C1", "forgery"))
    lib.audit.append_decision(v1, "accept", 'reason with "quotes", commas\nand a newline')
    lib.audit.append_verification(entry(2, "C2"))
    out = tmp_path / "sub" / "audit.csv"
    assert lib.audit.export_csv(out) == 2
    rows = list(csv.DictReader(out.open(newline="")))
    assert [r["customer_id"] for r in rows] == ["C1", "C2"]
    assert rows[0]["decision"] == "accept" and rows[0]["overrides_verdict"] == "yes"
    assert rows[0]["reason"] == 'reason with "quotes", commas\nand a newline'
    assert rows[1]["decision"] == "" and rows[1]["operator"] == "clerk1"
    assert lib.audit.export_csv(out, "C2") == 1
    assert [r["customer_id"] for r in csv.DictReader(out.open(newline=""))] == ["C2"]
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]  # atomic write leaves no temp file


def test_operator(monkeypatch, tmp_path):
    monkeypatch.setenv("SIGVERIFY_OPERATOR", "Jane Clerk")
    assert default_operator() == "Jane Clerk"
    with Library(tmp_path / "x.sqlite3") as lib:
        assert lib.audit.operator == "Jane Clerk"
    monkeypatch.delenv("SIGVERIFY_OPERATOR")
    import getpass

    assert default_operator() == getpass.getuser()


def test_cli_audit_commands(lib, tmp_path, capsys):
    import json

    from sigverify.cli import main

    v = lib.audit.append_verification(entry(1, "C1", "refer"))
    db = str(lib.path)
    assert main(["audit", "decide", str(v), "reject", "--reason", "signature shaky", "--db", db, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["verification"]["final_decision"] == "reject"
    assert main(["audit", "history", "C1", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "reject" in out and "OVERRIDE" in out and "signature shaky" in out
    csv_path = tmp_path / "export.csv"
    assert main(["audit", "export", "--db", db, "--out", str(csv_path), "--customer", "C1"]) == 0
    assert "1 audit record" in capsys.readouterr().out and csv_path.exists()
    assert main(["audit", "history", "NOBODY", "--db", db]) == 3
    assert "unknown customer" in capsys.readouterr().err
    assert main(["audit", "decide", "77", "accept", "--db", db]) == 3


CHILD = textwrap.dedent("""
    import sys, cv2, numpy as np
    from sigverify.samples import draw_signature
    from sigverify.store.audit import VerificationEntry
    from sigverify.store.library import Library

    lib = Library(sys.argv[1], operator="child")
    base = draw_signature("Crash Test", 0, 0.5, size=(60, 160))
    i = 0
    while True:
        img = base.copy()
        img[0, i % img.shape[1]] = (i * 7) % 200  # every specimen is a different image
        img[1, (i // img.shape[1]) % img.shape[1]] = 3
        path = sys.argv[2] + f"/s{i % 4}.png"
        cv2.imwrite(path, img)
        lib.enrol(f"C{i % 5}", [path], None)
        ids = lib.audit.append_many([VerificationEntry(f"q{i}.png", f"{i:064x}", "m", "w", "euclidean",
                                                       [0.1] * 50, 0.1, 50.0, "refer", f"C{i % 5}",
                                                       details={"pad": "x" * 4000}) for _ in range(3)], "batch")
        lib.audit.append_decision(ids[0], "accept", "r" * 1000)
        i += 1
        print(i, flush=True)
""")


def test_killed_writer_leaves_consistent_database(tmp_path):
    db = tmp_path / "crash.sqlite3"
    work = tmp_path / "imgs"
    work.mkdir()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(db), str(work)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    last = 0
    try:
        deadline = time.monotonic() + 40
        while last < 15 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            last = int(line)
        time.sleep(0.013)  # land somewhere inside the next write
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert last >= 15, proc.stderr.read()
    assert proc.returncode == -signal.SIGKILL

    raw = sqlite3.connect(db)
    assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
    raw.close()
    with Library(db) as lib:
        assert lib.integrity_check() == "ok"
        recs = lib.audit.records()
        n_ver, n_dec = lib.audit.count()
        # every committed iteration is complete: 3 verifications (one transaction) per iteration
        assert n_ver % 3 == 0 and n_ver >= 3 * last
        assert len(recs) == n_ver and all(r.details["pad"] == "x" * 4000 for r in recs)
        assert all(len(r.distances) == 50 for r in recs)
        assert n_dec >= last and all(d.reason == "r" * 1000 for r in recs for d in r.decisions)
        refs = lib._q("SELECT image, image_sha256 FROM reference_images")
        assert len(refs) >= last
        from sigverify.hashing import sha256_bytes

        assert all(sha256_bytes(bytes(r[0])) == r[1] for r in refs)
        # and the database is still writable after the crash
        lib.audit.append_verification(entry(999))
        assert lib.audit.count()[0] == n_ver + 1
