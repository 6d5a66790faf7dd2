"""PySide6 desktop front end of sigverify.

Qt is imported only inside this package; the GUI wires widgets to the Qt-free core
(:class:`sigverify.verify.service.Verifier`). Entry point: :func:`sigverify.gui.app.main`.
Public hooks for other features live on :class:`sigverify.gui.main_window.MainWindow`
(see docs/gui.md).
"""
