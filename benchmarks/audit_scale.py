"""Audit trail at bank scale: insert and idempotency-lookup cost as the trail grows.

Fills a fresh library database with ``--rows`` synthetic batch records exactly as ``run_batch`` writes
them (``AuditLog.append_many`` with an automatic decision per record, the hash chain, the batch result
rows in the same transaction, 500 records per transaction), measuring the insert rate per block as the
trail grows, then times the two idempotency lookups a batch does at that size:

* the Ray merge (``sigverify.cluster.ray_batch._existing_keys``): which of 500 ``batch_item_key``s are
  already in the trail - with the expression index ``audit_verifications_batch_item_key`` and, for
  comparison, without any index (``NOT INDEXED``: what every lookup cost before the index);
* the single-process resume (``Library.batch_done``): a run's stored results by its run key.

And the one-off migration: building the index on the filled database (what opening an existing
database without it costs once).

    .venv/bin/python benchmarks/audit_scale.py --rows 1000000        # ~10-20 min on 2 cores
    .venv/bin/python benchmarks/audit_scale.py --rows 20000 --json   # quick

Prints a table (``--json``: the figures as JSON). The database goes to a temporary folder (``--keep
DIR`` keeps it there instead).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sigverify.batch import BatchResult  # noqa: E402
from sigverify.hashing import sha256_bytes  # noqa: E402
from sigverify.store.audit import AUDIT_INDEXES, VerificationEntry, _ensure_indexes  # noqa: E402
from sigverify.store.library import Library  # noqa: E402

CHUNK = 500  # records per transaction, as the Ray merge and run_batch (batch size 64-500) write them
LOOKUP_SQL = (
    "SELECT id, json_extract(details, '$.batch_item_key') FROM audit_verifications{hint} "
    "WHERE source = 'batch' AND json_extract(details, '$.batch_item_key') IN ({marks})"
)


def _key(run: int, i: int) -> str:
    return sha256_bytes(f"run{run}\n{i}".encode())


def _entries(run: int, start: int, n: int, run_key: str) -> list[VerificationEntry]:
    out = []
    for i in range(start, start + n):
        d = 0.2 + (i % 97) / 200
        out.append(
            VerificationEntry(
                questioned_name=f"q{i:08d}.png",
                questioned_sha256=sha256_bytes(f"img{run}/{i}".encode()),
                model_id="sigverify-base@2b13aa6dfbb3",
                weights_sha256="0" * 64,
                metric="euclidean",
                distances=[d, d + 0.01, d + 0.02],
                distance=d,
                score=1.0 - d,
                verdict="genuine" if d < 0.4 else "refer" if d < 0.55 else "forgery",
                customer_id=f"C{i % 100_000:06d}",
                threshold_accept=0.4,
                threshold_reject=0.55,
                reference_ids=[3 * (i % 100_000) + k for k in range(3)],
                details={
                    "aggregate": "mean",
                    "min_distance": d,
                    "mean_distance": d + 0.01,
                    "warnings": [],
                    "random_weights": False,
                    "batch_file": f"q{i:08d}.png",
                    "batch_run": run_key,
                    "batch_item_key": _key(run, i),
                },
            )
        )
    return out


def _timed_lookup(lib: Library, keys: list[str], hint: str, reps: int) -> float:
    sql = LOOKUP_SQL.format(hint=hint, marks=",".join("?" * len(keys)))
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        rows = lib._q(sql, keys)
        best = min(best, time.perf_counter() - t0)
    assert len(rows) <= len(keys)
    return best


def run(rows: int, keep: str | None, per_run: int = 100_000, scan_reps: int = 1) -> dict:
    td = keep or tempfile.mkdtemp(prefix="sigverify-audit-scale-")
    db = Path(td) / "library.sqlite3"
    if db.exists():
        raise SystemExit(f"{db} exists: give --keep an empty folder")
    lib = Library(db, operator="audit-scale")
    res: dict = {"rows": rows, "chunk": CHUNK, "growth": []}
    t_all = time.perf_counter()
    done = 0
    run_no = 0
    checkpoints = sorted({min(rows, c) for c in (10_000, 100_000, 300_000, 1_000_000, 3_000_000, rows)})
    block_t0, block_n0 = time.perf_counter(), 0
    while done < rows:
        run_key = sha256_bytes(f"run-{run_no}".encode())
        lib.batch_start(run_key, f"manifest-{run_no}.csv", per_run, "sigverify-base@2b13aa6dfbb3")
        for start in range(0, min(per_run, rows - done), CHUNK):
            n = min(CHUNK, per_run - start, rows - done)
            entries = _entries(run_no, start, n, run_key)
            results = [BatchResult(e.customer_id or "", e.questioned_name, e.verdict, e.score, e.distance) for e in entries]
            keys = [e.details["batch_item_key"] for e in entries]

            def store(conn, aids, _r=results, _k=keys, _s=start, _run=run_key):
                for r, a in zip(_r, aids):
                    r.audit_id = a
                lib.batch_store(conn, _run, [(_s + j, _k[j], _r[j]) for j in range(len(_r))])

            lib.audit.append_many(entries, "batch", decide_automatically=True, in_transaction=store)
            done += n
            if checkpoints and done >= checkpoints[0]:
                dt = time.perf_counter() - block_t0
                res["growth"].append({"rows": done, "insert_records_per_s": (done - block_n0) / dt})
                print(f"  {done:>9,} rows: {(done - block_n0) / dt:8.0f} records/s over the last block", file=sys.stderr)
                block_t0, block_n0 = time.perf_counter(), done
                checkpoints.pop(0)
            if done >= rows:
                break
        run_no += 1
    res["fill_s"] = time.perf_counter() - t_all
    res["insert_records_per_s"] = rows / res["fill_s"]
    lib._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    res["db_mb"] = db.stat().st_size / 1e6

    rng = random.Random(1)
    present = [_key(r, i) for r, i in ((rng.randrange(run_no), rng.randrange(min(per_run, rows))) for _ in range(CHUNK))]
    present = [k for k in present]  # noqa: C416 (some may fall past the last run's end: still valid keys)
    absent = [_key(10**6 + 1, i) for i in range(CHUNK)]  # a new batch: none of its keys is in the trail
    plan = lib._q("EXPLAIN QUERY PLAN " + LOOKUP_SQL.format(hint="", marks=",".join("?" * 3)), absent[:3])
    res["lookup_plan"] = " | ".join(str(r[3]) for r in plan)
    res["lookup_500_indexed_ms"] = {
        "absent": 1000 * _timed_lookup(lib, absent, "", 5),
        "present": 1000 * _timed_lookup(lib, present, "", 5),
    }
    res["lookup_500_scan_ms"] = {"absent": 1000 * _timed_lookup(lib, absent, " NOT INDEXED", scan_reps)}
    t0 = time.perf_counter()
    resumed = lib.batch_done(sha256_bytes(b"run-0"))
    res["batch_done_ms"] = 1000 * (time.perf_counter() - t0)
    res["batch_done_rows"] = len(resumed)

    # the one-off migration on an existing database of this size
    conn: sqlite3.Connection = lib._conn
    for name in AUDIT_INDEXES:
        with conn:
            conn.execute(f"DROP INDEX {name}")
    t0 = time.perf_counter()
    added = _ensure_indexes(conn)
    res["index_build_s"] = time.perf_counter() - t0
    res["index_added"] = added
    lib.close()
    t0 = time.perf_counter()
    from sigverify.store.audit import check_audit

    chk = check_audit(db)
    res["chain_check_s"] = time.perf_counter() - t0
    res["chain_ok"] = bool(chk.ok)
    res["loadavg"] = list(os.getloadavg())
    if not keep:
        shutil.rmtree(td, ignore_errors=True)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--keep", help="folder for the database (kept); default a temporary folder, removed")
    ap.add_argument("--scan-reps", type=int, default=1, help="repetitions of the (slow) unindexed lookup")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    r = run(a.rows, a.keep, scan_reps=a.scan_reps)
    if a.json:
        print(json.dumps(r, indent=1))
        return 0
    print(f"rows                         {r['rows']:,} (+ as many decisions, all chained), {r['db_mb']:.0f} MB")
    print(f"insert (append_many, 500/tx) {r['insert_records_per_s']:.0f} records/s ({r['fill_s']:.0f} s)")
    for g in r["growth"]:
        print(f"  at {g['rows']:>10,} rows       {g['insert_records_per_s']:.0f} records/s")
    li, ls = r["lookup_500_indexed_ms"], r["lookup_500_scan_ms"]
    print(f"lookup 500 keys, indexed     {li['absent']:.2f} ms (new keys), {li['present']:.2f} ms (present keys)")
    print(f"lookup 500 keys, no index    {ls['absent']:.0f} ms")
    print(f"plan                         {r['lookup_plan']}")
    print(f"resume lookup (batch_done)   {r['batch_done_ms']:.1f} ms for {r['batch_done_rows']:,} rows of one run")
    print(f"index build (migration)      {r['index_build_s']:.1f} s")
    print(f"chain check                  {r['chain_check_s']:.1f} s, ok={r['chain_ok']}")
    print(f"load average at the end      {r['loadavg']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
