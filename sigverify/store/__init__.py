"""Customer reference library and append-only audit trail (SQLite, no Qt): the store is only SQL.
Enrolment, embeddings and verification are ``sigverify.app.library_service.LibraryService``."""

from sigverify.store.audit import DECISIONS, AuditLog, AuditRecord, Decision, default_operator
from sigverify.store.library import Customer, Library, Reference, SpecimenFile, default_db_path

__all__ = [
    "Library",
    "Customer",
    "Reference",
    "SpecimenFile",
    "AuditLog",
    "AuditRecord",
    "Decision",
    "DECISIONS",
    "default_operator",
    "default_db_path",
]
