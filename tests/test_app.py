"""The application layer: model sessions with typed fallbacks, the case (one record per case), the
library service, and the CLI giving the same answer as the layer it calls."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import write_sig

from sigverify.app import case as case_mod
from sigverify.app.case import build_case, case_key, decide, verify_case
from sigverify.app.library_service import LibraryService
from sigverify.app.session import DEVICE_FALLBACK, METRIC_FALLBACK, MODEL_FALLBACK, open_session
from sigverify.errors import DeviceUnavailableError, MetricUnavailableError, ModelError, SigverifyError
from sigverify.model.weights import random_model
from sigverify.store.library import Library
from sigverify.verify.reference import verify_against_references


@pytest.fixture
def alice(tmp_path):
    return [write_sig(tmp_path / "alice" / f"ref{i}.png", seed=i) for i in range(4)]


@pytest.fixture
def lib(tmp_path):
    with Library(tmp_path / "lib.sqlite3", operator="tester") as lib:
        yield lib


# ---- session ------------------------------------------------------------------------------------
def test_unavailable_gpu_falls_back_to_cpu_with_a_notice(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    s = open_session(random_model(), "cuda")
    assert s.verifier.embedder.device.type == "cpu"
    assert [n.kind for n in s.notices] == [DEVICE_FALLBACK]
    assert s.notices[0].requested == "cuda" and s.notices[0].used == "cpu" and "CPU" in s.notices[0].message


def test_fallback_is_chosen_by_error_type_not_by_words_in_the_message(monkeypatch):
    import sigverify.model.embedder as emb

    def broken(device=None):  # mentions CUDA and device, but is not a DeviceUnavailableError
        raise ModelError("CUDA device driver crashed")

    monkeypatch.setattr(emb, "resolve_device", broken)
    with pytest.raises(ModelError, match="driver crashed"):
        open_session(random_model(), "cuda")

    def unavailable(device=None):  # typed, with a message that names neither
        if device == "cpu":
            import torch

            return torch.device("cpu")
        raise DeviceUnavailableError("no accelerator here", "xpu")

    monkeypatch.setattr(emb, "resolve_device", unavailable)
    s = open_session(random_model(), "xpu")
    assert s.notices[0].kind == DEVICE_FALLBACK and s.notices[0].requested == "xpu"


def test_uncalibrated_metric_falls_back_to_the_cards_metric():
    m = random_model()
    del m.card.calibration["cosine"]
    s = open_session(m, "cpu", "cosine")
    assert s.metric == "euclidean" and [n.kind for n in s.notices] == [METRIC_FALLBACK]
    assert s.notices[0].requested == "cosine" and s.notices[0].used == "euclidean"
    assert s.verifier.calibration == m.card.metric_calibration("euclidean")
    # switching later: refused as a typed error, and metric + calibration stay together
    before = (s.verifier.metric, s.verifier.calibration)
    with pytest.raises(MetricUnavailableError):
        s.set_metric("cosine")
    assert (s.verifier.metric, s.verifier.calibration) == before
    with pytest.raises(MetricUnavailableError):
        s.set_metric("manhattan")


def test_metric_switch_changes_metric_and_calibration_together():
    s = open_session(random_model(), "cpu")
    s.set_metric("cosine")
    assert s.verifier.metric == "cosine"
    assert s.verifier.calibration == s.card.metric_calibration("cosine")
    assert s.notices == []


def test_uncalibrated_policy_falls_back_to_the_cards_default():
    from sigverify.app.session import POLICY_FALLBACK

    s = open_session(random_model(), "cpu", aggregate="min")  # no thresholds fitted for "min"
    assert s.verifier.aggregate == "mean" and [n.kind for n in s.notices] == [POLICY_FALLBACK]
    assert s.notices[0].requested == "min" and s.notices[0].used == "mean"
    assert open_session(random_model(), "cpu", aggregate="mean").notices == []


def test_refused_model_raises_unless_the_model_fallback_is_asked_for(tmp_path):
    bad = tmp_path / "tampered.safetensors"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError):
        open_session(bad, "cpu")
    s = open_session(bad, "cpu", model_fallback=True)
    assert s.model_fell_back and s.notices[0].kind == MODEL_FALLBACK
    assert s.requested_model == str(bad) and s.notices[0].requested == str(bad)


# ---- the decision -------------------------------------------------------------------------------
def test_decide_is_the_verifiers_policy_applied_to_embeddings(verifier):
    rng = np.random.default_rng(0)
    q = rng.normal(size=verifier.card.embedding_dim).astype(np.float32)
    refs = rng.normal(size=(4, verifier.card.embedding_dim)).astype(np.float32)
    q, refs = q / np.linalg.norm(q), refs / np.linalg.norm(refs, axis=1, keepdims=True)
    # a model whose card has no decision stage: the pair calibration and the verifier's settings
    plain = open_session(random_model(), "cpu", aggregate="mean", adapt_to_person=False).verifier
    got = decide(plain, q, refs)
    want = verify_against_references(q, refs, plain.calibration, plain.metric, "mean", False)
    assert got.verdict == want.verdict and got.distances == want.distances and got.person_scale == 1.0
    # the shipped model: the policy's own thresholds from the card (and its cohort), exactly what the
    # core Verifier decides on the same embeddings
    got = decide(verifier, q, refs)
    dcal, _ = verifier.card.decision_calibration(verifier.metric, verifier.aggregate, len(refs))
    if dcal is not None:
        assert (got.verdict.accept, got.verdict.reject) != (verifier.calibration.accept, verifier.calibration.reject)
    same = verifier.decide_embeddings(q, refs)
    assert got.verdict == same.verdict and got.distances == same.distances
    with pytest.raises(SigverifyError, match="no usable reference"):
        decide(verifier, q, np.zeros((0, verifier.card.embedding_dim), np.float32))


def test_ad_hoc_case_skips_bad_references_and_expands_folders(verifier, alice, tmp_path):
    bad = tmp_path / "alice" / "broken.png"
    bad.write_bytes(b"nope")
    c = build_case(verifier, alice[3], [tmp_path / "alice"])  # the folder holds ref0..3 + broken.png
    assert len(c.references) == 4 and [p for p, _ in c.skipped] == [str(bad)]
    assert c.customer_id is None and c.audit_id is None and len(c.case_id) == 12
    assert c.to_dict()["verdict"] == c.verdict == c.decision.verdict.zone
    with pytest.raises(SigverifyError, match="no usable reference"):
        build_case(verifier, alice[3], [bad])


# ---- one record per case ------------------------------------------------------------------------
def test_rerun_of_the_same_case_appends_no_second_record(lib, verifier, alice, tmp_path):
    LibraryService(lib, verifier).enrol("C1", alice[:3])
    svc = LibraryService(lib, verifier)
    first = svc.verify("C1", alice[3])
    assert first.audit_id is not None and not first.rerun and first.reference_ids == [1, 2, 3]
    copy = tmp_path / "same_bytes_other_name.png"
    copy.write_bytes(alice[3].read_bytes())
    again = svc.verify("C1", copy)  # same bytes, same references, same model
    assert again.rerun and again.audit_id == first.audit_id and again.case_id == first.case_id
    assert lib.audit.count()[0] == 1
    rec = lib.audit.get(first.audit_id)
    assert rec.details["case_id"] == first.case_id and rec.details["case_key"] == first.key

    other = svc.verify("C1", write_sig(tmp_path / "other.png", seed=9))  # another questioned file
    assert not other.rerun and other.audit_id != first.audit_id
    LibraryService(lib, verifier).enrol("C1", [write_sig(tmp_path / "ref_new.png", seed=7)])  # the reference set changed
    more = svc.verify("C1", alice[3])
    assert not more.rerun and len(more.reference_ids) == 4 and lib.audit.count()[0] == 3
    # not recorded when asked so
    n = lib.audit.count()[0]
    assert svc.verify("C1", write_sig(tmp_path / "x.png", seed=11), record=False).audit_id is None
    assert lib.audit.count()[0] == n


def test_case_key_depends_on_questioned_references_model_and_customer():
    k = case_key("q", ["ref:1", "ref:2"], "m@1", "C1")
    assert k == case_key("q", ["ref:2", "ref:1"], "m@1", "C1")  # order of the references does not matter
    assert (
        len(
            {
                k,
                case_key("q2", ["ref:1", "ref:2"], "m@1", "C1"),
                case_key("q", ["ref:1"], "m@1", "C1"),
                case_key("q", ["ref:1", "ref:2"], "m@2", "C1"),
                case_key("q", ["ref:1", "ref:2"], "m@1", "C2"),
            }
        )
        == 5
    )


def test_gui_style_case_from_loaded_signatures_is_recorded_once(lib, verifier, alice):
    LibraryService(lib, verifier).enrol("C1", alice[:3])
    svc = LibraryService(lib, verifier)
    refs = svc.reference_signatures("C1")
    assert [r.reference_id for r in refs] == [1, 2, 3] and {r.account_id for r in refs} == {"C1"}
    q = verifier.load(alice[3])
    c1 = svc.record(build_case(verifier, q, refs, customer_id="C1"), source="gui")
    c2 = svc.record(build_case(verifier, q, refs, customer_id="C1"), source="gui")  # e.g. after a model reload
    assert c2.rerun and c2.audit_id == c1.audit_id and lib.audit.count()[0] == 1
    # the library service's path (cached embeddings) and the GUI's path decide the same
    cli = svc.verify("C1", alice[3])
    assert cli.rerun and np.allclose(cli.decision.distances, c1.decision.distances, atol=1e-5)
    svc.record_decision(c1.audit_id, "accept")
    assert lib.audit.get(c1.audit_id).final_decision.decision == "accept"


def test_library_verify_and_batch_use_the_same_decision(lib, verifier, alice, monkeypatch):
    from sigverify.batch import BatchItem, run_batch

    LibraryService(lib, verifier).enrol("C1", alice[:3])
    calls = []
    real = type(verifier).decide_embeddings

    def spy(self, q, refs, **kw):
        calls.append(len(refs))
        return real(self, q, refs, **kw)

    monkeypatch.setattr(type(verifier), "decide_embeddings", spy)
    LibraryService(lib, verifier).verify("C1", alice[3], record=False)
    run_batch([BatchItem("C1", str(alice[3]))], lib, verifier, audit=False, workers=1)
    verify_case(verifier, alice[3], alice[:3])
    assert calls == [3, 3, 3]


# ---- CLI = app layer ----------------------------------------------------------------------------
def test_cli_verify_gives_the_app_layers_answer(capsys, verifier, alice):
    from sigverify.cli import main

    rc = main(["verify", str(alice[3]), *map(str, alice[:3]), "--json", "--device", "cpu"])
    d = json.loads(capsys.readouterr().out)
    c = case_mod.build_case(verifier, alice[3], alice[:3])
    assert rc == {"genuine": 0, "forgery": 1, "refer": 2}[c.verdict] and d["verdict"] == c.verdict
    assert np.allclose(d["distances"], c.decision.distances, atol=1e-5) and "case_id" in d


def test_cli_reports_the_session_notices(capsys, alice, monkeypatch):
    import torch

    from sigverify.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc = main(["compare", str(alice[0]), str(alice[1]), "--json", "--device", "cuda"])
    out = capsys.readouterr()
    d = json.loads(out.out)
    assert rc in (0, 1, 2) and d["notices"][0]["kind"] == DEVICE_FALLBACK
    assert "note:" in out.err and "CPU" in out.err


def test_supervisor_override_reaches_every_decision_path(tmp_path, verifier, alice):
    """The customer's decision options (a supervisor's threshold override) apply in the library service,
    the GUI's case build and batch alike, and the record names the override."""
    from sigverify.batch import BatchItem, run_batch
    from sigverify.store.operators import OperatorStore

    with Library(tmp_path / "ovr.sqlite3") as lib:
        st = OperatorStore.for_library(lib)
        admin = st.setup_multi_user("admin", "correct horse 1")
        sup = st.add(admin, "super1", "correct horse 1", "supervisor")
        LibraryService(lib, verifier).enrol("C1", alice[:3])
        svc = LibraryService(lib, verifier)
        base_accept = svc.build("C1", alice[3]).decision.verdict.accept
        st.set_threshold_override(sup, "C1", 1.2, "tremor")
        want = pytest.approx(base_accept * 1.2)
        assert svc.build("C1", alice[3]).decision.verdict.accept == want  # the GUI's path
        assert svc.build("C1", alice[3], svc.reference_signatures("C1")).decision.verdict.accept == want
        case = svc.verify("C1", alice[3])  # the CLI's path, recorded
        assert case.decision.verdict.accept == want
        assert lib.audit.get(case.audit_id).details["threshold_override"] == pytest.approx(1.2)
        rep = run_batch([BatchItem("C1", str(alice[3]))], lib, verifier, audit=True, workers=1)
        rec = lib.audit.get(rep.results[0].audit_id)
        assert rec.threshold_accept == want and rec.details["threshold_override"] == pytest.approx(1.2)
