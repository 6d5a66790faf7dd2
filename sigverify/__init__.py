"""sigverify: offline signature verification (Qt-free core + PySide6 GUI + CLI)."""

__version__ = "0.1.0"
