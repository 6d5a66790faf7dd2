"""Customer reference library: enrol / search / verify round trip, expiry, removal, embeddings per model."""

from __future__ import annotations

import json
import sqlite3

import cv2
import numpy as np
import pytest
from helpers import SMALL, write_sig

from sigverify.app.library_service import LibraryService
from sigverify.errors import Cancelled, SigverifyError
from sigverify.store.library import Library, parse_time
from sigverify.verify.service import SpecimenRef

SIZE = SMALL


@pytest.fixture
def lib(tmp_path):
    with Library(tmp_path / "lib.sqlite3", operator="tester") as lib:
        yield lib


@pytest.fixture
def alice_files(tmp_path):
    d = tmp_path / "alice"
    d.mkdir()
    return [write_sig(d / f"ref{i}.png", seed=i) for i in range(4)]


def test_database_settings(lib):
    assert lib.journal_mode == "wal"
    assert lib._q("PRAGMA synchronous")[0][0] == 2  # FULL
    assert lib._q("PRAGMA foreign_keys")[0][0] == 1
    assert lib.integrity_check() == "ok"


def test_default_path_honours_sigverify_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SIGVERIFY_HOME", str(tmp_path / "home"))
    with Library() as lib:
        assert lib.path == tmp_path / "home" / "library.sqlite3"
    assert (tmp_path / "home" / "library.sqlite3").exists()


def test_enrol_search_verify_round_trip(lib, verifier, alice_files, tmp_path):
    rep = LibraryService(lib, verifier).enrol("ACC-001", alice_files[:3], name="Alice Smith", notes="VIP")
    assert len(rep.added) == 3 and not rep.errors
    bob = tmp_path / "bob.png"
    write_sig(bob, "Bob Jones", 1)
    LibraryService(lib, verifier).enrol("ACC-002", [bob], name="Bob Jones")

    # search: id prefix, name substring, case-insensitive; exact id first
    assert [c.account_id for c in lib.search("acc-001")] == ["ACC-001"]
    assert [c.account_id for c in lib.search("smith")] == ["ACC-001"]
    assert [c.account_id for c in lib.search("ACC")] == ["ACC-001", "ACC-002"]
    assert lib.search("nobody") == []
    assert lib.search("%") == []  # LIKE wildcards are escaped
    c = lib.get_customer("ACC-001")
    assert (c.name, c.notes, c.n_active, c.needs_more_specimens) == ("Alice Smith", "VIP", 3, False)
    assert lib.get_customer("ACC-002").needs_more_specimens

    genuine = write_sig(tmp_path / "q_genuine.png", seed=50)
    res = LibraryService(lib, verifier).verify("ACC-001", genuine, source="cli")
    assert len(res.decision.distances) == 3 and res.reference_ids == rep.added
    # same numbers as the core's own decision on the same signatures
    sigs = LibraryService(lib, verifier).reference_signatures("ACC-001")
    core = verifier.decide(verifier.load(genuine), sigs)
    assert core.verdict.zone == res.decision.verdict.zone
    assert np.allclose(core.distances, res.decision.distances, atol=1e-5)
    assert core.person_scale == pytest.approx(res.decision.person_scale)
    rec = lib.audit.get(res.audit_id)
    assert rec.customer_id == "ACC-001" and rec.operator == "tester" and rec.source == "cli"
    assert rec.reference_ids == rep.added and rec.questioned_name == "q_genuine.png"
    assert rec.model_id == verifier.model.model_id and rec.verdict == res.decision.verdict.zone

    with pytest.raises(SigverifyError, match="unknown customer"):
        LibraryService(lib, verifier).verify("ACC-404", genuine)


def test_enrol_reports_bad_and_duplicate_files(lib, verifier, alice_files, tmp_path):
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full(SIZE, 250, np.uint8))
    rep = LibraryService(lib, verifier).enrol("A1", [alice_files[0], bad, blank, tmp_path / "missing.png", alice_files[0]])
    assert len(rep.added) == 1
    msgs = dict(rep.errors)
    assert set(msgs) == {str(bad), str(blank), str(tmp_path / "missing.png"), str(alice_files[0])}
    assert "twice" in msgs[str(alice_files[0])]
    rep2 = LibraryService(lib, verifier).enrol("A1", [alice_files[0]])
    assert not rep2.added and "already enrolled" in rep2.errors[0][1]
    # a brand-new customer with nothing usable is not left behind
    assert not LibraryService(lib, verifier).enrol("EMPTY", [bad]).added
    assert lib.get_customer("EMPTY") is None


def test_enrol_folder_and_without_verifier(lib, verifier, alice_files):
    rep = LibraryService(lib, None).enrol("A1", [alice_files[0].parent])  # a folder expands to its images
    assert len(rep.added) == 4
    assert LibraryService(lib, verifier).stale_count() == 4  # no verifier: embeddings computed later
    ids, embs = LibraryService(lib, verifier).reference_embeddings("A1")  # ... lazily, on first use
    assert embs.shape == (4, verifier.card.embedding_dim) and LibraryService(lib, verifier).stale_count() == 0


def test_expiry_removal_and_specimen_flag(lib, verifier, alice_files):
    rep = LibraryService(lib, verifier).enrol("A1", alice_files, expires="2999-01-01")
    a, b, c, d = rep.added
    assert lib.get_customer("A1").n_active == 4
    lib.expire_reference(a)  # now
    lib.expire_reference(b, "2000-01-01")
    assert lib.get_reference(a).status() == "expired"
    removed = lib.remove_reference(c)
    assert removed.status() == "removed" and removed.removed_utc
    cust = lib.get_customer("A1")
    assert cust.n_active == 1 and cust.needs_more_specimens
    st = LibraryService(lib, verifier).status("A1")
    assert st.needs_more_specimens and st.n_active == 1
    assert any("add more specimens" in w for w in st.warnings)
    assert st.person_scale == 1.0  # no per-customer adaptation below 3 references
    # removed specimens are kept (audit trail) unless purged
    assert [r.id for r in lib.references("A1", include_removed=True)] == [a, b, c, d]
    lib.remove_reference(c, purge=True)
    assert [r.id for r in lib.references("A1", include_removed=True)] == [a, b, d]
    assert lib._q("SELECT COUNT(*) FROM embeddings WHERE reference_id = ?", [c])[0][0] == 0
    # re-activating with a new expiry
    lib.set_reference_active(a, True, expires=None)
    assert lib.get_customer("A1").n_active == 2
    with pytest.raises(SigverifyError, match="no reference #999"):
        lib.expire_reference(999)


def test_per_customer_threshold_follows_reference_spread(lib, verifier, alice_files):
    LibraryService(lib, verifier).enrol("A1", alice_files[:3])
    from sigverify.verify.reference import person_scale

    st = LibraryService(lib, verifier).status("A1")
    _, embs = LibraryService(lib, verifier).reference_embeddings("A1")
    scale, spread = person_scale(embs, verifier.metric, verifier.calibration)
    assert st.person_scale == pytest.approx(scale) and st.reference_spread == pytest.approx(spread)
    assert st.threshold_accept == pytest.approx(verifier.calibration.accept * scale)
    assert not st.needs_more_specimens


def test_refresh_embeddings_when_model_changes(lib, verifier, alice_files):
    from sigverify.model.weights import random_model
    from sigverify.verify.service import Verifier

    LibraryService(lib, verifier).enrol("A1", alice_files)
    other = random_model(seed=1)
    other.card.name = "other-model"
    v2 = Verifier(other, device="cpu")
    assert v2.model.model_id != verifier.model.model_id
    assert LibraryService(lib, v2).stale_count() == 4
    with pytest.raises(Cancelled):
        LibraryService(lib, v2).refresh(should_stop=lambda: True)
    seen = []
    rep = LibraryService(lib, v2).refresh(progress=lambda f, m: seen.append(f))
    assert rep.computed == 4 and not rep.errors and seen[-1] == 1.0
    assert LibraryService(lib, v2).refresh().computed == 0
    # both models' embeddings are cached side by side and differ
    _, e1 = LibraryService(lib, verifier).reference_embeddings("A1")
    _, e2 = LibraryService(lib, v2).reference_embeddings("A1")
    assert not np.allclose(e1, e2)


def test_load_signatures_for_the_gui(lib, verifier, alice_files):
    rep = LibraryService(lib, verifier).enrol("A1", alice_files[:2])
    sigs = LibraryService(lib, verifier).reference_signatures("A1")
    assert [s.reference_id for s in sigs] == rep.added
    assert {s.account_id for s in sigs} == {"A1"}
    # the identity travels typed; the library:// text is for display only
    assert sigs[0].specimen == SpecimenRef("A1", rep.added[0], alice_files[0].name)
    assert sigs[0].source == f"library://A1/{rep.added[0]}/{alice_files[0].name}"
    assert "original" in sigs[0].preprocessed.stages
    direct = verifier.load(alice_files[0]).embedding
    assert np.allclose(sigs[0].embedding, direct, atol=1e-5)


def test_remove_customer_keeps_audit(lib, verifier, alice_files, tmp_path):
    LibraryService(lib, verifier).enrol("A1", alice_files[:3])
    res = LibraryService(lib, verifier).verify("A1", alice_files[3])
    lib.remove_customer("A1")
    assert lib.get_customer("A1") is None
    assert lib._q("SELECT COUNT(*) FROM reference_images")[0][0] == 0
    assert lib.audit.get(res.audit_id).customer_id == "A1"


def test_parse_time():
    assert parse_time("2030-05-01") == "2030-05-01T00:00:00.000Z"
    assert parse_time("2030-05-01T12:00:00+02:00") == "2030-05-01T10:00:00.000Z"
    assert parse_time(None) is None
    with pytest.raises(SigverifyError):
        parse_time("next tuesday")


# ---- CLI ------------------------------------------------------------------------------------------------
def run_cli(capsys, *argv):
    from sigverify.cli import main

    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_library_commands(tmp_path, alice_files, capsys):
    db = str(tmp_path / "cli.sqlite3")
    rc, out, _ = run_cli(
        capsys, "library", "enrol", "C1", *map(str, alice_files[:2]), "--name", "Alice", "--db", db, "--json", "--device", "cpu"
    )
    d = json.loads(out)
    assert rc == 0 and len(d["added_reference_ids"]) == 2 and d["customer"]["needs_more_specimens"]
    rc, out, _ = run_cli(capsys, "library", "enrol", "C1", str(alice_files[2]), "--db", db, "--device", "cpu")
    assert rc == 0 and "now 3 active" in out
    rc, out, _ = run_cli(capsys, "library", "list", "--db", db, "--json")
    assert rc == 0 and json.loads(out)["customers"][0]["active_references"] == 3
    rc, out, _ = run_cli(capsys, "library", "search", "ali", "--db", db)
    assert rc == 0 and "C1" in out
    rc, out, _ = run_cli(capsys, "library", "show", "C1", "--db", db, "--json", "--device", "cpu")
    d = json.loads(out)
    assert rc == 0 and len(d["references"]) == 3 and not d["status"]["needs_more_specimens"]
    rc, out, _ = run_cli(
        capsys,
        "library",
        "verify",
        "C1",
        str(alice_files[3]),
        "--db",
        db,
        "--json",
        "--device",
        "cpu",
        "--decision",
        "refer",
        "--reason",
        "checked by phone",
    )
    d = json.loads(out)
    assert rc in (0, 1, 2) and rc == {"genuine": 0, "forgery": 1, "refer": 2}[d["verdict"]] and d["audit_id"] == 1
    rid = d["reference_ids"][0]
    rc, out, _ = run_cli(capsys, "library", "expire-ref", str(rid), "--db", db, "--json")
    assert rc == 0 and json.loads(out)["reference"]["status"] == "expired"
    rc, out, _ = run_cli(capsys, "library", "remove-ref", str(d["reference_ids"][1]), "--db", db)
    assert rc == 0 and "1 active left" in out and "add more specimens" in out
    # errors: clear message, non-zero exit code, JSON error object
    rc, out, err = run_cli(capsys, "library", "show", "NOPE", "--db", db, "--json", "--device", "cpu")
    assert rc == 3 and "unknown customer" in err and json.loads(out)["exit_code"] == 3
    rc, out, err = run_cli(capsys, "library", "remove-ref", "999", "--db", db)
    assert rc == 3 and "no reference #999" in err
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    rc, out, err = run_cli(capsys, "library", "enrol", "C2", str(bad), "--db", db, "--device", "cpu")
    assert rc == 4 and "bad.png" in err
    rc, out, err = run_cli(capsys, "library", "expire-ref", str(rid), "--on", "someday", "--db", db)
    assert rc == 3 and "not a date" in err
    with pytest.raises(SystemExit) as e:
        run_cli(capsys, "library", "enrol", "C1")  # no images: usage error
    assert e.value.code == 10


# ---- issue 14: cache keyed by specimen image + model; all-or-nothing enrolment; special paths ----------
def test_swapped_cached_embeddings_are_recomputed(lib, verifier, tmp_path):
    a = [write_sig(tmp_path / "a" / f"{i}.png", "Alice Smith", i) for i in range(3)]
    b = [write_sig(tmp_path / "b" / f"{i}.png", "Bob Jones", 10 + i) for i in range(3)]
    LibraryService(lib, verifier).enrol("A", a)
    LibraryService(lib, verifier).enrol("B", b)
    q = write_sig(tmp_path / "q.png", "Bob Jones", 20)
    honest = LibraryService(lib, verifier).verify("A", str(q), record=False).decision.verdict
    ra = [r.id for r in lib.references("A")]
    rb = [r.id for r in lib.references("B")]
    raw = sqlite3.connect(lib.path)
    # the attack: give A's specimens B's cached vectors (the specimen images still look right)
    for x, y in zip(ra, rb):
        vb = raw.execute("SELECT vector FROM embeddings WHERE reference_id = ?", (y,)).fetchone()[0]
        raw.execute("UPDATE embeddings SET vector = ? WHERE reference_id = ?", (vb, x))
    raw.commit()
    got = LibraryService(lib, verifier).verify("A", str(q), record=False).decision.verdict
    assert got.distance == pytest.approx(honest.distance, abs=1e-5)  # recomputed, not Bob's vectors
    # whole rows moved to another specimen (with their own key columns): recomputed too
    raw.execute("DELETE FROM embeddings WHERE reference_id IN (%s)" % ",".join(map(str, ra)))
    raw.execute(
        "UPDATE embeddings SET reference_id = reference_id - ? WHERE reference_id IN (%s)" % ",".join(map(str, rb)),
        (rb[0] - ra[0],),
    )
    raw.commit()
    raw.close()
    assert LibraryService(lib, verifier).stale_count() == 6
    got = LibraryService(lib, verifier).verify("A", str(q), record=False).decision.verdict
    assert got.distance == pytest.approx(honest.distance, abs=1e-5)


def test_enrolment_is_all_or_nothing(lib, verifier, tmp_path, monkeypatch):
    import os

    ok = write_sig(tmp_path / "e" / "ok.png", "Alice Smith", 1)
    odd = write_sig(tmp_path / "e" / "tmp.png", "Alice Smith", 2)
    odd = odd.rename(odd.with_name(os.fsdecode(b"sig-\xff\xfe.png")))  # not valid UTF-8
    rep = LibraryService(lib, verifier).enrol("N1", [ok, odd], name="Nina")
    assert len(rep.added) == 2  # the odd name is stored as readable text
    names = {r.file_name for r in lib.references("N1")}
    assert "sig-\ufffd\ufffd.png" in names
    # a failure while writing: nothing of the enrolment stays (no empty new customer either)
    c = write_sig(tmp_path / "e" / "c.png", "Carl", 3)

    def boom(*a, **k):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(lib, "_put_embedding", boom)
    with pytest.raises(sqlite3.OperationalError):
        LibraryService(lib, verifier).enrol("N2", [c], name="Carl")
    assert lib.get_customer("N2") is None
    # nothing usable: no customer is created at all
    bad = tmp_path / "e" / "bad.png"
    bad.write_bytes(b"junk")
    rep = LibraryService(lib, verifier).enrol("N3", [bad])
    assert not rep.added and lib.get_customer("N3") is None


@pytest.mark.parametrize("db", ["/dev/null", "/proc/self/x.sqlite3", "folder", "fifo"])
def test_db_must_be_a_regular_file(tmp_path, db, capsys):
    import os

    from sigverify.cli import main
    from sigverify.errors import OutputPathError

    if db == "folder":
        path = tmp_path
    elif db == "fifo":
        path = tmp_path / "db.sqlite3"
        os.mkfifo(path)
    else:
        path = db
    if not os.path.exists(os.path.dirname(str(path)) or "/"):
        pytest.skip("no such system folder")
    with pytest.raises(OutputPathError):
        Library(path)
    assert main(["library", "list", "--db", str(path), "--json"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("sigverify-cli: error:") and err.count("\n") == 1
    assert any(w in err for w in ("system path", "is a folder", "named pipe"))
    assert not os.path.exists("/dev/null-journal")


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2026-02-30", "\x1b[2J"])
def test_odd_dates_are_clear_errors(when):
    with pytest.raises(SigverifyError, match="date"):
        parse_time(when)


def test_service_applies_the_supervisor_override(lib, verifier, alice_files):
    """The customer's thresholds and verification both carry a supervisor's override (the store-level
    verification that ignored it is gone)."""
    from sigverify.store.operators import OperatorStore

    svc = LibraryService(lib, verifier)
    svc.enrol("A1", alice_files[:3])
    plain, plain_case = svc.status("A1"), svc.verify("A1", alice_files[3], record=False)
    st = OperatorStore.for_library(lib)
    admin = st.setup_multi_user("admin", "correct horse 1")
    sup = st.add(admin, "super1", "correct horse 1", "supervisor")
    st.set_threshold_override(sup, "A1", 1.2, "tremor")
    wider, wider_case = svc.status("A1"), svc.verify("A1", alice_files[3], record=False)
    assert plain.threshold_override == 1.0 and wider.threshold_override == pytest.approx(1.2)
    assert wider.threshold_accept == pytest.approx(plain.threshold_accept * 1.2)
    assert wider.threshold_reject == pytest.approx(plain.threshold_reject * 1.2)
    assert any("override x1.20" in w for w in wider.warnings)
    assert wider_case.decision.threshold_override == pytest.approx(1.2)
    assert wider_case.decision.verdict.accept == pytest.approx(plain_case.decision.verdict.accept * 1.2)
    # batch decides through the same service: the override is in its audit record
    from sigverify.batch import BatchItem, run_batch

    rep = run_batch([BatchItem("A1", str(alice_files[3]))], lib, verifier, workers=1)
    assert lib.audit.get(rep.results[0].audit_id).details["threshold_override"] == pytest.approx(1.2)


def test_enrolment_without_a_model_and_cache_keys(lib, verifier, alice_files):
    """Enrolment needs no model (files are checked and stored); the service then fills the cache, and a
    cached row that no longer matches its specimen counts as missing."""
    svc0 = LibraryService(lib, None)
    with pytest.raises(SigverifyError, match="no model"):
        svc0.stale_count()
    rep = svc0.enrol("A1", alice_files[:3])
    svc = LibraryService(lib, verifier)
    assert svc.stale_count() == 3
    ids, embs = svc.reference_embeddings("A1")
    assert ids == rep.added and svc.stale_count() == 0
    # the store keeps only what it is given: tamper with one cached vector
    lib._conn.execute("UPDATE embeddings SET vector = ? WHERE reference_id = ?", (embs[0][::-1].tobytes(), ids[0]))
    lib._conn.commit()
    assert svc.stale_count() == 1
    assert np.allclose(svc.reference_embeddings("A1")[1], embs, atol=1e-6) and svc.stale_count() == 0
