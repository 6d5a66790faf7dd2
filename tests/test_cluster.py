"""Ray Data batch clearing: the same results as the single-process batch, idempotent audit merge."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

pytest.importorskip("ray")
pytest.importorskip("pyarrow")

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from helpers import SMALL, write_sig  # noqa: E402

from sigverify.app.library_service import LibraryService
from sigverify.batch import load_items, run_batch  # noqa: E402
from sigverify.cluster import ray_batch  # noqa: E402
from sigverify.errors import DataError  # noqa: E402
from sigverify.store.library import Library  # noqa: E402

pytestmark = pytest.mark.slow
N_ITEMS = 240
CUSTOMERS = [("C1", "Alice Smith"), ("C2", "Bob Jones"), ("C3", "Carla Diaz"), ("C4", "Dmitri Ivanov")]


def _enrol(path, refs, verifier):
    lib = Library(path, operator="batcher")
    for cid, name in CUSTOMERS:
        LibraryService(lib, verifier).enrol(cid, refs[cid], name=name)
    lib.add_customer("C5", "No Specimens")
    return lib


@pytest.fixture(scope="module")
def world(tmp_path_factory, verifier):
    root = tmp_path_factory.mktemp("cluster")
    refs = {cid: [write_sig(root / "refs" / cid / f"r{i}.png", name, i) for i in range(3)] for cid, name in CUSTOMERS}
    rows = []
    for k in range(N_ITEMS):
        cid, name = CUSTOMERS[k % len(CUSTOMERS)]
        p = write_sig(root / "q" / cid / f"q{k:04d}.png", name, 1000 + k, forged=(k % 3 == 0))
        rows.append((f"item-{k:04d}", cid, p.relative_to(root).as_posix()))
    # error rows: a corrupt file, a blank page, a missing file, an unknown customer, no specimens
    (root / "q" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00garbage")
    cv2.imwrite(str(root / "q" / "blank.png"), np.full(SMALL, 245, np.uint8))
    rows += [
        ("bad-1", "C1", "q/bad.png"),
        ("bad-2", "C2", "q/blank.png"),
        ("bad-3", "C3", "q/missing.png"),
        ("bad-4", "C9", rows[0][2]),
        ("bad-5", "C5", rows[1][2]),
    ]
    manifest = root / "manifest.csv"
    with open(manifest, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["item_id", "customer_id", "path"])
        w.writerows(rows)
    plain = root / "plain.csv"  # the single-process batch's input: customer_id,questioned_path
    plain.write_text("".join(f"{c},{p}\n" for _, c, p in rows))
    ray_batch.start_ray(None, num_cpus=2)
    yield {"root": root, "refs": refs, "rows": rows, "manifest": manifest, "plain": plain}
    import ray

    ray.shutdown()


def _audit_view(lib):
    return [
        (
            r.customer_id,
            r.questioned_name,
            r.questioned_sha256,
            r.verdict,
            r.distance,
            tuple(r.distances),
            tuple(r.reference_ids),
            r.model_id,
        )
        for r in lib.audit.records(newest_first=False)
    ]


def test_ray_equals_single_process_and_merges_idempotently(world, verifier):
    root = world["root"]
    lib_a = _enrol(root / "a.sqlite3", world["refs"], verifier)
    lib_b = _enrol(root / "b.sqlite3", world["refs"], verifier)
    single = run_batch(load_items(world["plain"]), lib_a, verifier, batch_size=64)
    out = root / "out" / "results.csv"
    rep = ray_batch.run_ray_batch(world["manifest"], lib_b, verifier, out, workers=2, batch_size=32)
    n = len(world["rows"])
    assert rep.processed == single.processed == n
    key = [(r.customer, r.file, r.verdict, r.error) for r in rep.results]
    assert key == [(r.customer, r.file, r.verdict, r.error) for r in single.results]
    # the same embeddings (onnxruntime is batch-invariant); the decision's float64 arithmetic may round
    # differently in the last bit where BLAS runs on another thread count inside a Ray worker
    for a, b in zip(rep.results, single.results):
        assert (a.score is None) == (b.score is None)
        if a.score is not None:
            assert abs(a.score - b.score) < 1e-9 and abs(a.distance - b.distance) < 1e-12
    assert len(rep.errors) == 5 and sum(rep.counts().values()) == N_ITEMS
    assert {"genuine", "forgery"} <= {r.verdict for r in rep.results if not r.error}
    # the results CSV is the single-process batch's CSV (audit ids aside); Parquet has the item ids
    strip = lambda text: [row[:-1] for row in csv.reader(text.splitlines())]  # noqa: E731
    assert strip(out.read_text()) == strip(single.to_csv_text())
    t = pq.read_table(out.with_suffix(".parquet"))
    assert t.column("item_id").to_pylist() == [r[0] for r in world["rows"]]
    assert t.column("verdict").to_pylist()[:N_ITEMS] == [r.verdict for r in single.results[:N_ITEMS]]
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert summary["audit_appended"] == N_ITEMS and summary["ray_items_per_s"] > 0
    spec = ray_batch.read_specimens(out.with_name("results.specimens.parquet"))
    assert set(spec) == {"C1", "C2", "C3", "C4", "C5", "C9"} and "no active reference" in spec["C5"]
    assert "unknown customer" in spec["C9"]
    ids, embs = spec["C1"]
    assert len(ids) == 3 and np.allclose(embs, LibraryService(lib_b, verifier).reference_embeddings("C1")[1])
    # the same audit records as the single-process batch
    va, vb = _audit_view(lib_a), _audit_view(lib_b)
    assert [r[:4] + r[6:] for r in vb] == [r[:4] + r[6:] for r in va]  # all but the float distances
    assert np.allclose([r[4] for r in vb], [r[4] for r in va], rtol=0, atol=1e-12)
    assert all(np.allclose(x[5], y[5], rtol=0, atol=1e-12) for x, y in zip(vb, va))
    first_ids = [r.audit_id for r in rep.results]
    assert all(first_ids[:N_ITEMS]) and len(set(first_ids[:N_ITEMS])) == N_ITEMS
    # a re-run appends nothing and reports the same audit ids
    again = ray_batch.run_ray_batch(world["manifest"], lib_b, verifier, out, workers=1, batch_size=64)
    assert [r.audit_id for r in again.results] == first_ids
    assert len(lib_b.audit.records()) == N_ITEMS
    assert again.ray_summary["audit_appended"] == 0 and again.ray_summary["audit_already_merged"] == N_ITEMS
    lib_a.close()
    lib_b.close()


def test_crash_during_merge_then_rerun_neither_loses_nor_duplicates(world, verifier, monkeypatch):
    root = world["root"]
    lib = _enrol(root / "c.sqlite3", world["refs"], verifier)
    calls = {"n": 0}
    real = lib.audit.append_many

    def crashing(entries, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("simulated crash of the driver during the merge")
        return real(entries, *a, **kw)

    monkeypatch.setattr(ray_batch, "MERGE_CHUNK", 50)
    monkeypatch.setattr(lib.audit, "append_many", crashing)
    with pytest.raises(OSError, match="simulated crash"):
        ray_batch.run_ray_batch(world["manifest"], lib, verifier, root / "c" / "r.csv", workers=1)
    assert len(lib.audit.records()) == 100  # two chunks of 50 made it, each all-or-nothing
    monkeypatch.setattr(lib.audit, "append_many", real)
    rep = ray_batch.run_ray_batch(world["manifest"], lib, verifier, root / "c" / "r.csv", workers=1)
    recs = lib.audit.records(newest_first=False)
    keys = [r.details["batch_item_key"] for r in recs]
    assert len(recs) == N_ITEMS and len(set(keys)) == N_ITEMS
    assert rep.ray_summary["audit_appended"] == N_ITEMS - 100
    assert sorted(r.details["batch_item"] for r in recs) == sorted(r[0] for r in world["rows"][:N_ITEMS])
    lib.close()


def test_parquet_manifest_and_bad_manifests(world, tmp_path):
    rows = world["rows"]
    p = tmp_path / "m.parquet"
    pq.write_table(
        pa.table(
            {"id": [r[0] for r in rows], "account_id": [r[1] for r in rows], "image": [str(world["root"] / r[2]) for r in rows]}
        ),
        p,
    )
    items = ray_batch.read_manifest(p)
    assert [i.item_id for i in items] == [r[0] for r in rows] and items[0].path == str(world["root"] / rows[0][2])
    bad = tmp_path / "bad.csv"
    bad.write_text("item_id,who,path\n1,C1,a.png\n")
    with pytest.raises(DataError, match="no customer id column"):
        ray_batch.read_manifest(bad)
    dup = tmp_path / "dup.csv"
    dup.write_text("item_id,customer_id,path\n1,C1,a.png\n1,C1,b.png\n,C1,c.png\n")
    items = ray_batch.read_manifest(dup)
    assert items[0].error is None and "duplicate item id" in items[1].error and "required" in items[2].error
    with pytest.raises(DataError, match="no such manifest"):
        ray_batch.read_manifest(tmp_path / "none.csv")


def test_cli_batch_engine_ray(world, verifier, tmp_path, capsys):
    from sigverify.cli import main

    lib = _enrol(tmp_path / "cli.sqlite3", world["refs"], verifier)
    lib.close()
    m = tmp_path / "small.csv"
    m.write_text("item_id,customer_id,path\n" + "".join(f"{i},{c},{world['root'] / p}\n" for i, c, p in world["rows"][:12]))
    out = tmp_path / "res.csv"
    rc = main(
        [
            "batch",
            str(m),
            "--engine",
            "ray",
            "--db",
            str(tmp_path / "cli.sqlite3"),
            "--out",
            str(out),
            "--json",
            "--device",
            "cpu",
        ]
    )
    d = json.loads(capsys.readouterr().out)
    assert rc == 0 and d["engine"] == "ray" and d["processed"] == 12 and d["audit_appended"] == 12
    assert len(d["results"]) == 12 and out.is_file() and out.with_suffix(".parquet").is_file()
    rc = main(
        ["batch", str(m), "--engine", "ray", "--db", str(tmp_path / "cli.sqlite3"), "--out", str(out), "--ray-workers", "0"]
    )
    assert rc == 7
