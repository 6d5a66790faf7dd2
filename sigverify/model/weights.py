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


def pending_path(path: str | os.PathLike) -> Path:
    """Where ``save_model`` stages new weights beside ``path`` until the new card commits them."""
    p = Path(path)
    return p.with_name(f".{p.name}.new")


def _fsync_dir(d: Path) -> None:
    import contextlib

    with contextlib.suppress(OSError):
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def recover_model(path: str | os.PathLike) -> bool:
    """Finish a save that was interrupted after its commit point. ``save_model`` writes the new weights
    to ``pending_path`` (fsync), then the new card (atomic rename: the commit point), then renames the
    weights into place. If a crash hit between the last two steps, the card names the staged weights'
    hash: they are moved into place now (True). Staged weights the card does not name belong to a save
    that never committed; the old pair stands and they are removed once stale (an hour)."""
    import time

    path = Path(path)
    new = pending_path(path)
    if not new.is_file():
        return False
    try:
        card = ModelCard.load(card_path_for(path), check_seal=False)
    except ModelError:
        card = None
    if card is not None and card.weights_sha256 and sha256_file(new) == card.weights_sha256:
        try:
            os.replace(new, path)
        except FileNotFoundError:  # a concurrent recovery (or the saver itself) got there first
            return path.exists()
        _fsync_dir(path.parent)
        return True
    try:
        if time.time() - new.stat().st_mtime > 3600:
            new.unlink()
    except OSError:
        pass
    return False


def save_model(network: SigNet, card: ModelCard, path: str | os.PathLike) -> Path:
    """Write ``path`` (.safetensors) and its card (.json) so that a crash at any point leaves either
    the old pair or the new pair (see ``recover_model``); returns the weights path.

    1. new weights -> ``.NAME.safetensors.new`` (fsync); the card gets their hash and is sealed;
    2. new card -> ``NAME.json`` by one atomic rename: the commit point;
    3. staged weights -> ``NAME.safetensors`` by one atomic rename.
    A failure before 2 (a full disk, an exception) leaves the old pair untouched and removes the staged
    file; a crash between 2 and 3 is completed by the next ``load_model`` / ``list_models``."""
    from safetensors.torch import save_file

    from sigverify.atomic import check_output_path

    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    path = check_output_path(path, "model file")
    check_output_path(card_path_for(path), "model card")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in network.state_dict().items()}
    new = pending_path(path)
    try:
        with atomic_path(new) as tmp:
            save_file(state, str(tmp), metadata={"format": "pt", "architecture": card.architecture, "name": card.name})
            digest = sha256_file(tmp)
        card.weights_sha256 = digest
        if not card.created:
            card.created = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
        write_text_atomic(card_path_for(path), card.to_json())  # the commit point
    except BaseException:
        import contextlib

        with contextlib.suppress(OSError):
            new.unlink()
        raise
    try:
        os.replace(new, path)
    except FileNotFoundError:  # completed by a concurrent recover_model
        if not path.exists() or sha256_file(path) != digest:
            raise
    _fsync_dir(path.parent)
    return path


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """Load weights + card; refuses a missing card, a hash mismatch or a wrong architecture."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if path.suffix == ".safetensors":
        recover_model(path)  # finish a save interrupted after its commit point
    if not path.exists():
        raise ModelError(f"{path}: model file not found")
    if path.suffix != ".safetensors":
        raise ModelError(f"{path.name}: models must be .safetensors files (pickled checkpoints are refused)")
    if not path.is_file():
        raise ModelError(f"{path.name}: not a regular file")
    card = ModelCard.load(card_path_for(path))  # every value validated, seal checked
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
    card = ModelCard(name="random-untrained", architecture=architecture, random_init=True, calibration=placeholder_calibration())
    net.eval().to(device)
    return LoadedModel(net, card, None)
