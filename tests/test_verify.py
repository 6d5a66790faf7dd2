"""Distances, calibration, verdict zones, reference sets, and the evaluation protocol."""

import numpy as np
import pytest

from sigverify.model.card import MetricCalibration
from sigverify.train.evaluate import auc, eer, evaluate_embeddings, make_pairs
from sigverify.verify.calibration import fit_calibration, fit_logistic, verdict_for
from sigverify.verify.distances import distance, pairwise_distances
from sigverify.verify.reference import verify_against_references

CAL = MetricCalibration(accept=0.5, reject=0.8, eer_threshold=0.65, score_a=10.0, score_b=0.65, ref_spread=0.4)


def test_distances():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    assert distance(a, b, "euclidean") == pytest.approx(np.sqrt(2))
    assert distance(a, b, "cosine") == pytest.approx(1.0)
    assert distance(a, a * 3, "cosine") == pytest.approx(0.0, abs=1e-12)
    d = pairwise_distances(np.eye(3), np.eye(3))
    assert d.shape == (3, 3) and np.allclose(np.diag(d), 0)


@pytest.mark.parametrize(
    "d,zone", [(0.1, "genuine"), (0.5, "genuine"), (0.6, "refer"), (0.8, "refer"), (0.81, "forgery"), (1.9, "forgery")]
)
def test_zones(d, zone):
    v = verdict_for(d, CAL)
    assert v.zone == zone
    assert 0 <= v.score <= 100


def test_score_monotone_and_centred():
    scores = [verdict_for(d, CAL).score for d in np.linspace(0, 2, 50)]
    assert all(a >= b for a, b in zip(scores, scores[1:]))
    assert verdict_for(0.65, CAL).score == pytest.approx(50.0)


def test_fit_logistic_and_calibration():
    rng = np.random.default_rng(0)
    pos = rng.normal(0.4, 0.08, 500)
    neg = rng.normal(0.9, 0.1, 500)
    a, b = fit_logistic(pos, neg)
    assert a > 0 and 0.5 < b < 0.8
    cal = fit_calibration(pos, neg, rng.normal(1.1, 0.1, 500), far_target=0.05, frr_target=0.05)
    assert cal.accept <= cal.eer_threshold <= cal.reject
    assert (neg <= cal.accept).mean() <= 0.05 + 1e-9
    assert (pos > cal.reject).mean() <= 0.05 + 1e-9


def test_reference_set_aggregate_and_person_scale():
    refs = np.array([[1.0, 0.0], [0.9, 0.1], [0.95, 0.05]])
    refs /= np.linalg.norm(refs, axis=1, keepdims=True)
    q = np.array([0.8, 0.6])
    dec = verify_against_references(q, refs, CAL, aggregate="mean")
    assert len(dec.distances) == 3
    assert dec.mean_distance == pytest.approx(np.mean(dec.distances))
    assert dec.min_distance == pytest.approx(min(dec.distances))
    # references that agree closely -> tighter thresholds (scale at the lower bound)
    assert dec.person_scale == pytest.approx(0.8)
    assert dec.verdict.accept == pytest.approx(CAL.accept * 0.8)
    dmin = verify_against_references(q, refs, CAL, aggregate="min")
    assert dmin.verdict.distance == pytest.approx(dmin.min_distance)
    one = verify_against_references(q, refs[:1], CAL)
    assert one.person_scale == 1.0 and one.warnings  # "add more specimens"


def test_eer_and_auc_basics():
    assert eer(np.array([0.1, 0.2]), np.array([0.8, 0.9])).eer == pytest.approx(0.0)
    assert eer(np.array([0.8, 0.9]), np.array([0.1, 0.2])).eer == pytest.approx(1.0)
    rng = np.random.default_rng(1)
    x = rng.random(4000)
    y = rng.random(4000)
    assert eer(x, y).eer == pytest.approx(0.5, abs=0.03)
    assert auc(np.array([0.1]), np.array([0.9])) == 1.0
    assert auc(x, y) == pytest.approx(0.5, abs=0.03)


def test_eer_interpolates():
    pos = np.array([0.1, 0.2, 0.3, 0.6])
    neg = np.array([0.4, 0.5, 0.7, 0.8])
    e = eer(pos, neg)
    assert e.eer == pytest.approx(0.25)


def test_pair_protocol_counts():
    writers = np.array(["a"] * 4 + ["b"] * 3)
    genuine = np.array([True, True, True, False, True, True, False])
    digests = np.array(["x", "x", "y", "f", "p", "q", "g"])  # a's first two files are byte-identical
    ps = make_pairs(writers, genuine, digests, seed=0)
    # a: unique genuine {x, y} -> 1 positive; b: 2 genuine -> 1 positive
    assert len(ps.pos) == 2
    assert len(ps.skilled) == 2 * 1 + 2 * 1
    assert len(ps.random) == len(ps.pos)
    assert all(writers[i] != writers[j] for i, j in ps.random)


def test_evaluate_embeddings_separable():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 16))
    emb, writers, genuine = [], [], []
    for w in range(5):
        for _ in range(4):
            emb.append(centres[w] + 0.01 * rng.normal(size=16))
            writers.append(str(w))
            genuine.append(True)
        for _ in range(2):
            emb.append(centres[w] + 3 * rng.normal(size=16))
            writers.append(str(w))
            genuine.append(False)
    r = evaluate_embeddings(np.array(emb), np.array(writers), np.array(genuine), metric="euclidean", threshold=0.5)
    assert r.eer == 0.0 and r.eer_random == 0.0 and r.auc == 1.0
    assert r.writers == 5 and r.pairs["positive"] == 30 and r.pairs["skilled"] == 40
    assert r.far == 0.0 and r.frr == 0.0
