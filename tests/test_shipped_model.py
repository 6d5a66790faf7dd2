"""The shipped model: loads (hash + card checked), is the default, is calibrated, and tells writers apart
on the drawn demo signatures (synthetic, never dataset images)."""

import numpy as np
import pytest

from sigverify.model.embedder import open_model
from sigverify.paths import default_model_path, samples_dir
from sigverify.verify.service import Verifier

pytestmark = pytest.mark.skipif(not default_model_path().exists(), reason="no shipped model in this checkout")


def test_shipped_model_is_default_trained_and_documented():
    m = open_model(None)
    c = m.card
    assert m.path == default_model_path() and not c.random_init
    assert c.architecture == "signet-s" and c.input_hw == (150, 220)
    for metric in ("euclidean", "cosine"):
        cal = c.metric_calibration(metric)
        assert 0 < cal.accept <= cal.eer_threshold <= cal.reject
    assert "research" in c.training["terms"] and "fine-tune" in c.intended_use
    for ds in ("cedar", "sigcomp2011-dutch", "bhsig260-hindi"):
        t = c.metrics["test"][ds]
        assert 0 <= t["eer"] < 0.5 and 0 <= t["eer_random"] < 0.5  # far better than chance, on unseen writers
    assert default_model_path().stat().st_size < 30 * 2**20


def test_shipped_model_separates_writers_on_drawn_samples():
    v = Verifier(None, "cpu")
    s = samples_dir()
    refs = [s / f"alice_ref{i}.png" for i in (1, 2, 3)]
    same = v.verify(s / "alice_questioned_genuine.png", refs, keep_stages=False)
    other = v.verify(s / "bob_ref1.png", refs, keep_stages=False)
    assert same.decision.mean_distance < other.decision.mean_distance
    assert same.decision.verdict.score > other.decision.verdict.score
    assert other.decision.verdict.zone == "forgery"
    assert np.isfinite(same.decision.distances).all()
