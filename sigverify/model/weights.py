"""Save and load models: weights in safetensors (never pickle) + a JSON model card with the hash."""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from sigverify.atomic import atomic_path, write_text_atomic
from sigverify.errors import ModelError
from sigverify.hashing import sha256_file
from sigverify.model.card import ModelCard, card_path_for, placeholder_calibration
from sigverify.model.network import SigNet, build_network


@dataclass
class LoadedModel:
    network: SigNet
    card: ModelCard
    path: Path | None  # None for an in-memory random model

    @property
    def model_id(self) -> str:
        return f"{self.card.name}@{self.card.weights_sha256[:12]}" if self.card.weights_sha256 else self.card.name


def save_model(network: SigNet, card: ModelCard, path: str | os.PathLike) -> Path:
    """Write ``path`` (.safetensors) and its card (.json) atomically; returns the weights path."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    state = {k: v.detach().to("cpu").contiguous() for k, v in network.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "architecture": card.architecture, "name": card.name})
        card.weights_sha256 = sha256_file(tmp)
    if not card.created:
        card.created = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    write_text_atomic(card_path_for(path), card.to_json())
    return path


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """Load weights + card; refuses a missing card, a hash mismatch or a wrong architecture."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: model file not found")
    if path.suffix != ".safetensors":
        raise ModelError(f"{path.name}: models must be .safetensors files (pickled checkpoints are refused)")
    card = ModelCard.load(card_path_for(path))
    actual = sha256_file(path)
    if not card.weights_sha256 or actual != card.weights_sha256:
        raise ModelError(
            f"{path.name}: the weights do not match their model card (sha256 {actual[:12]}… ≠ "
            f"{(card.weights_sha256 or 'none')[:12]}…): the file was changed or damaged; refusing it"
        )
    net = build_network(card.architecture, card.embedding_dim, card.input_hw)
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{path.name}: not a readable safetensors file ({exc})") from exc
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{path.name}: weights do not fit architecture {card.architecture!r}") from exc
    net.eval().to(device)
    return LoadedModel(net, card, path)


def random_model(architecture: str = "signet-s", seed: int = 0, device: str | torch.device = "cpu") -> LoadedModel:
    """Untrained weights, clearly marked (card.random_init) - used only when no trained model exists."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = build_network(architecture)
    card = ModelCard(name="random-untrained", architecture=architecture, random_init=True,
                     calibration=placeholder_calibration())
    net.eval().to(device)
    return LoadedModel(net, card, None)
