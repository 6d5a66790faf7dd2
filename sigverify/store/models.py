"""The user's saved models (fine-tuned in the wizard or the CLI): list, rename, delete. No Qt.

Each model is ``<user_models_dir()>/<stem>.safetensors`` plus its card ``<stem>.json``. Only files in
the user model folder can be renamed or deleted; the shipped model is listed (read-only) but never
touched.

Crash safety: a model "exists" when its ``.safetensors`` file exists, and that file only ever appears
or disappears by one atomic rename / unlink. Saving (``sigverify.model.weights.save_model``) stages the
new weights as ``.NAME.safetensors.new`` and commits with the card; ``list_models`` first completes any
save interrupted after that commit (``recover_model``). Rename writes the new card first, then renames the
weights, then removes the old card; delete unlinks the weights first, then the card. An interrupted
step leaves at most an orphan card, which :func:`list_models` ignores and :func:`clean_orphans` removes.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

from sigverify.errors import DataError, ModelError


@dataclass
class SavedModel:
    path: Path
    card: object | None  # ModelCard, or None when the card could not be read
    shipped: bool
    error: str | None = None
    size: int = 0
    modified: float = 0.0

    @property
    def name(self) -> str:
        return self.card.name if self.card is not None else self.path.stem

    @property
    def created(self) -> str:
        if self.card is not None and getattr(self.card, "created", ""):
            return self.card.created
        return _dt.datetime.fromtimestamp(self.modified).replace(microsecond=0).isoformat() if self.modified else ""

    def summary(self) -> dict:
        """Key facts for a table row: base model, data, before/after EER on held-out writers."""
        c = self.card
        out = {
            "name": self.name,
            "file": self.path.name,
            "shipped": self.shipped,
            "created": self.created,
            "base_model": getattr(c, "base_model", None) if c else None,
            "error": self.error,
        }
        if c is not None:
            tr = c.training or {}
            data = tr.get("data") if isinstance(tr.get("data"), dict) else {}
            out["writers"] = data.get("writers")
            out["images"] = data.get("images")
            val = (c.metrics or {}).get("validation") or {}
            b, a = val.get("before") or {}, val.get("after") or {}
            out["eer_before"] = b.get("eer")
            out["eer_after"] = a.get("eer")
            out["eer_random_before"] = b.get("eer_random")
            out["eer_random_after"] = a.get("eer_random")
            if out["eer_after"] is None:
                test = (c.metrics or {}).get("test") or {}
                first = test.get("all") or (next(iter(test.values())) if test else {})
                if isinstance(first, dict):  # a trained (not fine-tuned) model: its test-writer metrics
                    out["eer_after"] = first.get("eer")
                    out["eer_random_after"] = first.get("eer_random")
        return out


def models_dir() -> Path:
    from sigverify.paths import user_models_dir

    return user_models_dir()


def _read(path: Path, shipped: bool) -> SavedModel:
    from sigverify.model.card import ModelCard, card_path_for

    st = path.stat()
    try:
        card = ModelCard.load(card_path_for(path))
        err = None
    except ModelError as exc:
        card, err = None, str(exc)
    return SavedModel(path, card, shipped, err, st.st_size, st.st_mtime)


def list_models(include_shipped: bool = True) -> list[SavedModel]:
    """The shipped model (if present and ``include_shipped``) first, then user models, newest first."""
    from sigverify.paths import default_model_path

    out: list[SavedModel] = []
    if include_shipped:
        p = default_model_path()
        if p.exists():
            out.append(_read(p, True))
    d = models_dir()
    if d.is_dir():
        from sigverify.model.weights import recover_model

        for staged in d.glob(".*.safetensors.new"):  # a save interrupted after its commit point
            recover_model(staged.with_name(staged.name[1 : -len(".new")]))
        user = [_read(p, False) for p in d.glob("*.safetensors") if p.is_file() and not p.name.startswith(".")]
        user.sort(key=lambda m: m.modified, reverse=True)
        out += user
    return out


def _is_user_model(path: str | os.PathLike) -> Path:
    """Resolve ``path`` and refuse anything outside the user model folder (the shipped model above all)."""
    from sigverify.paths import default_model_path

    p = Path(path).resolve()
    d = models_dir().resolve()
    try:
        shipped = default_model_path().resolve()
    except OSError:
        shipped = None
    if shipped is not None and p == shipped:
        raise ModelError("the shipped model cannot be renamed or deleted")
    if p.parent != d:
        raise ModelError(f"{p.name} is not in the user model folder ({d}); only saved models can be changed")
    if p.suffix != ".safetensors" or not p.exists():
        raise ModelError(f"{p.name}: no such saved model")
    return p


def safe_stem(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", name.strip()).strip("-.")
    return stem[:80]


def rename_model(path: str | os.PathLike, new_name: str) -> Path:
    """Give a saved model a new name (card ``name`` and file name). Returns the new weights path."""
    from sigverify.atomic import write_text_atomic
    from sigverify.model.card import ModelCard, card_path_for

    p = _is_user_model(path)
    new_name = new_name.strip()
    stem = safe_stem(new_name)
    if not stem:
        raise DataError("the new name must contain letters or digits")
    new = p.with_name(f"{stem}.safetensors")
    card = ModelCard.load(card_path_for(p))
    card.name = new_name
    if new == p:
        write_text_atomic(card_path_for(p), card.to_json())
        return p
    if new.exists() or card_path_for(new).exists():
        raise DataError(f"a model named {new.name} already exists; choose another name")
    write_text_atomic(card_path_for(new), card.to_json())  # 1. new card (an orphan until step 2)
    try:
        os.replace(p, new)  # 2. the weights move in one atomic step
    except OSError:
        card_path_for(new).unlink(missing_ok=True)
        raise
    card_path_for(p).unlink(missing_ok=True)  # 3. old card
    return new


def delete_model(path: str | os.PathLike) -> None:
    """Delete a saved model (weights first - it is gone from the list at once - then its card)."""
    from sigverify.model.card import card_path_for
    from sigverify.model.weights import pending_path

    p = _is_user_model(path)
    p.unlink()
    card_path_for(p).unlink(missing_ok=True)
    pending_path(p).unlink(missing_ok=True)


def clean_orphans() -> list[Path]:
    """Remove cards whose weights are gone (left by an interrupted rename / delete)."""
    d = models_dir()
    removed = []
    if d.is_dir():
        for c in d.glob("*.json"):
            if not c.with_suffix(".safetensors").exists():
                try:
                    import json

                    if json.loads(c.read_text(encoding="utf-8")).get("format", "").startswith("sigverify-model-card"):
                        c.unlink()
                        removed.append(c)
                except (OSError, ValueError, AttributeError):
                    pass
    return removed


__all__ = ["SavedModel", "list_models", "rename_model", "delete_model", "clean_orphans", "models_dir", "safe_stem"]
