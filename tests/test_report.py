"""The case decision report (PDF) and the operator / queue / report command line."""

from __future__ import annotations

import io
import json
import shutil
import subprocess

import pytest
from helpers import write_sig

from sigverify.app.library_service import LibraryService
from sigverify.app.referrals import ReferralQueue
from sigverify.app.report import write_case_report
from sigverify.cli import main
from sigverify.errors import SigverifyError
from sigverify.hashing import sha256_file
from sigverify.store.audit import VerificationEntry
from sigverify.store.library import Library
from sigverify.store.operators import OperatorStore

pytest.importorskip("fpdf")
PW = "correct horse 1"


def make_case(tmp_path, keep_image=True):
    refs = [write_sig(tmp_path / f"ref{i}.png", seed=i) for i in range(3)]
    q = write_sig(tmp_path / "q.png", seed=7, forged=True)
    lib = Library(tmp_path / "lib.sqlite3")
    st = OperatorStore.for_library(lib)
    admin = st.setup_multi_user("admin", PW, "Ada Admin")
    clerk = st.add(admin, "clerk1", PW, "clerk", "Carl Clerk")
    sup = st.add(admin, "super1", PW, "supervisor", "Sue Super")
    added = LibraryService(lib, None).enrol("ACC-1001", refs, name="Zoë Ångström").added
    vid = lib.audit.append_verification(
        VerificationEntry(
            "q.png",
            sha256_file(q),
            "sigverify-base",
            "ab" * 32,
            "euclidean",
            [0.91, 1.02, 0.97],
            0.9667,
            31.0,
            "refer",
            "ACC-1001",
            0.8,
            1.1,
            added,
            {"aggregate": "mean"},
        ),
        "gui",
        operator="clerk1",
    )
    qq = ReferralQueue(lib, st)
    if keep_image:
        qq.attach_questioned(vid, q)
    qq.decide(clerk, vid, "accept", "customer present with ID card")
    qq.review(sup, vid, True, "matches the account opening card")
    return lib, st, vid, q


def pdf_text(path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) not installed")
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


def test_report_contents(tmp_path):
    lib, st, vid, q = make_case(tmp_path)
    with lib:
        info = write_case_report(lib, vid, tmp_path / "out" / "case.pdf", st, generated_by="super1")
        rec = lib.audit.get(vid)
    data = (tmp_path / "out" / "case.pdf").read_bytes()
    assert data.startswith(b"%PDF-") and info.questioned_image and info.specimens == 3
    assert info.audit_ids["verification"] == vid and info.audit_ids["decisions"] == [d.id for d in rec.decisions]
    assert len(info.audit_ids["operator_events"]) == 2  # referred + approved
    text = pdf_text(info.path)
    for must in (
        "case #1",
        "ACC-1001",
        "Zoë Ångström",
        sha256_file(q),
        "ab" * 32,
        "sigverify-base",
        "REFER",
        "0.9667",
        "0.9100",
        "Carl Clerk (clerk1), clerk",
        "Sue Super (super1), supervisor",
        "customer present with ID card",
        "matches the account opening card",
        "ACCEPT",
        "CLOSED",
        "case approved",
        "genuine",
        "forgery",
        "specimen #1",
    ):
        assert must in text, must
    assert text.count("%PDF") == 0


def test_report_questioned_file_must_match(tmp_path):
    lib, st, vid, q = make_case(tmp_path, keep_image=False)
    with lib:
        info = write_case_report(lib, vid, tmp_path / "a.pdf", st)
        assert not info.questioned_image
        assert "not kept" in pdf_text(info.path)
        other = write_sig(tmp_path / "other.png", seed=3)
        with pytest.raises(SigverifyError, match="not the questioned file"):
            write_case_report(lib, vid, tmp_path / "b.pdf", st, questioned=other)
        assert not (tmp_path / "b.pdf").exists()
        assert write_case_report(lib, vid, tmp_path / "c.pdf", st, questioned=q).questioned_image


def test_report_removed_operator_still_named(tmp_path):
    lib, st, vid, q = make_case(tmp_path)
    with lib:
        st.remove(st.require("admin"), "clerk1", "left the bank")
        info = write_case_report(lib, vid, tmp_path / "r.pdf", st)
    assert "Carl Clerk (clerk1), clerk (removed)" in pdf_text(info.path)


def cli(capsys, *argv, stdin: str | None = None, monkeypatch=None) -> tuple[int, str, str]:
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_operator_queue_report_flow(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SIGVERIFY_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SIGVERIFY_TOKEN", raising=False)
    lib, st, vid, q = make_case(tmp_path)
    db = str(lib.path)
    c2 = lib.audit.append_verification(
        VerificationEntry(
            "q2.png", "cd" * 32, "sigverify-base", "ab" * 32, "euclidean", [2.0], 2.0, 3.0, "forgery", "ACC-1001", 0.8, 1.1
        ),
        "cli",
        operator="clerk1",
    )
    lib.close()
    # not signed in: refused with the access exit code
    rc, out, err = cli(capsys, "queue", "list", "--db", db)
    assert rc == 11 and "not signed in" in err
    rc, out, err = cli(
        capsys, "operator", "login", "clerk1", "--password-stdin", "--db", db, stdin="wrong pw x\n", monkeypatch=monkeypatch
    )
    assert rc == 11 and "wrong user name or password" in err
    rc, out, err = cli(
        capsys, "operator", "login", "clerk1", "--password-stdin", "--db", db, stdin=PW + "\n", monkeypatch=monkeypatch
    )
    assert rc == 0 and "signed in as Carl Clerk" in out
    rc, out, err = cli(capsys, "operator", "whoami", "--json", "--db", db)
    assert rc == 0 and json.loads(out)["operator"]["username"] == "clerk1"
    # the clerk accepts a forgery verdict: it needs four eyes, and a clerk cannot see the queue
    rc, out, err = cli(capsys, "queue", "decide", str(c2), "accept", "--note", "regular customer", "--db", db)
    assert rc == 0 and "awaiting review" in out
    rc, out, err = cli(capsys, "queue", "list", "--db", db)
    assert rc == 11 and "supervisor role" in err
    rc, out, err = cli(capsys, "audit", "decide", str(c2), "reject", "--operator", "anyone", "--db", db)
    assert rc == 11 and "unknown operator 'anyone'" in err
    rc, out, err = cli(
        capsys, "operator", "login", "super1", "--password-stdin", "--db", db, stdin=PW + "\n", monkeypatch=monkeypatch
    )
    assert rc == 0
    rc, out, err = cli(capsys, "queue", "list", "--json", "--db", db)
    assert rc == 0 and [c["case_id"] for c in json.loads(out)["cases"]] == [c2]
    rc, out, err = cli(capsys, "queue", "reject", str(c2), "--reason", "different pen pressure", "--db", db)
    assert rc == 0 and "final decision reject" in out
    rc, out, err = cli(capsys, "audit", "decide", str(c2), "accept", "--reason", "again", "--db", db)
    assert rc == 3 and "closed" in err  # the supervisor's review cannot be overwritten by a later decision
    rc, out, err = cli(capsys, "threshold", "set", "ACC-1001", "1.1", "--reason", "tremor", "--db", db)
    assert rc == 0 and "x1.10" in out
    rc, out, err = cli(capsys, "threshold", "set", "ACC-1001", "2", "--reason", "tremor", "--db", db)
    assert rc == 3 and "between 0.8 and 1.25" in err
    # report: written, and an unknown case is a clear error with exit code 3
    out_pdf = tmp_path / "case.pdf"
    rc, out, err = cli(capsys, "report", str(vid), "--out", str(out_pdf), "--db", db)
    assert rc == 0 and out_pdf.read_bytes().startswith(b"%PDF-")
    rc, out, err = cli(capsys, "report", "999", "--out", str(tmp_path / "x.pdf"), "--json", "--db", db)
    assert rc == 3 and json.loads(out)["error_type"] == "CaseNotFound" and "no case '999'" in err
    assert not (tmp_path / "x.pdf").exists()
    rc, out, err = cli(capsys, "operator", "logout", "--db", db)
    assert rc == 0 and "signed out super1" in out
    rc, out, err = cli(capsys, "report", str(vid), "--out", str(out_pdf), "--db", db)
    assert rc == 11
