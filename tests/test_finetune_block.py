"""Fine-tuning that adapts further: the last convolutional block unfrozen (features below it cached),
and the decision stage adapted without touching the network."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import make_set

from sigverify.errors import Cancelled, DataError
from sigverify.train import finetune as ft
from sigverify.train.finetune import FinetuneConfig, check_data, estimate_seconds, finetune, save_finetuned
from sigverify.train.finetune_loop import last_block_index


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return check_data(make_set(tmp_path_factory.mktemp("ftb") / "refs"))


@pytest.fixture(scope="module")
def base():
    from sigverify.model.weights import random_model

    return random_model()


def _cfg(**kw):
    d = dict(adapt="block", epochs=2, val_frac=0.34, augment_copies=1, lr=1e-3, anchor_weight=0.0)
    d.update(kw)
    return FinetuneConfig(**d)


@pytest.fixture(scope="module")
def counted(report, base, monkeypatch_module):
    """A block fine-tune with the frozen part wrapped to count the images it sees."""
    seen = {"images": 0, "calls": 0}
    real = ft.below_block

    def counting(net):
        low = real(net)

        def run(x):
            seen["images"] += len(x)
            seen["calls"] += 1
            return low(x)

        return run

    monkeypatch_module.setattr(ft, "below_block", counting)
    rows = []
    # no held-out writers: the last epoch is kept (with them, an epoch that loses to the base is dropped)
    res = finetune(report, base, _cfg(val_frac=0.0), progress=lambda f, m, r: rows.append(r))
    monkeypatch_module.undo()
    return res, dict(seen), rows


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_block_changes_the_last_block_and_projection_only(counted, base):
    res, _, _ = counted
    k = last_block_index(base.network)
    new, old = res.network.state_dict(), base.network.state_dict()
    assert set(new) == set(old)
    changed = {n for n in old if old[n].dtype.is_floating_point and not torch.equal(new[n], old[n])}
    trained = {n for n in old if n.startswith(f"features.{k}.") and n.endswith("weight")} | {"embed.weight"}
    assert trained and trained <= changed, trained - changed  # the last conv block's weights and the projection moved
    frozen = [n for n in old if n.startswith("head.") or any(n.startswith(f"features.{i}.") for i in range(k))]
    assert frozen and not (changed & set(frozen))  # nothing below the block, nor the fully-connected layers
    for n in old:  # batch-norm statistics are kept, everywhere
        if "running_" in n or "num_batches" in n:
            assert torch.equal(new[n], old[n]), n
    assert "last conv block" in res.card.training["method"] and res.card.training["config"]["adapt"] == "block"


def test_block_uses_the_feature_cache(counted, report):
    res, seen, rows = counted
    d = res.card.training["data"]
    # the frozen part ran once per image (+ one augmented copy of each training image), not once per step
    assert d["val_images"] == 0 and seen["images"] == d["train_images"] * 2
    steps = max(r.get("step", 0) for r in rows)
    assert steps >= 8 and seen["calls"] < steps + 10
    assert [r["epoch"] for r in rows if r.get("loss") is not None] == [1, 2]


def test_block_model_saves_and_embeds_like_the_trained_network(counted, tmp_path):
    from sigverify.model.weights import load_model

    res, _, _ = counted
    p = save_finetuned(res, out=tmp_path / "block.safetensors")
    m = load_model(p)
    x = torch.rand(3, 1, *m.card.input_hw)
    with torch.no_grad():
        assert torch.allclose(m.network.eval()(x), res.network.eval()(x), atol=1e-5)
    assert res.card.training["best_epoch"] == 2


def test_block_cancels_quickly_and_a_rerun_matches_an_uninterrupted_run(report, base):
    t = {}

    def prog(f, m, row):
        if row.get("epoch") == 1 and "t" not in t:
            t["t"] = time.perf_counter()

    with pytest.raises(Cancelled):
        finetune(report, base, _cfg(epochs=500), progress=prog, should_stop=lambda: "t" in t)
    assert time.perf_counter() - t["t"] < 2.0
    calls = []
    with pytest.raises(Cancelled):  # during the cached pass too
        finetune(report, base, _cfg(), should_stop=lambda: calls.append(1) or len(calls) > 2)
    # same seed: a restart after a cancel gives the same model (no held-out writers, so the last epoch is kept)
    a = finetune(report, base, _cfg(epochs=1, val_frac=0.0))
    b = finetune(report, base, _cfg(epochs=1, val_frac=0.0))
    k = last_block_index(base.network)
    old, sa, sb = base.network.state_dict(), a.network.state_dict(), b.network.state_dict()
    for n in (f"features.{k}.0.weight", "embed.weight"):
        assert torch.allclose(sa[n], sb[n], atol=1e-6) and not torch.allclose(sa[n], old[n]), n


def test_stage_adapts_the_decision_not_the_network(report, base, tmp_path):
    res = finetune(report, base, FinetuneConfig(adapt="stage", val_frac=0.34))
    for n, v in base.network.state_dict().items():
        assert torch.equal(res.network.state_dict()[n], v), n
    assert res.after is not None and res.card.decision["default"] == "writer"
    assert res.card.training["config"]["adapt"] == "stage" and res.history == []
    assert res.cohort is not None and len(res.cohort) == 4 * 4  # random base: no shipped cohort, the bank's only


def test_stage_adds_the_bank_to_the_base_cohort(report, base, tmp_path):
    """A base model with a shipped cohort keeps it and adds the bank's training writers to it."""
    from sigverify.model.weights import load_model

    res0 = finetune(report, base, FinetuneConfig(adapt="stage", val_frac=0.34))
    p = save_finetuned(res0, out=tmp_path / "with-cohort.safetensors")  # a model that has a cohort file
    with_cohort = load_model(p)
    res = finetune(report, with_cohort, FinetuneConfig(adapt="stage", val_frac=0.34))
    assert len(res.cohort) == 2 * len(res0.cohort)
    assert np.allclose(res.cohort[: len(res0.cohort)], res0.cohort)
    assert "base model's cohort" in res.card.decision["cohort"]["source"]
    res_bank = finetune(report, with_cohort, FinetuneConfig(adapt="stage", cohort="bank", val_frac=0.34))
    assert len(res_bank.cohort) == len(res0.cohort)


def test_estimate_by_adaptation():
    head, block, stage = (estimate_seconds(800, 20, adapt=a) for a in ("head", "block", "stage"))
    assert stage < head < block
    assert estimate_seconds(800, 40, adapt="block") > block
    assert estimate_seconds(800, 20, adapt="block", device="cuda") < block


def test_unknown_adaptation_refused(report, base):
    with pytest.raises(DataError):
        finetune(report, base, FinetuneConfig(adapt="everything"))
    with pytest.raises(DataError):
        finetune(report, base, FinetuneConfig(cohort="all"))


def test_block_path_is_a_real_change_on_a_tiny_set(tmp_path, base):
    """Guard against a silent no-op: with a large learning rate the held-out embeddings move."""
    rep = check_data(make_set(Path(tmp_path) / "tiny", n_writers=5, n_gen=4, n_forg=1))
    res = finetune(rep, base, _cfg(epochs=1, val_frac=0.0, augment_copies=0))
    x = torch.from_numpy(rep.cached.images[:4].astype(np.float32) / 255.0)[:, None]
    with torch.no_grad():
        assert not torch.allclose(res.network.eval()(x), base.network.eval()(x))


def test_cli_finetune_adapt_block(tmp_path, capsys):
    import json

    from sigverify.cli import main
    from sigverify.model.weights import load_model, random_model, save_model

    data = make_set(tmp_path / "refs")
    m = random_model()
    base_path = save_model(m.network, m.card, tmp_path / "base.safetensors")
    out = tmp_path / "tuned.safetensors"
    args = ["finetune", str(data), "--base", str(base_path), "--out", str(out), "--val-frac", "0.34", "--quiet", "--json"]
    rc = main(args + ["--adapt", "block", "--epochs", "1", "--augment-copies", "0"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert d["adapt"] == "block" and set(d["clerk"]["before"]) == set(d["clerk"]["after"]) == {"1", "3"}
    card = load_model(out).card
    assert card.training["config"]["adapt"] == "block" and card.training["config"]["epochs"] == 1
    rc = main(args + ["--overwrite"])  # the default: the decision stage only
    assert rc == 0 and json.loads(capsys.readouterr().out)["adapt"] == "stage"


def test_split_keeps_a_writers_identities_together():
    """crossmedia-style identities (writer#name): a hand is either all training or all held out."""
    from types import SimpleNamespace

    from sigverify.train.finetune_data import split_writers

    ids = [f"zh/{w:03d}#name{n:02d}" for w in range(10) for n in range(3)]
    writers = np.repeat(ids, 4)
    cs = SimpleNamespace(writers=writers, genuine=np.ones(len(writers), bool), digests=np.arange(len(writers)).astype(str))
    tr, va = split_writers(cs, 0.3, 0)
    assert len(tr) + len(va) == 30 and va
    hand = lambda w: w.split("#")[0]  # noqa: E731
    assert not {hand(w) for w in tr} & {hand(w) for w in va}
    assert len({hand(w) for w in va}) == 3
    plain = SimpleNamespace(writers=np.repeat([f"d/{i}" for i in range(10)], 4), genuine=np.ones(40, bool))
    plain.digests = np.arange(40).astype(str)
    assert split_writers(plain, 0.3, 0)[1] and len(split_writers(plain, 0.3, 0)[1]) == 3
