"""Customer reference library and append-only audit trail (SQLite, no Qt)."""

from sigverify.store.audit import DECISIONS, AuditLog, AuditRecord, Decision, default_operator
from sigverify.store.library import (
    Customer,
    CustomerStatus,
    EnrolReport,
    Library,
    LibraryVerification,
    Reference,
    RefreshReport,
    default_db_path,
    refresh_embeddings,
)

__all__ = [
    "Library",
    "Customer",
    "Reference",
    "EnrolReport",
    "RefreshReport",
    "CustomerStatus",
    "LibraryVerification",
    "AuditLog",
    "AuditRecord",
    "Decision",
    "DECISIONS",
    "default_operator",
    "default_db_path",
    "refresh_embeddings",
]
