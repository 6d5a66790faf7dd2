"""Network, safetensors + card round trip, tampering refused, embedder batching."""

import json

import numpy as np
import pytest
import torch
from helpers import signature

from sigverify.errors import ModelError
from sigverify.imaging import preprocess
from sigverify.model.card import ModelCard
from sigverify.model.embedder import Embedder, resolve_device
from sigverify.model.network import ARCHITECTURES, build_network
from sigverify.model.weights import load_model, random_model, save_model


@pytest.fixture(scope="module")
def inputs():
    return [preprocess(signature(n, s)).input for n, s in (("Alice Smith", 1), ("Alice Smith", 2), ("Bob Jones", 1))]


def test_network_shapes_and_unit_embeddings():
    for arch in ARCHITECTURES:
        net = build_network(arch).eval()
        with torch.inference_mode():
            e = net(torch.rand(3, 1, 150, 220))
        assert e.shape == (3, 128)
        assert torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)


def test_twin_branch_is_shared(inputs):
    """Embedding a pair = embedding each alone: one branch, shared weights, no cross-talk (eval mode)."""
    emb = Embedder(random_model(seed=3))
    both = emb.embed_arrays(inputs[:2])
    alone = np.stack([emb.embed_arrays([inputs[0]])[0], emb.embed_arrays([inputs[1]])[0]])
    assert np.allclose(both, alone, atol=1e-5)


def test_save_load_round_trip(tmp_path, inputs):
    m = random_model(seed=1)
    m.card.name = "roundtrip"
    p = save_model(m.network, m.card, tmp_path / "m.safetensors")
    assert p.exists() and (tmp_path / "m.json").exists()
    loaded = load_model(p)
    assert loaded.card.weights_sha256 == m.card.weights_sha256 and len(loaded.card.weights_sha256) == 64
    a = Embedder(m).embed_arrays(inputs)
    b = Embedder(loaded).embed_arrays(inputs)
    assert np.allclose(a, b, atol=1e-6)
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave nothing behind
    # no pickle anywhere: the weights file is safetensors (8-byte header length + JSON header)
    raw = p.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert json.loads(raw[8 : 8 + n])["__metadata__"]["architecture"] == "signet-s"


def _saved(tmp_path):
    m = random_model(seed=2)
    return save_model(m.network, m.card, tmp_path / "t.safetensors")


def test_tampered_weights_refused(tmp_path):
    p = _saved(tmp_path)
    raw = bytearray(p.read_bytes())
    raw[-10] ^= 0xFF
    p.write_bytes(bytes(raw))
    with pytest.raises(ModelError, match="do not match"):
        load_model(p)


def test_truncated_weights_refused(tmp_path):
    p = _saved(tmp_path)
    p.write_bytes(p.read_bytes()[:1000])
    with pytest.raises(ModelError):
        load_model(p)


def test_wrong_architecture_refused(tmp_path):
    p = _saved(tmp_path)
    card = json.loads(p.with_suffix(".json").read_text())
    card["architecture"] = "signet-half"
    p.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="architecture"):
        load_model(p)


def test_missing_or_foreign_card_and_pickle_refused(tmp_path):
    p = _saved(tmp_path)
    p.with_suffix(".json").write_text('{"hello": 1}')
    with pytest.raises(ModelError, match="model card"):
        load_model(p)
    p.with_suffix(".json").unlink()
    with pytest.raises(ModelError, match="not found"):
        load_model(p)
    pt = tmp_path / "x.pt"
    torch.save({"a": torch.zeros(1)}, pt)
    with pytest.raises(ModelError, match="safetensors"):
        load_model(pt)


def test_random_weights_are_marked():
    m = random_model()
    assert m.card.random_init is True and m.card.name == "random-untrained"
    assert ModelCard.from_dict(m.card.to_dict()).random_init


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="GPU"):
            resolve_device("cuda")
    with pytest.raises(ModelError):
        resolve_device("tpu9")


def test_batched_embedding_matches_single(inputs):
    emb = Embedder(random_model(seed=4), batch_size=2)
    many = emb.embed_arrays(inputs * 3)
    assert many.shape == (9, 128)
    assert np.allclose(many[0], many[3], atol=1e-5) and np.allclose(many[2], many[8], atol=1e-5)
