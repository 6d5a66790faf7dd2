"""Training on CPU with tiny synthetic data: losses, sampling, checkpoint/resume, cancel, CLI train + eval."""

import json

import cv2
import numpy as np
import pytest
import torch
from helpers import signature

from sigverify.cli import main
from sigverify.errors import Cancelled
from sigverify.model.weights import load_model
from sigverify.train.cache import build_cache
from sigverify.train.datasets import WriterSplit, scan_root, split_writers
from sigverify.train.losses import CosineMarginClassifier, contrastive_loss, triplet_loss
from sigverify.train.trainer import PKSampler, TrainConfig, train

NAMES = ["Alice Smith", "Bob Jones", "Carla Diaz", "Dmitri Ivanov", "Eve Tan", "Farid Khan"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "synth"
    for w, name in enumerate(NAMES):
        g = root / f"{w:03d}" / "genuine"
        f = root / f"{w:03d}" / "forgery"
        g.mkdir(parents=True)
        f.mkdir(parents=True)
        for s in range(4):
            cv2.imwrite(str(g / f"{s}.png"), signature(name, 10 * w + s, size=(160, 420)))
        for s in range(2):
            from sigverify.samples import draw_signature

            cv2.imwrite(str(f / f"{s}.png"), draw_signature(name, 100 + s, variation=0.6, forged=True, size=(160, 420)))
    return root


@pytest.fixture(scope="module")
def cached(data_dir):
    return build_cache(scan_root(data_dir))


def test_scan_and_split(data_dir):
    data = scan_root(data_dir)
    assert len(data.writers) == 6 and len(data.samples) == 36
    sp = split_writers(data, val_frac=0.2, test_frac=0.2, seed=1)
    assert set(sp.train) | set(sp.val) | set(sp.test) == set(data.writers)
    assert not (set(sp.train) & set(sp.test)) and not (set(sp.val) & set(sp.test))
    assert split_writers(data, 0.2, 0.2, seed=1) == sp  # seeded
    assert WriterSplit.from_json(sp.to_json()) == sp


def test_losses_prefer_the_right_geometry():
    w = torch.tensor([0, 0, 0, 1, 1, 1])
    g = torch.tensor([True, True, False, True, True, False])
    good = torch.nn.functional.normalize(torch.tensor([[1, 0.0], [1, 0.05], [0, 1], [-1, 0], [-1, 0.05], [0, -1]]), dim=1)
    bad = good[torch.tensor([0, 3, 1, 4, 2, 5])]
    assert contrastive_loss(good, w, g) < contrastive_loss(bad, w, g)
    for mining in ("batch-hard", "semi-hard"):
        assert triplet_loss(good, w, g, mining=mining) < triplet_loss(bad, w, g, mining=mining)
    head = CosineMarginClassifier(2, 2)
    assert torch.isfinite(head(good[g], w[g]))


def test_pk_sampler_batches(cached):
    cfg = TrainConfig(writers_per_batch=3, genuine_per_writer=2, forgeries_per_writer=1)
    s = PKSampler(cached, cfg, np.random.default_rng(0))
    idx, lab, gen, ws = s.batch()
    assert len(set(lab.tolist())) == 3 and len(idx) == 3 * 3 and gen.sum() == 6
    assert all(cached.writers[i] == s.writers[l] for i, l in zip(idx, lab))


def _cfg(**kw):
    base = dict(
        steps=6,
        writers_per_batch=4,
        genuine_per_writer=2,
        forgeries_per_writer=1,
        eval_every=3,
        checkpoint_every=3,
        device="cpu",
        lr=1e-3,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_train_progress_checkpoint_resume(cached, tmp_path):
    seen = []
    ck = tmp_path / "ck"
    net, state = train(cached, cached, _cfg(steps=3), checkpoint=ck, progress=lambda f, m, r: seen.append((f, r)))
    assert state.step == 3 and seen[-1][0] == pytest.approx(1.0)
    assert any("val_eer" in r for _, r in seen)
    assert ck.with_suffix(".safetensors").exists() and ck.with_suffix(".json").exists()
    net2, state2 = train(cached, cached, _cfg(steps=6), checkpoint=ck, resume=True)
    assert state2.step == 6 and state2.history[0]["step"] <= 3  # history carried over from the checkpoint


def test_triplet_training_runs(cached):
    net, state = train(cached, None, _cfg(steps=2, loss="triplet", mining="semi-hard"))
    assert state.step == 2 and np.isfinite(state.history[-1]["loss"])


def test_cancel_stops_quickly(cached):
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 2

    with pytest.raises(Cancelled):
        train(cached, None, _cfg(steps=100), should_stop=stop)
    assert calls["n"] == 3


def test_cli_train_then_eval(data_dir, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    split = tmp_path / "split.json"
    code = main(
        [
            "train",
            str(data_dir),
            "--out",
            str(out),
            "--steps",
            "4",
            "--batch-writers",
            "3",
            "--eval-every",
            "2",
            "--device",
            "cpu",
            "--split-out",
            str(split),
            "--json",
            "--quiet",
        ]
    )
    assert code == 0
    d = json.loads(capsys.readouterr().out)
    assert d["model"] == str(out)
    m = load_model(out)
    assert m.card.calibration["euclidean"]["accept"] <= m.card.calibration["euclidean"]["reject"]
    assert m.card.training["terms"] and not m.card.random_init
    code = main(
        [
            "eval",
            str(data_dir),
            "--model",
            str(out),
            "--split",
            str(split),
            "--part",
            "test",
            "--json",
            "--curves",
            str(tmp_path / "c"),
            "--quiet",
        ]
    )
    assert code == 0
    r = json.loads(capsys.readouterr().out)
    for k in ("eer", "eer_random", "auc", "far", "frr", "threshold", "writers", "pairs"):
        assert k in r
    assert 0 <= r["eer"] <= 1 and r["writers"] == len(WriterSplit.load(split).test)
    assert (tmp_path / "c_roc.png").stat().st_size > 1000 and (tmp_path / "c_det.png").exists()
