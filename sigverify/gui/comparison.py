"""The comparison controller: the model session, loading the Reference and Questioned signatures in the
background, verifying, and the verdict-changing settings. It declares the Model and Settings menus.

The model is opened with ``sigverify.app.session.open_session`` (the same as the CLI): a GPU that is
not there or a metric the model is not calibrated for falls back with a typed ``Notice``, shown in the
status bar. Each finished comparison goes to the :class:`~sigverify.gui.case_controller.CaseController`
(one case -> one record).

Settings that change a verdict (distance metric, per-person thresholds, device/model) ask for a
confirmation while a case is on screen and leave a note in the log and the status bar; the re-run that
follows is shown as a re-run of the same case, never recorded twice.
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QActionGroup
from PySide6.QtWidgets import QFileDialog, QMessageBox

from sigverify.gui.jobs import JobRunner, error_text
from sigverify.gui.panes import expand_paths
from sigverify.gui.settings import DEVICES, METRICS, POLICIES

log = logging.getLogger(__name__)

REF, QUE, MODEL = "reference", "questioned", "model"
#: what ``confirm_verdict_change`` is told -> the setting key of ``sigverify.app.operators.VERDICT_SETTINGS``
SETTING_KEYS = {
    "the model": "active_model",
    "the distance metric": "metric",
    "the per-person thresholds": "adapt_to_person",
    "the threshold policy": "threshold_policy",
}
#: the decision policies in the Settings menu (offered only where the model card calibrates them)
POLICY_TEXT = {
    "writer": "&Writer-dependent (specimens vs. cohort)",
    "mean": "&Mean distance to the specimens",
    "min": "&Closest specimen (min)",
}
DEVICE_TEXT = {"auto": "&Automatic (GPU if available)", "cpu": "&CPU", "cuda": "&GPU (CUDA)"}


def _confirm(parent, title: str, text: str) -> bool:
    return (
        QMessageBox.question(
            parent, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No
        )
        == QMessageBox.StandardButton.Yes
    )


class ComparisonController(QObject):
    def __init__(self, window, model_path: str | None, device: str | None, fallback: bool):
        super().__init__(window)
        self.w = window
        self.settings = window.settings
        self._model_override = model_path  # from --model: used now, not persisted
        self._device_override = device
        self._fallback = fallback
        self._model_unavailable = False
        self._verifier = None
        self._pending: dict[str, Callable[[], None]] = {}
        self._ref_skipped: list[tuple[str, str]] = []
        self._ref_label = ""
        self._result = None
        self._t_request: float | None = None
        #: asked before a verdict-changing setting changes: ``confirm(title, text) -> bool`` (tests replace it)
        self.confirm: Callable[[str, str], bool] = lambda title, text: _confirm(self.w, title, text)
        self.setting_notes: list[str] = []  # verdict-changing setting changes of this session, in words
        self.setting_note_ids: list[int] = []  # their audit-trail notes (sigverify.app.settings_audit)
        self.jobs = JobRunner(self)
        self.jobs.busy_changed.connect(self._busy_changed)
        self.jobs.unhandled_error.connect(lambda slot, exc: self.w.show_error(f"{slot}: {error_text(exc)}"))

    # ============================================================================ menus
    def build_menus(self) -> None:
        w = self.w
        m = w.add_menu("&Model", key="model")
        self.act_open_model = w.make_action(
            "&Open model\u2026", self.open_model_dialog, "Ctrl+M", "Load a trained or fine-tuned model (.safetensors)"
        )
        self.act_default_model = w.make_action("Use &default model", self.use_default_model)
        self.act_model_info = w.make_action(
            "Model &info\u2026", w.show_model_info, "Ctrl+I", "Show the model card: training data, accuracy, thresholds"
        )
        for a in (self.act_open_model, self.act_default_model, self.act_model_info):
            m.addAction(a)
        m = w.add_menu("&Settings", key="settings")
        dm = m.addMenu("&Device")
        self.device_group = QActionGroup(self)
        self.device_actions = {}
        for d in DEVICES:
            a = w.make_action(DEVICE_TEXT[d], lambda _c=False, d=d: self.set_device(d), checkable=True)
            self.device_group.addAction(a)
            dm.addAction(a)
            self.device_actions[d] = a
        mm = m.addMenu("Distance &metric")
        self.metric_group = QActionGroup(self)
        self.metric_actions = {}
        for x in METRICS:
            a = w.make_action(f"&{x.capitalize()}", lambda _c=False, x=x: self.set_metric(x), checkable=True)
            self.metric_group.addAction(a)
            mm.addAction(a)
            self.metric_actions[x] = a
        pm = m.addMenu("&Threshold policy")
        # Only policies the model card has thresholds calibrated for can be chosen (Verifier.policies): an
        # older "closest reference (min)" kept the mean's thresholds (12/108 skilled forgeries shown as
        # Genuine on unseen writers). The card's default policy is marked.
        self.policy_group = QActionGroup(w)
        self.policy_actions = {}
        for x in POLICIES:
            a = w.make_action(POLICY_TEXT[x], lambda _c=False, x=x: self.set_policy(x), checkable=True)
            self.policy_group.addAction(a)
            pm.addAction(a)
            self.policy_actions[x] = a
        pm.addSeparator()
        self.act_adapt = w.make_action("&Adapt thresholds to the person (3+ references)", self.set_adapt, checkable=True)
        pm.addAction(self.act_adapt)
        self.sync_settings_menu()

    def sync_settings_menu(self) -> None:
        s = self.settings
        dev = self._device_override or s.device
        self.device_actions[dev if dev in DEVICES else "auto"].setChecked(True)
        torch = sys.modules.get("torch")  # imported by the model-loading worker; never on the GUI thread
        if torch is not None:
            self.device_actions["cuda"].setEnabled(bool(torch.cuda.is_available()))
        metric = self._verifier.metric if self._verifier is not None else (s.metric or "euclidean")
        self.metric_actions.get(metric, self.metric_actions["euclidean"]).setChecked(True)
        self.act_adapt.setChecked(bool(s.adapt_to_person))
        v = self._verifier
        offered = v.policies if v is not None else ()
        default = v.card.default_policy if v is not None else ""
        for x, a in getattr(self, "policy_actions", {}).items():
            a.setEnabled(x in offered)
            a.setVisible(v is None or x in offered)  # a policy without calibrated thresholds is not offered
            a.setText(POLICY_TEXT[x] + (" — the model's default" if x == default else ""))
            a.setChecked(v is not None and v.aggregate == x)

    # ============================================================================ model session
    def start(self, verifier=None) -> None:
        if verifier is not None:
            self.set_verifier(verifier)
        else:
            self.load_model(self._model_override or self.settings.model_path or None, fallback=self._fallback)

    def current_verifier(self):
        return self._verifier

    def model_unavailable(self) -> bool:
        return self._verifier is None and self._model_unavailable and not self.jobs.is_busy(MODEL)

    def set_verifier(self, verifier) -> None:
        w = self.w
        self._verifier = verifier
        self._pending.pop(MODEL, None)
        self._model_unavailable = False
        w.model_error.hide()
        w.model_warning.hide()
        w.update_model_ui()
        self.sync_settings_menu()
        if self._result is None:
            w.verdict_panel.show_empty(verifier.calibration)  # the active model's thresholds from the start
        w.verifier_changed.emit(verifier)
        self._reembed()
        for key in (REF, QUE):
            fn = self._pending.pop(key, None)
            if fn:
                fn()

    def load_model(self, path: str | None, persist: bool = False, fallback: bool = False) -> int:
        """Open ``path`` (None: the shipped model) with ``open_session`` in a worker, then ``set_verifier``.
        With ``fallback`` (start-up only) a refused model is replaced by the shipped one (or random
        weights) and the notice shown; otherwise a refusal fails and the current model stays."""
        w = self.w
        s = self.settings
        device = self._device_override or s.device
        metric, adapt = s.metric or None, s.adapt_to_person
        if self._verifier is None:
            w.model_label.setText("Model: loading\u2026")
        w.statusBar().showMessage(f"Loading model {Path(path).name if path else '(default)'}\u2026")

        def fn(progress, stop):
            from sigverify.app.session import open_session

            # the chosen policy, else the card's (as the CLI); one the model has no thresholds for falls
            # back to the card's default with a notice
            return open_session(path, device, metric, s.policy or None, adapt, model_fallback=fallback)

        def done(session) -> None:
            from sigverify.app.session import MODEL_FALLBACK

            if persist:
                self.settings.model_path = path or ""
                self.settings.save()
            self.set_verifier(session.verifier)
            msgs = []
            for n in session.notices:
                if n.kind == MODEL_FALLBACK:  # non-modal: an amber bar above the panes and the status bar
                    text = f"Model {Path(path).name} was refused \u2014 {n.message}" if path else n.message
                    w.model_warning.setText("\u26a0  " + text)
                    w.model_warning.setToolTip(str(path) if path else "")
                    w.model_warning.show()
                    msgs.insert(0, text)
                    w.model_fallback.emit(text)
                else:
                    msgs.append(n.message)
            if msgs:
                w.statusBar().showMessage("; ".join(msgs), 15000)
            else:
                w.statusBar().showMessage(f"Model {session.card.name} ready on {session.device_text}", 5000)

        def failed(exc: BaseException) -> None:
            text = f"The model could not be loaded: {error_text(exc)}"
            if self._verifier is None and path and fallback:
                text += " \u2014 falling back to the default model."
                self._model_override = None
                QTimer.singleShot(0, lambda: self.load_model(None, fallback=True))
            elif self._verifier is not None:
                text += " \u2014 the current model stays in use."
            else:
                if path:
                    text += " \u2014 no other model is used."
                self._model_unavailable = True
                w.model_label.setText("Model: none")
            w.model_error.setText("\u26a0  " + text)
            w.model_error.show()
            w.statusBar().showMessage(text, 10000)
            w.model_failed.emit(text)

        return self.jobs.submit(MODEL, fn, done, failed)

    def switch_model(self, path: str, persist: bool = True) -> int:
        return self.load_model(str(path), persist=persist)

    def open_model_dialog(self) -> None:
        from sigverify.paths import user_models_dir

        start = str(user_models_dir()) if user_models_dir().is_dir() else self.settings.last_dir
        path, _ = QFileDialog.getOpenFileName(self.w, "Open model", start, "sigverify models (*.safetensors);;All files (*)")
        if path and self.confirm_verdict_change("the model", f"switch to {Path(path).name}"):
            self.switch_model(path)

    def use_default_model(self) -> None:
        if not self.confirm_verdict_change("the model", "switch to the shipped model"):
            return
        self._model_override = None
        self.load_model(None, persist=True)

    # ============================================================================ settings
    def confirm_verdict_change(self, what: str, change: str, old=None, new=None) -> bool:
        """Verdict-changing settings: a confirmation while a case is on screen, and an audit note
        (``sigverify.app.settings_audit``) in the audit trail of the open library. The Operator UI wraps
        this with the supervisor-role check (``signin.OperatorUI._guard_verdict_settings``)."""
        if self._result is not None and not self.confirm(
            "Change a verdict setting",
            f"Changing {what} can change the verdict of the case on screen.\n\n{change.capitalize()}?\n\n"
            "The case is re-run and shown as a re-run; its audit record is not changed.",
        ):
            self.sync_settings_menu()
            return False
        note = f"{datetime.now():%Y-%m-%d %H:%M:%S}: {change}"
        self.setting_notes.append(note)
        log.warning("verdict setting changed: %s", change)
        self.note_in_audit(what, change, old, new)
        return True

    def note_in_audit(self, what: str, change: str, old=None, new=None) -> int | None:
        """The audit note of a confirmed verdict-setting change (None: no audit log open, or it failed,
        which the window says)."""
        case = getattr(self.w, "case", None)
        lib = getattr(case, "library", None)
        if lib is None:
            return None
        from sigverify.app.settings_audit import SettingChange, note_setting_change

        cur = getattr(case, "current", None)
        v = self._verifier
        ch = SettingChange(
            SETTING_KEYS.get(what, "threshold_policy"),
            change,
            old,
            new,
            confirmed=True,
            case_audit_id=None if cur is None else cur.audit_id,
            customer_id=getattr(case, "customer_id", None),
        )
        try:
            nid = note_setting_change(
                lib.audit,
                ch,
                model_id=v.model.model_id if v is not None else "",
                weights_sha256=(v.card.weights_sha256 or "") if v is not None else "",
                metric=v.metric if v is not None else "",
            )
        except Exception as exc:  # noqa: BLE001 - the change stands; the clerk is told the note is missing
            log.error("the setting change could not be noted in the audit log", exc_info=exc)
            self.w.show_error(f"The setting change could not be noted in the audit trail: {exc}")
            return None
        self.setting_note_ids.append(nid)
        return nid

    def set_metric(self, metric: str) -> None:
        v = self._verifier
        if v is not None and metric == v.metric:
            self.sync_settings_menu()
            return
        if v is not None:
            try:
                v.card.metric_calibration(metric)
            except Exception as exc:  # noqa: BLE001 - MetricUnavailableError: say so, change nothing
                self.w.statusBar().showMessage(str(exc), 8000)
                self.sync_settings_menu()
                return
        old = v.metric if v is not None else self.settings.metric
        if not self.confirm_verdict_change("the distance metric", f"use the {metric} distance", old, metric):
            return
        if v is not None:
            v.set_metric(metric)
        self.settings.metric = metric
        self.settings.save()
        self.sync_settings_menu()
        self.w.statusBar().showMessage(f"Distance metric: {metric}", 4000)
        self.after_inputs_changed(keep_time=False)

    def set_policy(self, policy: str) -> None:
        """Settings > Threshold policy: only a policy the model has calibrated thresholds for."""
        v = self._verifier
        if v is None or policy == v.aggregate:
            self.sync_settings_menu()
            return
        if policy not in v.policies:
            self.w.statusBar().showMessage(
                f"Model {v.card.name} has no thresholds calibrated for the {policy!r} policy: not offered", 8000
            )
            self.sync_settings_menu()
            return
        label = POLICY_TEXT[policy].replace("&", "")
        if not self.confirm_verdict_change("the threshold policy", f"decide by {label.lower()}", v.aggregate, policy):
            return
        v.aggregate = policy
        self.settings.policy = policy
        self.settings.save()
        self.sync_settings_menu()
        self.w.statusBar().showMessage(f"Threshold policy: {label}", 4000)
        self.after_inputs_changed(keep_time=False)

    def set_adapt(self, on: bool) -> None:
        if not self.confirm_verdict_change(
            "the per-person thresholds",
            ("adapt" if on else "do not adapt") + " thresholds to the person",
            bool(self.settings.adapt_to_person),
            bool(on),
        ):
            return
        self.settings.adapt_to_person = bool(on)
        self.settings.save()
        if self._verifier is not None:
            self._verifier.adapt_to_person = bool(on)
        self.sync_settings_menu()
        self.after_inputs_changed(keep_time=False)

    def set_device(self, device: str) -> None:
        self.settings.device = device
        self.settings.save()
        self._device_override = None
        self.sync_settings_menu()
        if self._verifier is not None:
            path = self._verifier.model.path
            self.load_model(str(path) if path else None)

    # ============================================================================ inputs
    def set_references(self, paths: list[str], add: bool = False) -> None:
        w = self.w
        self._t_request = time.perf_counter()
        files, problems = expand_paths([str(p) for p in paths])
        w.ref_pane.clear_message()
        if not files:
            w.ref_pane.show_error("; ".join(problems) or "no file given")
            return
        if not add:
            self._new_adhoc_case()
        w.remember(("R", *files))
        label = "" if add else None

        def job() -> None:
            v = self._verifier
            self.jobs.submit(
                REF,
                lambda prog, stop: v.load_many(files, True, prog, stop),
                lambda res: self._refs_loaded(res, problems, add, label),
                lambda exc: self._job_error(w.ref_pane, exc),
                w.ref_pane.set_progress,
                lambda: self._job_cancelled(w.ref_pane),
            )

        self._run_or_defer(REF, job)

    def _new_adhoc_case(self) -> None:
        """Hand-picked references replace the customer's: an ad-hoc case."""
        if self.w.case.customer_id is not None:
            self.w.case.new_case(None)
            self._ref_label = ""
            self.w.customer_changed.emit(None)

    def set_reference_signatures(self, sigs: list, label: str = "", customer_id: str | None = None) -> None:
        w = self.w
        self.jobs.cancel(REF, notify=False)
        self._t_request = time.perf_counter()
        self._ref_skipped = []
        self._ref_label = label
        w.case.customer_id = customer_id
        w.ref_pane.clear_message()
        w.ref_pane.set_signatures(list(sigs))
        w.update_titles()
        self.after_inputs_changed()

    def start_customer_case(self, sigs: list, label: str, customer_id: str) -> None:
        """A customer was loaded: a new case; the questioned pane is cleared (never verify the previous
        cheque against the new customer)."""
        w = self.w
        self.jobs.cancel(QUE, notify=False)
        self._result = None
        w.q_pane.set_signature(None)
        w.q_pane.clear_message()
        w.case.new_case(customer_id)
        self.set_reference_signatures(sigs, label, customer_id)
        w.customer_changed.emit(customer_id)

    def set_questioned(self, path: str) -> None:
        w = self.w
        self._t_request = time.perf_counter()
        files, problems = expand_paths([str(path)])
        w.q_pane.clear_message()
        if not files:
            self._questioned_failed("; ".join(problems) or "no file given")
            return
        note = (
            f"{len(files)} files given: only the first, {Path(files[0]).name}, is the questioned signature"
            if len(files) > 1
            else ""
        )
        f = files[0]
        w.remember(("Q", f))

        def job() -> None:
            v = self._verifier
            self.jobs.submit(
                QUE,
                lambda prog, stop: v.load_many([f], True, prog, stop),
                lambda res: self._q_loaded(res, note),
                lambda exc: self._questioned_failed(error_text(exc)),
                w.q_pane.set_progress,
                lambda: self._job_cancelled(w.q_pane),
            )

        self._run_or_defer(QUE, job)

    def array_job(self, key: str, rgb, source: str) -> None:
        w = self.w
        self._t_request = time.perf_counter()
        pane = w.ref_pane if key == REF else w.q_pane
        pane.clear_message()

        def job() -> None:
            v = self._verifier
            fn = lambda p, s: ([v.signature_from_array(rgb, source)], [])  # noqa: E731
            if key == REF:
                self.jobs.submit(
                    REF,
                    fn,
                    lambda res: self._refs_loaded(res, [], True, None),
                    lambda exc: self._job_error(pane, exc),
                    pane.set_progress,
                    lambda: self._job_cancelled(pane),
                )
            else:
                self.jobs.submit(
                    QUE,
                    fn,
                    lambda res: self._q_loaded(res, ""),
                    lambda exc: self._questioned_failed(error_text(exc)),
                    pane.set_progress,
                    lambda: self._job_cancelled(pane),
                )

        self._run_or_defer(key, job)

    def _run_or_defer(self, key: str, fn: Callable[[], None]) -> None:
        pane = self.w.ref_pane if key == REF else self.w.q_pane
        if self._verifier is None:
            self._pending[key] = fn
            pane.set_busy(True, "Waiting for the model\u2026")
        else:
            fn()

    def _refs_loaded(self, res, problems: list[str], add: bool, label: str | None) -> None:
        w = self.w
        ok, bad = res
        msgs = list(problems) + [m for _, m in bad]
        if not ok:
            w.ref_pane.show_error(
                "No usable reference signature: "
                + "; ".join(msgs)
                + (" \u2014 the previous references are kept." if w.ref_pane.signatures() else "")
            )
            return
        if add:
            sigs = w.ref_pane.signatures() + ok
            self._ref_skipped = self._ref_skipped + bad
            select = len(sigs) - 1
        else:
            sigs, self._ref_skipped, select = ok, list(bad), 0
            self._ref_label = label or ""
        w.ref_pane.set_signatures(sigs, select)
        if msgs:
            w.ref_pane.show_warning(f"{len(msgs)} file(s) skipped: " + "; ".join(msgs))
        w.update_titles()
        self.after_inputs_changed()

    def _q_loaded(self, res, note: str) -> None:
        w = self.w
        ok, bad = res
        if not ok:
            self._questioned_failed("; ".join(m for _, m in bad) or "no signature found")
            return
        w.q_pane.set_signature(ok[0])
        if note:
            w.q_pane.show_warning(note)
        self.after_inputs_changed()

    def _questioned_failed(self, msg: str) -> None:
        """A questioned file that cannot be used: the pane says why and no verdict stays on screen
        (the previous cheque's verdict must not look like this file's)."""
        w = self.w
        w.q_pane.set_signature(None)
        w.q_pane.show_error(msg + " \u2014 no verdict is shown.")
        self._result = None
        w.case.clear_result()
        self.show_result(None)

    def _job_error(self, pane, exc: BaseException) -> None:
        pane.show_error(error_text(exc) + (" \u2014 the previous comparison is kept." if self._result is not None else ""))

    def _job_cancelled(self, pane) -> None:
        pane.set_busy(False)
        self.w.statusBar().showMessage("Cancelled", 3000)

    def cancel(self, role: str) -> None:
        self._pending.pop(role, None)
        if not self.jobs.cancel(role):
            (self.w.ref_pane if role == REF else self.w.q_pane).set_busy(False)

    def _busy_changed(self, slot: str, busy: bool) -> None:
        if slot not in (REF, QUE):
            return
        pane = self.w.ref_pane if slot == REF else self.w.q_pane
        pane.set_busy(busy, "Reading and embedding\u2026")

    def _reembed(self) -> None:
        """Embed the loaded signatures again with the current model (after a model or device change)."""
        w = self.w
        v = self._verifier
        refs, q = w.ref_pane.signatures(), w.q_pane.signature()

        def redo(sigs):
            def fn(progress, stop):
                import dataclasses

                from sigverify.errors import Cancelled

                out, bad = [], []
                for i, s in enumerate(sigs):
                    if stop():
                        raise Cancelled("cancelled")
                    orig = (s.preprocessed.stages or {}).get("original")
                    try:
                        pre = s.preprocessed
                        crop = tuple(pre.region) if getattr(pre, "region_source", None) == "crop" else None
                        if orig is not None:  # the clerk's crop rectangle stays: the same case, re-run
                            new = v.signature_from_array(orig, s.source, crop=crop)
                        else:
                            new = v.load(s.source)
                        # keep the library identity of a specimen (same case across models)
                        fields = {f.name for f in dataclasses.fields(new)}
                        extra = {
                            k: getattr(s, k)
                            for k in ("specimen", "reference_id", "account_id")
                            if k in fields and getattr(s, k, None) is not None
                        }
                        out.append(dataclasses.replace(new, **extra) if extra else new)
                    except Exception as exc:  # noqa: BLE001 - reported per signature
                        bad.append((s.source, error_text(exc)))
                    progress((i + 1) / len(sigs), "re-embedding")
                return out, bad

            return fn

        if refs:
            sel = w.ref_pane.selected_index()
            self.jobs.submit(
                REF,
                redo(refs),
                lambda res: self._reembedded_refs(res, sel),
                lambda exc: self._job_error(w.ref_pane, exc),
                w.ref_pane.set_progress,
            )
        if q is not None:
            self.jobs.submit(
                QUE,
                redo([q]),
                lambda res: self._q_loaded(res, ""),
                lambda exc: self._job_error(w.q_pane, exc),
                w.q_pane.set_progress,
            )

    def _reembedded_refs(self, res, sel: int) -> None:
        ok, bad = res
        self.w.ref_pane.set_signatures(ok, sel)
        if bad:
            self.w.ref_pane.show_warning("; ".join(m for _, m in bad))
        self.after_inputs_changed(keep_time=False)

    def remove_reference(self, index: int) -> None:
        w = self.w
        sigs = w.ref_pane.signatures()
        if not (0 <= index < len(sigs)):
            return
        gone = sigs.pop(index)
        w.ref_pane.set_signatures(sigs, min(index, len(sigs) - 1))
        w.statusBar().showMessage(f"Removed reference {Path(gone.source).name}", 4000)
        w.update_titles()
        self.after_inputs_changed(keep_time=False)

    def clear_role(self, role: str) -> None:
        w = self.w
        self.cancel(role)
        if role == REF:
            self._ref_skipped, self._ref_label = [], ""
            w.case.customer_id = None
            w.ref_pane.set_signatures([])
            w.update_titles()
            w.ref_pane.clear_message()
        else:
            w.q_pane.set_signature(None)
            w.q_pane.clear_message()
        self._result = None
        self.after_inputs_changed(keep_time=False)

    def clear(self) -> None:
        w = self.w
        self.jobs.cancel(REF, notify=False)
        self.jobs.cancel(QUE, notify=False)
        self._ref_skipped, self._ref_label, self._result = [], "", None
        w.ref_pane.set_signatures([])
        w.q_pane.set_signature(None)
        for p in (w.ref_pane, w.q_pane):
            p.clear_message()
            p.set_busy(False)
        w.case.new_case(None)
        w.update_titles()
        self.show_result(None)
        w.customer_changed.emit(None)

    # ============================================================================ verification
    def after_inputs_changed(self, keep_time: bool = True) -> None:
        w = self.w
        w.refresh_overlay()
        refs, q, v = w.ref_pane.signatures(), w.q_pane.signature(), self._verifier
        if self.jobs.is_busy(REF) or self.jobs.is_busy(QUE):
            return  # the other side is still loading; verify when it lands
        if not refs or q is None or v is None:
            self._result = None
            w.case.clear_result()
            self.show_result(None)
            if refs and q is None:
                w.statusBar().showMessage("References ready \u2014 now add the questioned signature", 6000)
            elif q is not None and not refs:
                w.statusBar().showMessage("Questioned signature ready \u2014 now add the references", 6000)
            return
        t0 = self._t_request if keep_time and self._t_request is not None else time.perf_counter()
        try:
            elapsed = (time.perf_counter() - t0) * 1000
            res = w.case.on_verified(v, q, refs, elapsed, self._ref_skipped)
        except Exception as exc:  # noqa: BLE001 - e.g. embeddings from another model
            log.error("the comparison failed", exc_info=exc)
            self._result = None
            w.case.clear_result()
            self.show_result(None, f"The comparison failed: {error_text(exc)}")
            return
        self._t_request = None
        self._result = res
        self.show_result(res)
        w.last_label.setText(f"Last: {datetime.now():%H:%M:%S} \u00b7 {res.elapsed_ms:.0f} ms")
        w.last_label.setToolTip(f"Last verification at {datetime.now():%H:%M:%S}, {res.elapsed_ms:.0f} ms")
        from sigverify.gui.gauge import ZONE_HEADLINE  # the short words: the status bar fits 200 % too

        w.statusBar().showMessage(f"Verdict: {ZONE_HEADLINE.get(res.decision.verdict.zone, res.decision.verdict.text)}", 8000)
        w.verification_done.emit(res)

    def show_result(self, res, message: str = "") -> None:
        p = self.w.verdict_panel
        p.show_message(message)
        if res is None:
            v = self._verifier
            p.show_empty(v.calibration if v is not None else None)
            return
        p.show_result(res)

    def result(self):
        return self._result


__all__ = ["ComparisonController", "REF", "QUE", "MODEL"]
