"""GUI entry point: ``sigverify [--reference A [B ...]] [--questioned Q] [--screenshot OUT.png]``.

``--screenshot`` opens the window, runs the given comparison, saves a picture of the whole window
and exits (0 on success, non-zero with a message on failure); it works headless with
``QT_QPA_PLATFORM=offscreen``.

A refused start-up model (``--model`` or the saved one) is replaced by the shipped model with a
warning in the window - except with ``--screenshot --model PATH``: a scripted check never silently
uses another model, so a refused ``--model`` exits at once (code 6, message on stderr).
"""

from __future__ import annotations

import argparse
import os
import sys

#: environment variable with the effect of ``--no-first-run`` (e.g. for screens.sh or a kiosk start script)
NO_FIRST_RUN_ENV = "SIGVERIFY_NO_FIRST_RUN"


def no_first_run(args) -> bool:
    """``--no-first-run`` or ``SIGVERIFY_NO_FIRST_RUN`` set to anything but empty / 0 / no / false."""
    env = os.environ.get(NO_FIRST_RUN_ENV, "").strip().lower()
    return bool(getattr(args, "no_first_run", False)) or env not in ("", "0", "no", "false")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sigverify",
        description="sigverify desktop app: compare a questioned signature with an account holder's reference signatures",
    )
    p.add_argument("--reference", "-r", nargs="+", metavar="PATH", help="reference signature files or folders")
    p.add_argument("--questioned", "-q", metavar="PATH", help="the signature to verify")
    p.add_argument("--model", metavar="PATH", help="model weights (.safetensors); default: the shipped model")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where the model runs (default: settings)")
    p.add_argument("--screenshot", metavar="OUT.png", help="save a screenshot of the window after the comparison and exit")
    p.add_argument("--scale", type=float, default=None, help="UI scale factor, e.g. 2 for 200%% (sets QT_SCALE_FACTOR)")
    p.add_argument("--view", choices=("original", "preprocessed", "overlay"), default=None, help="initial view")
    p.add_argument("--size", default=None, help="window size WxH (default: fit the screen's available area, at most 1280x800)")
    p.add_argument(
        "--no-first-run",
        action="store_true",
        help=f"start straight into the main window on a library where the first-run choice was not made yet "
        f"(screenshots, kiosk demos; also {NO_FIRST_RUN_ENV}=1): runs as the local operator and stores no choice, "
        "a library that requires sign-in still asks for the password",
    )
    p.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the comparison in --screenshot mode")
    return p


def _fail(msg: str, code: int = 2) -> int:
    print(f"sigverify: error: {msg}", file=sys.stderr)
    return code


def audit_warning(parent=None, interactive: bool = True, db_path=None) -> str | None:
    """Check the audit trail at start (issue 14: never silently); a broken chain gets a blocking
    warning naming the first bad record. Returns the problem text, or None when the trail is intact."""
    from sigverify.store.audit import check_audit

    chk = check_audit(db_path)
    if chk.ok:
        return None
    text = (
        "The audit trail of the library failed its integrity check: "
        + "; ".join(p["message"] for p in chk.problems[:3])
        + "\n\nRecording is refused until an administrator has looked at it "
        "(sigverify-cli audit verify shows the details)."
    )
    if interactive:
        audit_warning_box(parent, text).exec()
    return text


def audit_warning_box(parent, text: str):
    """The blocking start-up warning: readable (wrapped, selectable text), answered from the keyboard
    (OK is the default and the escape button: Enter, Space or Esc)."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QMessageBox

    box = QMessageBox(QMessageBox.Icon.Critical, "sigverify - audit trail broken", text, QMessageBox.StandardButton.Ok, parent)
    ok = box.button(QMessageBox.StandardButton.Ok)
    box.setDefaultButton(ok)
    box.setEscapeButton(ok)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.TextSelectableByKeyboard)
    box.setAccessibleName("Audit trail broken")
    return box


def verify_only(training_ui) -> bool:
    """On the verify-only runtime (onnxruntime, no PyTorch) comparing works and fine-tuning cannot:
    its menu entry is disabled and says why. Returns True there."""
    from sigverify.model.lazy import FULL_INSTALL, torch_available

    if torch_available():
        return False
    a = training_ui.actions["finetune"]
    tip = FULL_INSTALL.format(what="fine-tuning")
    a.setEnabled(False)
    a.setText(a.text().rstrip("\u2026") + " (needs the full install)")
    a.setStatusTip(tip)
    a.setToolTip(tip)
    return True


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.scale:
        if args.scale <= 0 or args.scale > 8:
            return _fail("--scale must be between 0 and 8")
        os.environ["QT_SCALE_FACTOR"] = str(args.scale)
    size = None
    if args.size:
        try:
            size = tuple(int(x) for x in args.size.lower().split("x"))
            if len(size) != 2 or min(size) <= 0:
                raise ValueError
        except ValueError:
            return _fail(f"--size must look like 1280x800, not {args.size!r}")
    if args.screenshot and not (args.reference and args.questioned):
        return _fail("--screenshot needs --reference and --questioned")

    from PySide6.QtCore import QCoreApplication, Qt
    from PySide6.QtWidgets import QApplication

    QCoreApplication.setOrganizationName("sigverify")
    QCoreApplication.setApplicationName("sigverify")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    app.setApplicationDisplayName("sigverify")
    from sigverify import __version__

    app.setApplicationVersion(__version__)

    from sigverify.gui.main_window import MainWindow

    # A scripted check (--screenshot) with an explicit --model must not silently use another model.
    strict = bool(args.screenshot and args.model)
    win = MainWindow(model_path=args.model, device=args.device, fallback=not strict)
    from sigverify.gui.library_ui import install_library_ui

    install_library_ui(win)
    from sigverify.gui.models_ui import install_training_ui

    verify_only(install_training_ui(win))  # Model > Fine-tune on my references / Manage models
    audit_problem = audit_warning(win, interactive=not args.screenshot)
    if audit_problem:  # after the dialog the red bar stays: nobody forgets that nothing is recorded
        win.show_error(
            "Audit trail broken — verifications and decisions are not recorded until an administrator "
            "has looked at it (sigverify-cli audit verify)."
        )
        if args.screenshot:
            print(f"sigverify: warning: {audit_problem}", file=sys.stderr)
    from sigverify.gui.signin import install_operator_ui

    try:  # first-run choice + sign-in (scripted --screenshot: local operator or SIGVERIFY_TOKEN)
        if install_operator_ui(win, interactive=not args.screenshot, first_run=not no_first_run(args)) is None:
            win.close()
            return 0  # sign-in cancelled
    except Exception as exc:  # noqa: BLE001 - AccessDenied: not signed in
        win.close()
        return _fail(str(exc), 11)
    if size:
        win.fit_on_show = False
        win.resize(*size)
    if args.view:
        win.set_view_mode(args.view)
    errors: list[str] = []
    win.model_failed.connect(errors.append)
    if args.screenshot:
        win.model_fallback.connect(lambda m: print(f"sigverify: warning: {m}", file=sys.stderr))
    if args.reference:
        win.set_references(args.reference)
    if args.questioned:
        win.set_questioned(args.questioned)
    win.show()

    if not args.screenshot:
        return app.exec()

    # Screenshot mode: wait for the verdict, then grab the window. Nobody is there to decide the case:
    # it stays undecided in the audit log without a question at exit.
    from sigverify.gui.case_controller import LEAVE

    win.case.ask = lambda _text: LEAVE
    ok = win.wait_idle(int(args.timeout * 1000))  # returns at once if the model cannot be loaded
    if win.model_unavailable():
        win.close()
        return _fail("; ".join(errors) or "the model could not be loaded", 6)
    if not ok:
        win.close()
        return _fail(f"the comparison did not finish within {args.timeout:.0f} s", 3)
    if win.result() is None:
        msgs = [m for m in (win.ref_pane.error_text(), win.q_pane.error_text(), *errors) if m]
        win.close()
        return _fail("no verdict: " + ("; ".join(msgs) or "the comparison could not be made"), 4)
    for _ in range(5):
        app.processEvents()
    win.repaint()
    pix = win.grab()
    out = args.screenshot
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    saved = pix.save(out, "PNG", 0)  # quality 0 = strongest PNG compression (lossless)
    win.close()
    app.processEvents()
    if not saved or pix.isNull():
        return _fail(f"could not write the screenshot to {out}", 5)
    print(f"screenshot saved: {out} ({pix.width()}x{pix.height()}) \u2014 verdict: {win.result().decision.verdict.zone}")
    _ = Qt  # keep import for type checkers
    return 0


if __name__ == "__main__":
    sys.exit(main())
