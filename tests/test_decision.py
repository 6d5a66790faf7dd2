"""The decision stage: writer-dependent score against a cohort, thresholds per policy and K fitted by
the clerk's protocol, and their use through the one decision path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sigverify.errors import ModelError, SigverifyError
from sigverify.model.card import MetricCalibration
from sigverify.train.cache import CachedSet
from sigverify.train.decision import FAR_TARGET, fit_decisions, pick_cohort
from sigverify.verify.reference import verify_against_references
from sigverify.verify.writer import Cohort, load_cohort, save_cohort, writer_score


def _world(n_writers=30, n_gen=8, n_forg=4, dim=16, seed=0):
    """Unit embeddings: writers around their own centre; forgeries part-way to another writer."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_writers, dim))
    emb, w, g = [], [], []
    for i, c in enumerate(centres):
        for _ in range(n_gen):
            emb.append(c + 0.35 * rng.normal(size=dim))
            w.append(f"set/w{i:02d}")
            g.append(True)
        for _ in range(n_forg):
            emb.append(0.55 * c + 0.45 * centres[(i + 7) % n_writers] + 0.35 * rng.normal(size=dim))
            w.append(f"set/w{i:02d}")
            g.append(False)
    emb = np.array(emb)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    n = len(emb)
    cs = CachedSet(
        np.zeros((n, 2, 2), np.uint8),
        np.array(w),
        np.array(g),
        np.array(["set"] * n),
        np.array([f"/p/{i}.png" for i in range(n)]),
        np.array([f"d{i}" for i in range(n)]),
        [],
    )
    return emb.astype(np.float32), cs


def _pair_cal():
    return {"euclidean": MetricCalibration(0.6, 0.9, 0.75, 10.0, 0.75, 0.6).__dict__}


def test_lda_score_is_zero_at_the_specimens_and_one_at_the_cohort():
    emb, cs = _world()
    cohort = Cohort.from_embeddings(emb[:200], reg=0.3)
    refs = emb[300:305]
    assert cohort.lda_score(refs.mean(0), refs) == pytest.approx(0.0, abs=1e-6)
    assert cohort.lda_score(cohort.mean, refs) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ModelError):
        Cohort.from_embeddings(emb[:3])


def test_writer_policy_separates_better_than_it_guesses_and_uses_its_own_thresholds():
    emb, cs = _world()
    cohort = Cohort.from_embeddings(emb[cs.writers < "set/w10"], 0.3)
    refs = emb[(cs.writers == "set/w20") & cs.genuine][:5]
    gen_q = emb[(cs.writers == "set/w20") & cs.genuine][6]
    forg_q = emb[(cs.writers == "set/w20") & ~cs.genuine][0]
    s_gen, spread = writer_score(gen_q, refs, cohort, 0.6, 0.5)
    s_forg, _ = writer_score(forg_q, refs, cohort, 0.6, 0.5)
    assert s_gen < s_forg and spread is not None
    cal = MetricCalibration.from_dict(_pair_cal()["euclidean"])
    dcal = MetricCalibration(
        accept=s_gen + 1e-6, reject=s_forg - 1e-6, eer_threshold=s_gen, score_a=5, score_b=0.5, ref_spread=0.6
    )
    d_gen = verify_against_references(
        gen_q, refs, cal, "euclidean", "writer", decision_cal=dcal, calibrated_for="K=5 specimens", cohort=cohort, mix=0.5
    )
    d_forg = verify_against_references(forg_q, refs, cal, "euclidean", "writer", decision_cal=dcal, cohort=cohort, mix=0.5)
    assert d_gen.verdict.zone == "genuine" and d_forg.verdict.zone == "forgery"
    assert d_gen.decision_score == pytest.approx(s_gen) and d_gen.calibrated_for == "K=5 specimens"
    assert d_gen.verdict.accept == pytest.approx(dcal.accept)  # the policy's thresholds, not the pair ones
    with pytest.raises(ValueError):
        verify_against_references(gen_q, refs, cal, "euclidean", "writer")  # no cohort


def test_fitted_thresholds_meet_the_targets_on_the_writers_they_were_fitted_on():
    emb, cs = _world()
    cohort_emb, dss = pick_cohort(emb, cs.select(cs.writers < "set/w10"), n=60)
    assert dss == ["set"] and len(cohort_emb) == 60
    cohort = Cohort.from_embeddings(cohort_emb, 0.3)
    val = cs.select(cs.writers >= "set/w10")
    dec = fit_decisions(emb[cs.writers >= "set/w10"], val, _pair_cal(), cohort, ks=(1, 5))
    for policy in ("mean", "min", "writer"):
        for k in ("1", "5"):
            c = dec["euclidean"][policy][k]
            assert c["accept"] <= c["reject"]
            assert c["expected"]["skilled_accepted"] <= FAR_TARGET + 1e-9
            assert c["expected"]["writers"] == 20
    # more specimens decide better than one
    assert dec["euclidean"]["writer"]["5"]["expected"]["eer"] <= dec["euclidean"]["writer"]["1"]["expected"]["eer"]


def test_card_picks_thresholds_for_the_number_of_specimens():
    from sigverify.model.card import ModelCard

    c = ModelCard(name="x", architecture="signet-s", calibration=_pair_cal())
    assert c.decision_calibration("euclidean", "mean", 5) == (None, "pairs") and c.default_policy == "mean"
    c.decision = {
        "default": "writer",
        "euclidean": {
            "mean": {
                "1": dict(_pair_cal()["euclidean"], accept=0.1),
                "3": dict(_pair_cal()["euclidean"], accept=0.3),
                "5": dict(_pair_cal()["euclidean"], accept=0.5),
            }
        },
    }
    assert c.decision_calibration("euclidean", "mean", 1)[0].accept == 0.1
    assert c.decision_calibration("euclidean", "mean", 2) == (c.decision_calibration("euclidean", "mean", 1)[0], "K=1 specimens")
    assert c.decision_calibration("euclidean", "mean", 4)[1] == "K=3 specimens"
    assert c.decision_calibration("euclidean", "mean", 12)[0].accept == 0.5
    assert c.default_policy == "writer"


def test_cohort_file_round_trip_and_tamper_refused(tmp_path):
    from sigverify.hashing import sha256_file

    emb, _ = _world()
    p = save_cohort(tmp_path / "m.cohort.safetensors", emb[:50])
    sha = sha256_file(p)
    c = load_cohort(p, sha, 0.3)
    assert np.allclose(c.embeddings, emb[:50])
    p.write_bytes(p.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(ModelError):
        load_cohort(p, sha, 0.3)
    (tmp_path / "bad.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(ModelError):
        load_cohort(tmp_path / "bad.safetensors", None, 0.3)


def test_shipped_model_decides_with_its_card_policy(verifier):
    """The shipped card's decision stage is what the one decision path applies."""
    card = verifier.card
    if not card.decision:
        pytest.skip("shipped card has no decision stage")
    assert verifier.aggregate == card.default_policy
    assert verifier.cohort is not None
    rng = np.random.default_rng(1)
    refs = rng.normal(size=(5, card.embedding_dim)).astype(np.float32)
    refs /= np.linalg.norm(refs, axis=1, keepdims=True)
    d = verifier.decide_embeddings(refs[0] * 0.9 + refs[1] * 0.1, refs)
    k_used = d.calibrated_for
    assert k_used == "K=5 specimens"
    fitted = card.decision[verifier.metric][verifier.aggregate]["5"]
    assert d.verdict.accept == pytest.approx(fitted["accept"]) and d.verdict.reject == pytest.approx(fitted["reject"])
    assert json.dumps(d.to_dict())  # serialisable as the CLI prints it


def test_policy_without_thresholds_is_refused(verifier):
    from sigverify.verify.service import Verifier

    v = Verifier(verifier.model, "cpu", aggregate="mean")
    v.aggregate = "min"
    v.card.decision = dict(v.card.decision or {})
    saved = v.card.decision
    try:
        v.card.decision = {k: val for k, val in saved.items() if k not in ("euclidean", "cosine")}
        refs = np.eye(3, v.card.embedding_dim, dtype=np.float32)
        with pytest.raises(SigverifyError, match="no thresholds calibrated"):
            v.decide_embeddings(refs[0], refs)
    finally:
        v.card.decision = saved
