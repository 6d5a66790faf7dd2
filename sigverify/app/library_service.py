"""Enrol, refresh and verify against the customer library: what the GUI's library controller, the
``sigverify-cli library`` commands and batch runs call (no Qt).

``store.Library`` is only the SQL store (customers, specimens, cached embedding rows, batch results, the
audit tables). Everything else about the library happens here, once:

- reading specimen files (regular files, size cap) and checking them (they decode and carry ink);
- the embedding cache: specimens embedded at enrolment, missing or stale ones computed when a customer
  is used or on ``refresh`` (after a model switch);
- a customer's thresholds (``status``) and cases: a verification is a ``Case`` decided by
  ``case.decide`` (the one decision path) with the customer's decision options (a supervisor's
  threshold override) and recorded once (a re-run of the same case appends nothing).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Sequence

import numpy as np

from sigverify.app.case import Case, build_case, record_case
from sigverify.app.session import Session
from sigverify.errors import Cancelled, SigverifyError
from sigverify.hashing import sha256_bytes
from sigverify.imaging.load import decode_and_preprocess, read_image_file
from sigverify.progress import Progress, ShouldStop
from sigverify.safetext import display_name
from sigverify.store.library import Library, SpecimenFile
from sigverify.verify.service import Signature, SpecimenRef, Verifier

#: largest specimen / questioned file accepted (bytes); the image loader also limits the pixel count
MAX_IMAGE_BYTES = 30 * 1024 * 1024


def read_specimen_file(path: str | os.PathLike) -> bytes:
    """A specimen / questioned file's bytes: regular files only (no FIFO, device or folder), at most
    ``MAX_IMAGE_BYTES``, checked before reading (see ``sigverify.imaging.load.read_image_file``)."""
    return read_image_file(path, MAX_IMAGE_BYTES)


@dataclass
class EnrolReport:
    account_id: str
    added: list[int] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, message)

    def to_dict(self) -> dict:
        return {
            "account_id": self.account_id,
            "added_reference_ids": self.added,
            "errors": [{"path": p, "error": e} for p, e in self.errors],
        }


@dataclass
class RefreshReport:
    model_id: str
    computed: int = 0
    already_cached: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (reference id, message)

    def to_dict(self) -> dict:
        return {
            "model_id": self.model_id,
            "computed": self.computed,
            "already_cached": self.already_cached,
            "errors": [{"reference_id": i, "error": e} for i, e in self.errors],
        }


@dataclass
class CustomerStatus:
    """A customer's reference set under one model: the per-customer thresholds (a supervisor's
    override included) and flags."""

    account_id: str
    model_id: str
    n_active: int
    reference_spread: float | None
    person_scale: float
    threshold_accept: float
    threshold_reject: float
    needs_more_specimens: bool
    warnings: list[str] = field(default_factory=list)
    threshold_override: float = 1.0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class LibraryService:
    """``library`` + the session's verifier. ``session`` may be a ``Session``, a bare ``Verifier``, or
    None (enrolment only: files are checked and stored, embeddings computed when first used)."""

    def __init__(self, library: Library, session: Session | Verifier | None):
        self.library = library
        self.session = session

    @property
    def verifier(self) -> Verifier:
        v = self.session.verifier if isinstance(self.session, Session) else self.session
        if v is None:
            raise SigverifyError("no model is loaded: open a model before using the library's embeddings")
        return v

    @property
    def has_model(self) -> bool:
        return self.session is not None

    # ---- specimens ------------------------------------------------------------------------------
    def enrol(
        self,
        account_id: str,
        paths: Iterable[str | os.PathLike],
        *,
        name: str | None = None,
        notes: str | None = None,
        expires: str | datetime | None = None,
        progress: Progress | None = None,
        should_stop: ShouldStop | None = None,
    ) -> EnrolReport:
        """Enrol image files (folders expand to their images) as specimens of ``account_id`` (created
        if new). Each file is checked (regular file, decodes, has ink); bad files and duplicates are
        reported and skipped. With a model the embeddings are computed and cached at once. The
        customer and every good specimen are stored in one transaction; a new customer with nothing
        usable is never created."""
        from sigverify.imaging.files import expand_images
        from sigverify.store.library import parse_time

        account_id = (account_id or "").strip()
        if not account_id:
            raise SigverifyError("an account id is required")
        parse_time(expires)  # a bad date is refused before any file is read
        files = expand_images(paths)
        v = self.verifier if self.has_model else None
        cfg = v.embedder.preprocess_config if v is not None else None
        is_new = self.library.get_customer(account_id) is None
        have = self.library.kept_digests(account_id)
        rep = EnrolReport(account_id)
        staged: list[SpecimenFile] = []
        inputs: list[np.ndarray] = []
        for i, f in enumerate(files):
            if should_stop and should_stop():
                raise Cancelled("cancelled")
            name_ = display_name(os.path.basename(f))  # stored and printed: always valid UTF-8
            try:
                data = read_specimen_file(f)
                digest = sha256_bytes(data)
                if digest in have:
                    if have[digest] < 0:
                        raise SigverifyError(f"{name_}: the same image is given twice in this enrolment")
                    raise SigverifyError(f"{name_}: already enrolled for {account_id} (reference #{have[digest]})")
                inputs.append(decode_and_preprocess(data, name_, cfg).input)
                staged.append(SpecimenFile(name_, data, digest))
                have[digest] = -1
            except SigverifyError as exc:
                rep.errors.append((display_name(f), str(exc)))
            if progress:
                progress(0.8 * (i + 1) / max(len(files), 1), f"checked {name_}")
        embs = v.embedder.embed_arrays(inputs) if v is not None and staged else None
        if staged or not is_new:
            rep.added = self.library.add_specimens(
                account_id,
                staged,
                name=name,
                notes=notes,
                expires=expires,
                model_id=v.model.model_id if embs is not None else None,
                embeddings=list(embs) if embs is not None else None,
            )
        if progress:
            progress(1.0, f"enrolled {len(rep.added)} reference(s) for {account_id}")
        return rep

    # ---- the embedding cache --------------------------------------------------------------------
    def _embed(
        self,
        ref_ids: Sequence[int],
        report: RefreshReport | None = None,
        progress: Progress | None = None,
        should_stop: ShouldStop | None = None,
    ) -> dict[int, np.ndarray]:
        """Decode, preprocess and embed the given specimens in batches, caching each batch (one
        transaction); a specimen that no longer decodes is reported in ``report``."""
        v = self.verifier
        cfg, model_id = v.embedder.preprocess_config, v.model.model_id
        bs = max(1, int(getattr(v.embedder, "batch_size", 64)))
        out: dict[int, np.ndarray] = {}
        total, done = len(ref_ids), 0
        for j in range(0, total, bs):
            if should_stop and should_stop():
                raise Cancelled("cancelled")
            chunk = list(ref_ids[j : j + bs])
            ok_ids, inputs, hashes = [], [], []
            for rid, file_name, data in self.library.specimen_images(chunk):
                try:
                    inputs.append(decode_and_preprocess(data, file_name, cfg).input)
                    ok_ids.append(rid)
                    hashes.append(sha256_bytes(data))  # the bytes actually embedded
                except SigverifyError as exc:
                    if report is not None:
                        report.errors.append((rid, str(exc)))
            if inputs:
                embs = [np.asarray(e, np.float32) for e in v.embedder.embed_arrays(inputs)]
                self.library.put_embeddings(model_id, zip(ok_ids, embs, hashes))
                out.update(zip(ok_ids, embs))
            done += len(chunk)
            if progress:
                progress(done / max(total, 1), f"embedded {done}/{total} reference(s) for {model_id}")
        return out

    def reference_embeddings(self, account_id: str) -> tuple[list[int], np.ndarray]:
        """Active specimen ids of a customer and their (N, D) embeddings under the session's model
        (missing ones are computed and cached now)."""
        v = self.verifier
        ids = [r.id for r in self.library.active_references(account_id)]
        got = self.library.cached_embeddings(ids, v.model.model_id)
        missing = [i for i in ids if i not in got]
        if missing:
            got.update(self._embed(missing))
        ids = [i for i in ids if i in got]
        return ids, (np.stack([got[i] for i in ids]) if ids else np.zeros((0, v.card.embedding_dim), np.float32))

    def customer_references(self, account_id: str) -> tuple[list[int], np.ndarray] | str:
        """``reference_embeddings`` for a batch row: the ids and embeddings, or the error text the row
        shows (unknown customer, no active specimens, a store problem)."""
        try:
            if self.library.get_customer(account_id) is None:
                return f"unknown customer {account_id!r}: not in the reference library"
            ids, embs = self.reference_embeddings(account_id)
            return (ids, embs) if ids else f"customer {account_id!r} has no active reference signatures"
        except SigverifyError as exc:
            return str(exc)

    def refresh(self, progress: Progress | None = None, should_stop: ShouldStop | None = None) -> RefreshReport:
        """Compute the embeddings missing for the session's model over every kept specimen (run it
        when the active model changes). Finished batches are committed; cancelling raises
        ``Cancelled`` and keeps them."""
        model_id = self.verifier.model.model_id
        all_ids = self.library.kept_reference_ids()
        have = set(self.library.cached_embeddings(all_ids, model_id))
        todo = [i for i in all_ids if i not in have]
        rep = RefreshReport(model_id, already_cached=len(have))
        if progress:
            progress(0.0, f"{len(todo)} reference(s) to embed for {model_id}")
        rep.computed = len(self._embed(todo, rep, progress, should_stop))
        if progress:
            progress(1.0, f"embeddings up to date for {model_id} ({rep.computed} computed)")
        return rep

    def stale_count(self) -> int:
        """Kept specimens without an embedding for the session's model."""
        ids = self.library.kept_reference_ids()
        return len(ids) - len(self.library.cached_embeddings(ids, self.verifier.model.model_id))

    # ---- a customer's references ----------------------------------------------------------------
    def status(self, account_id: str) -> CustomerStatus:
        """Per-customer thresholds from the spread of the customer's own references, times a
        supervisor's override when one is in force (what a verification applies)."""
        from sigverify.verify.reference import MIN_REFS_FOR_ADAPTATION, person_scale

        v = self.verifier
        self.library.require_customer(account_id)
        ids, embs = self.reference_embeddings(account_id)
        cal = v.calibration
        if v.adapt_to_person and len(ids):
            scale, spread = person_scale(embs, v.metric, cal)
        else:
            scale, spread = 1.0, None
        override = float(self.case_options(account_id).get("threshold_scale", 1.0))
        warnings = []
        if len(ids) == 0:
            warnings.append("no active reference signature: enrol specimens before verifying")
        elif len(ids) < MIN_REFS_FOR_ADAPTATION:
            warnings.append(
                f"only {len(ids)} active reference signature(s): add more specimens "
                f"(at least {MIN_REFS_FOR_ADAPTATION}) for a per-customer threshold"
            )
        if override != 1.0:
            warnings.append(f"supervisor threshold override x{override:.2f} for this customer")
        return CustomerStatus(
            account_id,
            v.model.model_id,
            len(ids),
            spread,
            float(scale),
            float(cal.accept * scale * override),
            float(cal.reject * scale * override),
            len(ids) < MIN_REFS_FOR_ADAPTATION,
            warnings,
            override,
        )

    def reference_signatures(self, account_id: str, keep_stages: bool = True) -> list[Signature]:
        """The customer's active specimens as ``Signature``s carrying their ``SpecimenRef`` (with
        preprocessing stages for the GUI's panes)."""
        self.library.require_customer(account_id)
        ids, embs = self.reference_embeddings(account_id)
        cfg = self.verifier.embedder.preprocess_config
        images = {rid: (file_name, data) for rid, file_name, data in self.library.specimen_images(ids)}
        sigs = []
        for rid, e in zip(ids, embs):
            file_name, data = images[rid]
            ref = SpecimenRef(account_id, rid, file_name)
            pre = decode_and_preprocess(data, file_name, cfg, keep_stages)
            sigs.append(Signature(ref.source, pre, e, specimen=ref))
        return sigs

    def specimens(self, account_id: str) -> list[Signature]:
        """Active specimens as embedding-only ``Signature``s (no decoding: the cached embeddings)."""
        self.library.require_customer(account_id)
        ids, embs = self.reference_embeddings(account_id)
        if not ids:
            raise SigverifyError(f"customer {account_id!r} has no active reference signatures: enrol some first")
        names = {r.id: r.file_name for r in self.library.active_references(account_id)}
        refs = [SpecimenRef(account_id, rid, names.get(rid, "")) for rid in ids]
        return [Signature(r.source, None, np.asarray(e), specimen=r) for r, e in zip(refs, embs)]

    # ---- cases ----------------------------------------------------------------------------------
    def case_options(self, account_id: str | None) -> dict:
        """Decision options of a customer's case (a supervisor's threshold override, when in force)."""
        from sigverify.app.operators import case_options

        return case_options(self.library, account_id) if account_id else {}

    def build(
        self,
        account_id: str,
        questioned: str | os.PathLike | Signature,
        references: list[Signature] | None = None,
        *,
        keep_stages: bool = False,
        **options,
    ) -> Case:
        """The customer's case, decided with the customer's decision options; nothing recorded.
        ``references``: the signatures shown in the GUI's Reference pane (default: the cached specimens)."""
        refs = references if references is not None else self.specimens(account_id)
        options = {**self.case_options(account_id), **options}
        return build_case(self.verifier, questioned, refs, customer_id=account_id, keep_stages=keep_stages, **options)

    def verify(
        self,
        account_id: str,
        questioned: str | os.PathLike | Signature,
        *,
        record: bool = True,
        source: str = "cli",
        operator: str | None = None,
        keep_stages: bool = False,
        **options,
    ) -> Case:
        """Questioned signature against the customer's active specimens; recorded once in the audit log
        (``case.rerun`` when the same case was recorded before) unless ``record`` is False."""
        case = self.build(account_id, questioned, keep_stages=keep_stages, **options)
        if record:
            record_case(case, self.library, verifier=self.verifier, source=source, operator=operator)
        return case

    def record(self, case: Case, *, source: str = "gui", operator: str | None = None) -> Case:
        """Record a case built elsewhere (the GUI builds it from the panes' signatures)."""
        return record_case(case, self.library, verifier=self.verifier, source=source, operator=operator)

    def record_decision(
        self, audit_id: int, decision: str, reason: str = "", *, source: str = "clerk", operator: str | None = None
    ) -> int:
        """The clerk's final decision for a recorded case (an appended row; overrides are flagged)."""
        return self.library.audit.append_decision(audit_id, decision, reason, operator=operator, source=source)


__all__ = ["LibraryService", "EnrolReport", "RefreshReport", "CustomerStatus", "MAX_IMAGE_BYTES", "read_specimen_file"]
