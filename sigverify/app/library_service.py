"""Enrol, refresh and verify against the customer library: what the GUI's library controller and the
``sigverify-cli library`` commands both call (no Qt).

``store.Library`` keeps customers, specimens, cached embeddings and the audit tables; this service adds
the application's rules on top: folders expand the same way everywhere, a verification is a ``Case``
decided by ``case.decide`` and recorded once (a re-run of the same case appends nothing).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Iterable

import numpy as np

from sigverify.app.case import Case, build_case, record_case
from sigverify.app.session import Session
from sigverify.errors import SigverifyError
from sigverify.progress import Progress, ShouldStop
from sigverify.store.library import CustomerStatus, EnrolReport, Library, RefreshReport, signature_source
from sigverify.verify.service import Signature, Verifier


class LibraryService:
    """``library`` + the session's verifier. ``session`` may be a ``Session`` or a bare ``Verifier``."""

    def __init__(self, library: Library, session: Session | Verifier):
        self.library = library
        self.session = session

    @property
    def verifier(self) -> Verifier:
        return self.session.verifier if isinstance(self.session, Session) else self.session

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
        """Enrol image files (folders expand to their images) for ``account_id``; embeddings cached at once."""
        from sigverify.imaging.files import expand_images

        return self.library.enrol(
            account_id,
            expand_images(paths),
            self.verifier,
            name=name,
            notes=notes,
            expires=expires,
            progress=progress,
            should_stop=should_stop,
        )

    def refresh(self, progress: Progress | None = None, should_stop: ShouldStop | None = None) -> RefreshReport:
        """Compute the embeddings missing for the session's model (after a model switch)."""
        return self.library.refresh_embeddings(self.verifier, progress, should_stop)

    def stale_count(self) -> int:
        return self.library.stale_count(self.verifier)

    def status(self, account_id: str) -> CustomerStatus:
        return self.library.customer_status(account_id, self.verifier)

    def reference_signatures(self, account_id: str, keep_stages: bool = True) -> list[Signature]:
        """The customer's active specimens as ``Signature``s with ``reference_id`` and ``account_id`` set
        (with preprocessing stages for the GUI's panes)."""
        return self.library.load_signatures(account_id, self.verifier, keep_stages)

    def _reference_embeddings(self, account_id: str) -> list[Signature]:
        """Active specimens as embedding-only ``Signature``s (no decoding: the cached embeddings)."""
        self.library.require_customer(account_id)
        ids, embs = self.library.reference_embeddings(account_id, self.verifier)
        if not ids:
            raise SigverifyError(f"customer {account_id!r} has no active reference signatures: enrol some first")
        names = {r.id: r.file_name for r in self.library.active_references(account_id)}
        return [
            Signature(
                signature_source(account_id, rid, names.get(rid, "")),
                None,
                np.asarray(e),  # type: ignore[arg-type]
                reference_id=int(rid),
                account_id=account_id,
            )
            for rid, e in zip(ids, embs)
        ]

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
        refs = references if references is not None else self._reference_embeddings(account_id)
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


__all__ = ["LibraryService"]
