"""The referral queue: which cases go to a supervisor, four-eyes review, every step recorded."""

from __future__ import annotations

import pytest

from sigverify.app.referrals import AWAITING, CLOSED, OPEN, CaseNotFound, ReferralQueue, final_decision, needs_review
from sigverify.errors import SigverifyError
from sigverify.hashing import sha256_bytes
from sigverify.store.audit import VerificationEntry
from sigverify.store.library import Library
from sigverify.store.operators import AccessDenied, OperatorStore

PW = "correct horse 1"


@pytest.fixture
def env(tmp_path):
    lib = Library(tmp_path / "lib.sqlite3")
    st = OperatorStore.for_library(lib)
    admin = st.setup_multi_user("admin", PW)
    clerk = st.add(admin, "clerk1", PW, "clerk")
    sup = st.add(admin, "super1", PW, "supervisor")
    yield lib, st, ReferralQueue(lib, st), clerk, sup
    lib.close()


def case(lib, verdict: str, customer="ACC-1", data=b"questioned bytes", details=None) -> int:
    d = {"genuine": 0.5, "refer": 1.2, "forgery": 2.5}[verdict]
    return lib.audit.append_verification(
        VerificationEntry(
            "q.png",
            sha256_bytes(data),
            "sigverify-base",
            "f" * 64,
            "euclidean",
            [d, d + 0.1],
            d,
            50.0,
            verdict,
            customer_id=customer,
            threshold_accept=1.0,
            threshold_reject=2.0,
            details=details or {},
        ),
        "gui",
        operator="clerk1",
    )


@pytest.mark.parametrize(
    "verdict,decision,queued",
    [
        ("genuine", "accept", False),
        ("genuine", "refer", True),
        ("genuine", "reject", True),
        ("refer", "accept", True),
        ("refer", "refer", True),
        ("refer", "reject", False),
        ("forgery", "accept", True),
        ("forgery", "refer", True),
        ("forgery", "reject", False),
    ],
)
def test_needs_review_table(verdict, decision, queued):
    assert needs_review(verdict, decision) is queued


def test_final_decision_table():
    assert final_decision("accept", True) == "accept" and final_decision("accept", False) == "reject"
    assert final_decision("reject", True) == "reject" and final_decision("reject", False) == "accept"
    assert final_decision("refer", True) == "accept" and final_decision("refer", False) == "reject"


def test_queue_holds_referrals_and_overrides_only(env):
    lib, st, q, clerk, sup = env
    a = case(lib, "genuine")
    b = case(lib, "forgery")
    c = case(lib, "refer")
    d = case(lib, "forgery")
    e = case(lib, "genuine")
    assert q.case(a).status == OPEN and q.queue() == []
    assert q.decide(clerk, a, "accept").status == CLOSED
    assert q.decide(clerk, b, "accept", "I know this customer").status == AWAITING  # override: four eyes
    assert q.refer(clerk, c, "looks hesitant").status == AWAITING
    assert q.decide(clerk, d, "reject").status == CLOSED  # refused outright: no review
    assert q.case(e).status == OPEN
    queued = q.queue()
    assert [x.id for x in queued] == [b, c]
    assert queued[0].clerk_decision.reason == "I know this customer" and "overrides" in queued[0].why
    assert queued[1].clerk_decision.operator == "clerk1" and queued[1].why == "referred by the clerk"
    ev = st.events(event="case_referred")
    assert [x.case_id for x in ev] == [b, c] and all(x.operator_id == clerk.id for x in ev)
    with pytest.raises(SigverifyError, match="waiting for a supervisor"):
        q.decide(clerk, b, "reject")


def test_review_four_eyes_reason_role(env):
    lib, st, q, clerk, sup = env
    b = case(lib, "forgery")
    q.decide(clerk, b, "accept", "known customer")
    with pytest.raises(AccessDenied, match="supervisor role"):
        q.review(clerk, b, True, "fine")
    with pytest.raises(SigverifyError, match="reason"):
        q.review(sup, b, True, "")
    # a supervisor who made the clerk decision cannot approve it
    c = case(lib, "refer")
    q.decide(sup, c, "refer", "unsure")
    with pytest.raises(SigverifyError, match="four eyes"):
        q.review(sup, c, True, "self-approval")
    done = q.review(sup, b, False, "the loop of the J differs")
    assert done.status == CLOSED and done.final.decision == "reject" and done.final.source == "supervisor"
    assert done.final.operator == "super1" and done.review.event == "case_rejected"
    assert done.review.details["clerk_decision"] == "accept" and done.review.reason == "the loop of the J differs"
    rec = lib.audit.get(b)
    assert [(x.source, x.decision) for x in rec.decisions] == [("clerk", "accept"), ("supervisor", "reject")]
    with pytest.raises(SigverifyError, match="not waiting"):
        q.review(sup, b, True, "again")
    with pytest.raises(SigverifyError, match="closed"):
        q.decide(clerk, b, "accept")
    assert [x.id for x in q.queue()] == [c]
    # another supervisor (an administrator counts) can review the supervisor's own referral
    ok = q.review(st.require("admin"), c, True, "compared with the account opening card")
    assert ok.final.decision == "accept" and ok.status == CLOSED and q.queue() == []


def test_single_user_self_review_is_recorded(tmp_path):
    with Library(tmp_path / "lib.sqlite3") as lib:
        st = OperatorStore.for_library(lib)
        me = st.setup_single_user("jane")
        q = ReferralQueue(lib, st)
        c = case(lib, "refer")
        q.refer(me, c, "unsure")
        done = q.review(me, c, True, "checked the passport")
        assert done.status == CLOSED and done.review.details["single_user_self_review"] is True


def test_unknown_case_and_case_id_lookup(env):
    lib, st, q, clerk, sup = env
    with pytest.raises(CaseNotFound, match="no case"):
        q.case(999)
    with pytest.raises(CaseNotFound):
        q.case("nope")
    vid = case(lib, "refer", details={"case_id": "abc123def456"})
    assert q.case("abc123def456").id == vid and q.case(f"#{vid}").id == vid


def test_questioned_image_kept_only_if_it_is_the_questioned_file(env, tmp_path):
    lib, st, q, clerk, sup = env
    data = b"\x89PNG fake bytes"
    vid = case(lib, "refer", data=data)
    other = tmp_path / "other.png"
    other.write_bytes(b"something else")
    with pytest.raises(SigverifyError, match="not the questioned file"):
        q.attach_questioned(vid, other)
    f = tmp_path / "q.png"
    f.write_bytes(data)
    assert q.attach_questioned(vid, f) is True
    assert q.attach_questioned(vid, f) is False  # first one kept
    name, got, digest = st.case_image(vid)
    assert got == data and name == "q.png" and digest == sha256_bytes(data)


def test_threshold_override_shows_in_the_case(env):
    lib, st, q, clerk, sup = env
    vid = case(lib, "refer", customer="ACC-9")
    st.set_threshold_override(sup, "ACC-9", 1.2, "arthritis")
    assert q.case(vid).threshold_override == pytest.approx(1.2)
    assert q.case(vid).to_dict()["threshold_override"] == pytest.approx(1.2)
