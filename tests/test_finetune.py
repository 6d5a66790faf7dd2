"""Core fine-tuning (frozen trunk, cached features, tuned head), the model manager and the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import make_set

from sigverify.errors import Cancelled, DataError, ModelError
from sigverify.gui.finetune_format import metrics_text, preview_samples
from sigverify.train.finetune import FinetuneConfig, check_data, estimate_seconds, finetune, save_curves_for, save_finetuned


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_set(tmp_path_factory.mktemp("ft") / "refs")


@pytest.fixture(scope="module")
def base():
    from sigverify.model.weights import random_model

    return random_model()


@pytest.fixture(scope="module")
def report(dataset):
    return check_data(dataset)


@pytest.fixture(scope="module")
def result(report, base):
    rows = []
    res = finetune(
        report, base, FinetuneConfig(epochs=3, val_frac=0.34, augment_copies=1), progress=lambda f, m, r: rows.append((f, m, r))
    )
    res.rows = rows
    return res


def test_check_data_counts_and_warnings(tmp_path):
    root = make_set(tmp_path / "d", n_writers=3, n_gen=4, n_forg=1)
    (root / "writer0" / "genuine" / "0.png").replace(root / "writer0" / "genuine" / "keep.png")
    # problems: a duplicate, a blank scan, an unreadable file, a writer with too few genuine images
    (root / "writer1" / "genuine" / "dup.png").write_bytes((root / "writer1" / "genuine" / "1.png").read_bytes())
    cv2.imwrite(str(root / "writer1" / "genuine" / "blank.png"), np.full((160, 420), 255, np.uint8))
    (root / "writer2" / "genuine" / "broken.png").write_bytes(b"not a png")
    for p in list((root / "writer2" / "genuine").glob("[0-9].png"))[:2]:
        p.unlink()
    rep = check_data(root)
    assert rep.counts["d/writer0"] == {"genuine": 4, "forgery": 1, "usable_genuine": 4}
    assert rep.counts["d/writer1"]["genuine"] == 6 and rep.counts["d/writer1"]["usable_genuine"] == 4
    assert rep.few_genuine == ["d/writer2"]
    assert len(rep.blank) == 1 and len(rep.unreadable) == 1 and len(rep.duplicates) == 1
    text = " ".join(rep.warnings)
    assert "fewer than 4" in text and "blank" in text and "could not be read" in text and "byte-identical" in text
    assert rep.ok
    pv = preview_samples(rep, 4)
    assert len(pv) == 4 and pv[0]["preprocessed"].shape == rep.cached.images.shape[1:]


def test_check_data_refuses_too_few_writers(tmp_path, base):
    root = make_set(tmp_path / "one", n_writers=1)
    rep = check_data(root)
    assert not rep.ok and "at least 2 writers" in rep.warnings[0]
    with pytest.raises(DataError):
        finetune(rep, base, FinetuneConfig(epochs=1))


def test_finetune_before_after_and_card(result, base, report):
    assert result.before is not None and result.after is not None
    for r in (result.before, result.after):
        assert 0 <= r.eer <= 1 and 0 <= r.eer_random <= 1 and r.writers == 2
    assert result.after.far is not None and result.after.frr is not None
    assert result.after.threshold == pytest.approx(result.card.calibration["euclidean"]["eer_threshold"])
    card = result.card
    assert card.base_model == base.model_id
    assert card.architecture == base.card.architecture and card.preprocessing == base.card.preprocessing
    d = card.training["data"]
    assert d["folder"] == "refs" and d["writers"] == 6 and d["images"] == 36
    assert d["train_writers"] == 4 and d["val_writers"] == 2
    assert "/" not in json.dumps(d["folder"]) and "0.png" not in card.to_json()  # folder name only, no image paths
    assert card.training["config"]["epochs"] == 3 and card.training["seconds"] > 0
    assert card.metrics["validation"]["before"]["eer"] == pytest.approx(result.before.eer)
    assert set(card.calibration) == {"euclidean", "cosine"}
    text = metrics_text(result)  # the wizard's before/after text
    assert "held-out writers: 2" in text and f"base {100 * result.before.eer:5.1f}%" in text
    # progress: monotone fractions, one row per epoch with loss and val EER
    fr = [f for f, _, _ in result.rows]
    assert fr == sorted(fr) and fr[-1] == 1.0
    epochs = [r for _, _, r in result.rows if r.get("loss") is not None]
    assert [r["epoch"] for r in epochs] == [1, 2, 3] and all("val_eer" in r for r in epochs)


def test_only_the_head_changes(result, base):
    new, old = result.network.state_dict(), base.network.state_dict()
    assert set(new) == set(old)
    for k in old:
        if not k.startswith("embed."):
            assert torch.equal(new[k], old[k]), k


def test_lowrank_head_merges_exactly(report, base):
    from sigverify.train.finetune import make_head

    cfg = FinetuneConfig(head="lowrank", rank=4)
    head = make_head(base.network, cfg)
    with torch.no_grad():
        head.up.normal_()
    f = torch.rand(5, base.network.embed.in_features)
    lin = head.merged()
    assert torch.allclose(head(f), lin(f), atol=1e-4)
    res = finetune(
        report,
        base,
        FinetuneConfig(epochs=2, head="lowrank", loss="triplet", mining="semi-hard", augment_copies=0, val_frac=0.34),
    )
    assert res.after is not None and res.card.training["config"]["head"] == "lowrank"


def test_save_and_load(result, tmp_path):
    from sigverify.model.weights import load_model
    from sigverify.paths import user_models_dir

    p = save_finetuned(result, "My bank model")
    assert p.parent == user_models_dir() and p.name == "My-bank-model.safetensors"
    m = load_model(p)
    assert m.card.name == "My bank model" and m.card.weights_sha256
    x = torch.rand(2, 1, *m.card.input_hw)
    with torch.no_grad():
        assert torch.allclose(m.network(x), result.network(x), atol=1e-5)
    with pytest.raises(DataError):
        save_finetuned(result, "My bank model")  # no silent overwrite
    curves = save_curves_for(result, tmp_path / "c")
    assert [Path(c).name for c in curves] == ["c_roc.png", "c_det.png"] and all(Path(c).stat().st_size for c in curves)
    p.unlink()
    p.with_suffix(".json").unlink()


def test_cancel_writes_nothing_and_is_quick(report, base, tmp_path):
    from sigverify.paths import user_models_dir

    before = set(user_models_dir().glob("*")) if user_models_dir().exists() else set()
    t = {}

    def stop():
        return "t" in t and time.perf_counter() - t["t"] > 0

    def prog(f, m, row):
        if row.get("epoch") == 1 and "t" not in t:
            t["t"] = time.perf_counter()

    with pytest.raises(Cancelled):
        finetune(report, base, FinetuneConfig(epochs=500), progress=prog, should_stop=stop)
    assert time.perf_counter() - t["t"] < 2.0
    after = set(user_models_dir().glob("*")) if user_models_dir().exists() else set()
    assert after == before
    # cancelled during the trunk pass too
    calls = []
    with pytest.raises(Cancelled):
        finetune(report, base, FinetuneConfig(epochs=2), should_stop=lambda: calls.append(1) or len(calls) > 3)


def test_too_few_writers_keeps_base_calibration(tmp_path, base):
    rep = check_data(make_set(tmp_path / "three", n_writers=3))
    res = finetune(rep, base, FinetuneConfig(epochs=2, augment_copies=0))
    assert res.before is None and res.after is None
    assert res.card.calibration == base.card.calibration
    assert any("too few writers" in n for n in res.notes)
    assert "kept from the base model" in res.card.training["calibration"]


def test_estimate_grows_with_work():
    a = estimate_seconds(100, 10)
    assert 0 < a < estimate_seconds(1000, 10) and a < estimate_seconds(100, 100)
    assert estimate_seconds(1000, 30, device="cuda") < estimate_seconds(1000, 30)


def test_bad_config_refused(report, base):
    with pytest.raises(DataError):
        finetune(report, base, FinetuneConfig(loss="hinge"))


# ============================================================================ model manager
def test_model_manager(result, monkeypatch, tmp_path):
    from sigverify import paths
    from sigverify.store import models as store

    shipped = tmp_path / "assets" / "sigverify-base.safetensors"
    monkeypatch.setattr(paths, "default_model_path", lambda: shipped)
    p = save_finetuned(result, "first")
    q = save_finetuned(result, "second")
    listed = store.list_models(include_shipped=False)
    assert {m.name for m in listed} >= {"first", "second"}
    s = [m for m in listed if m.name == "first"][0].summary()
    assert s["eer_after"] is not None and s["writers"] == 6
    new = store.rename_model(p, "first renamed")
    assert new.name == "first-renamed.safetensors" and not p.exists() and not p.with_suffix(".json").exists()
    from sigverify.model.weights import load_model

    assert load_model(new).card.name == "first renamed"
    with pytest.raises(DataError):
        store.rename_model(new, "second")  # name taken
    store.delete_model(q)
    assert not q.exists() and not q.with_suffix(".json").exists()
    # the shipped model and anything outside the user folder are never touched
    shipped.parent.mkdir(parents=True)
    shipped.write_bytes(b"x")
    with pytest.raises(ModelError):
        store.delete_model(shipped)
    with pytest.raises(ModelError):
        store.rename_model(shipped, "evil")
    assert shipped.exists()
    # an orphan card (interrupted rename) is ignored by the list and cleaned
    orphan = new.with_name("orphan.json")
    orphan.write_text(new.with_suffix(".json").read_text())
    assert "orphan" not in {m.path.stem for m in store.list_models(False)}
    assert orphan in store.clean_orphans() and not orphan.exists()
    store.delete_model(new)


# ============================================================================ CLI
def test_cli_finetune(dataset, tmp_path, capsys):
    from sigverify.cli import main
    from sigverify.model.weights import load_model, random_model, save_model

    m = random_model()
    base_path = save_model(m.network, m.card, tmp_path / "base.safetensors")
    out = tmp_path / "tuned.safetensors"
    rc = main(
        [
            "finetune",
            str(dataset),
            "--base",
            str(base_path),
            "--out",
            str(out),
            "--epochs",
            "2",
            "--val-frac",
            "0.34",
            "--augment-copies",
            "0",
            "--quiet",
            "--json",
            "--curves",
            str(tmp_path / "cv"),
        ]
    )
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert d["model"] == str(out) and d["before"]["eer"] is not None and d["after"]["eer"] is not None
    assert load_model(out).card.base_model.startswith("random-untrained@")
    assert (tmp_path / "cv_roc.png").exists()
    rc = main(["finetune", str(dataset), "--base", str(base_path), "--out", str(out), "--epochs", "1", "--quiet"])
    assert rc == 7  # exists: refused without --overwrite
    rc = main(["finetune", str(tmp_path / "missing"), "--base", str(base_path), "--out", str(out), "--quiet"])
    assert rc == 7


def test_finetuned_model_gets_a_decision_stage_adapted_to_the_bank(result, tmp_path):
    """Cohort from the bank's training writers, thresholds from its held-out writers, saved beside the
    model and used by the Verifier; the clerk's-protocol EER before/after is on the card."""
    import numpy as np

    from sigverify.verify.service import Verifier

    card = result.card
    assert card.decision["default"] == "writer" and result.cohort is not None
    assert len(result.cohort) == 4 * 4  # 4 training writers x 4 genuine signatures
    clerk = card.metrics["validation"]["clerk"]
    assert set(clerk["before"]) == set(clerk["after"]) == {"1", "3"}  # 4 genuine each: K <= 3
    p = save_finetuned(result, out=tmp_path / "bank.safetensors")
    cohort_files = list(tmp_path.glob("bank.cohort-*.safetensors"))
    assert len(cohort_files) == 1 and not list(tmp_path.glob("*.tmp.*"))
    v = Verifier(p, "cpu")
    assert v.aggregate == "writer" and v.cohort is not None
    assert np.allclose(v.cohort.embeddings, result.cohort)
    refs = result.cohort[:3]
    d = v.decide_embeddings(refs[0], refs)
    assert d.calibrated_for == "K=3 specimens"
    cohort_files[0].write_bytes(b"tampered")
    with pytest.raises(Exception, match="cohort"):
        Verifier(p, "cpu")
