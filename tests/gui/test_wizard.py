"""Fine-tuning wizard + Model > Manage models: a full walk on a tiny synthetic set (CPU, seconds),
progress signals, cancel mid-run (no file), saved model loads and becomes the main window's model."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from helpers import make_set
from PySide6.QtWidgets import QApplication

TIMEOUT = 60000


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_set(tmp_path_factory.mktemp("refs") / "branch-refs")


@pytest.fixture(scope="module")
def base_model_path(tmp_path_factory) -> Path:
    from sigverify.model.weights import random_model, save_model

    m = random_model()
    return save_model(m.network, m.card, tmp_path_factory.mktemp("base") / "base.safetensors")


@pytest.fixture
def window(qtbot, base_model_path):
    from sigverify.gui.main_window import MainWindow
    from sigverify.gui.models_ui import install_training_ui
    from sigverify.verify.service import Verifier

    w = MainWindow(verifier=Verifier(str(base_model_path), "cpu"))
    qtbot.addWidget(w)
    install_training_ui(w)
    w.show()
    yield w
    ui = getattr(w, "training_ui", None)
    if ui and ui.wizard is not None:
        ui.wizard.jobs.shutdown(5000)
    w.jobs.shutdown()


def _user_models() -> list[Path]:
    from sigverify.paths import user_models_dir

    d = user_models_dir()
    return sorted(p for p in d.iterdir()) if d.is_dir() else []


def _clear_user_models() -> None:
    for p in _user_models():
        p.unlink()


def _open_wizard(qtbot, window, dataset, base_model_path):
    wiz = window.training_ui.open_wizard(folder=str(dataset), base_path=str(base_model_path))
    qtbot.addWidget(wiz)
    qtbot.waitUntil(wiz.data_page.isComplete, timeout=TIMEOUT)
    return wiz


def test_menu_installed_once(window):
    titles = [a.text() for a in window.menuBar().actions()]
    assert titles.count("&Model") == 1
    texts = [a.text() for a in window.model_menu.actions()]
    assert "&Fine-tune on my references\u2026" in texts and "&Manage models\u2026" in texts


def test_wizard_full_walk(qtbot, window, dataset, base_model_path):
    _clear_user_models()
    wiz = _open_wizard(qtbot, window, dataset, base_model_path)
    # Data page: counts per writer and no blocking problem
    assert wiz.data_page.table.rowCount() == 6
    assert wiz.report.n_images == 36
    assert wiz.data_page.thumbs.count() > 0
    wiz.next()
    assert wiz.currentPage() is wiz.preview_page
    assert wiz.preview_page.preview_count > 0
    wiz.next()
    s = wiz.settings_page
    assert wiz.currentPage() is s
    assert s.base_model_path() == str(base_model_path)
    assert "Estimated time" in s.estimate.text()
    assert s.adv.isHidden()
    from sigverify.train.finetune_loop import DEFAULT_ADAPT

    assert s.adapt.currentData() == DEFAULT_ADAPT and s.config().adapt == DEFAULT_ADAPT
    s.adapt.setCurrentIndex(s.adapt.findData("head"))  # this walk trains the projection
    assert s.epochs.isEnabled() and s.config().adapt == "head"
    s.epochs.setValue(3)
    s.val_frac.setValue(0.34)  # 2 of 6 writers held out: too few, said loudly before training
    assert "will be held out" in s.estimate.text() and "at least 10" in s.estimate.text()
    s.augment.setValue(1)
    progress, rows = [], []
    wiz.training_progress.connect(lambda f, m: progress.append(f))
    wiz.training_row.connect(rows.append)
    with qtbot.waitSignal(wiz.training_finished, timeout=TIMEOUT) as blocker:
        wiz.next()
    assert blocker.args == ["done"]
    assert progress and max(progress) > 0.5
    assert [r["epoch"] for r in rows if r.get("loss") is not None] == [1, 2, 3]
    assert any("val_eer" in r for r in rows)
    assert len(wiz.training_page.plot.loss) == 3
    assert wiz.training_page.isComplete()
    assert _user_models() == []  # nothing written before Save
    wiz.next()
    r = wiz.result_page
    assert wiz.currentPage() is r
    assert r.table.rowCount() >= 4 and r.table.item(0, 1).text().endswith("%")
    assert r.roc.pixmap() is not None and not r.roc.pixmap().isNull()
    r.name.setText("Branch 12 fine-tune")
    # 2 held-out writers: the figures are not a basis for switching, so no one-click activation
    assert r.assessment[0] == "unreliable" and r.warning.isVisible() and "only 2 held-out" in r.warning.text()
    assert not r.use_btn.isEnabled()
    r.use_now()
    assert window.current_verifier().model.path != (Path(wiz.saved_path) if wiz.saved_path else None)
    r.use_anyway.setChecked(True)  # the explicit second step
    assert r.use_btn.isEnabled()
    with qtbot.waitSignal(window.verifier_changed, timeout=TIMEOUT):
        r.use_btn.click()
    saved = Path(wiz.saved_path)
    assert saved.exists() and saved.with_suffix(".json").exists()
    assert saved.parent == Path(_user_models()[0]).parent
    assert window.current_verifier().model.path == saved
    from sigverify.model.weights import load_model

    m = load_model(saved)
    assert m.card.name == "Branch 12 fine-tune"
    assert m.card.base_model and m.card.training["data"]["folder"] == "branch-refs"
    assert m.card.metrics["validation"]["after"] is not None
    wiz.accept()


def test_wizard_cancel_mid_run_leaves_nothing(qtbot, window, dataset, base_model_path):
    _clear_user_models()
    wiz = _open_wizard(qtbot, window, dataset, base_model_path)
    wiz.next()
    wiz.next()
    wiz.settings_page.adapt.setCurrentIndex(wiz.settings_page.adapt.findData("block"))
    wiz.settings_page.epochs.setValue(400)  # long enough to cancel in the middle of training
    rows = []
    wiz.training_row.connect(rows.append)
    wiz.next()
    assert wiz.training_page.state == "running"
    qtbot.waitUntil(lambda: any(r.get("epoch", 0) >= 1 for r in rows), timeout=TIMEOUT)
    t0 = time.perf_counter()
    with qtbot.waitSignal(wiz.training_finished, timeout=5000) as blocker:
        wiz.training_page.cancel_btn.click()
    assert blocker.args == ["cancelled"]
    assert wiz.jobs.pool.waitForDone(3000), "the worker did not stop within 3 s"
    assert time.perf_counter() - t0 < 3.5
    QApplication.processEvents()
    assert wiz.result is None and not wiz.training_page.isComplete()
    assert _user_models() == []
    assert wiz.training_page.restart_btn.isVisible()
    wiz.reject()


def test_wizard_adapt_choice_sets_estimate_and_settings(qtbot, window, dataset, base_model_path):
    """The Adapt choice is exposed with its own honest estimate; "decision only" trains nothing."""
    import re

    wiz = _open_wizard(qtbot, window, dataset, base_model_path)
    wiz.next()
    wiz.next()
    s = wiz.settings_page

    def secs() -> float:
        m = re.search(r"about (?:(\d+) min )?(\d+) s", s.estimate.text())
        assert m, s.estimate.text()
        return 60 * int(m.group(1) or 0) + int(m.group(2))

    got = {}
    for key in ("stage", "head", "block"):
        s.adapt.setCurrentIndex(s.adapt.findData(key))
        got[key] = (secs(), s.epochs.value(), s.epochs.isEnabled())
    assert got["stage"][0] <= got["head"][0] <= got["block"][0]
    assert not got["stage"][2] and got["head"][2] and got["block"][2]
    assert got["block"][1] < got["head"][1]  # block steps are dearer: fewer epochs by default
    assert "epochs" not in (s.adapt.setCurrentIndex(s.adapt.findData("stage")) or s.estimate.text())
    wiz.reject()


def test_assess_counts_a_worse_decision_as_worse():
    """A model whose pair EER is unchanged (decision-only adaptation) but whose decision with K
    specimens got worse on the held-out writers needs the explicit confirmation too."""
    from types import SimpleNamespace

    from sigverify.gui.wizard import assess_result

    ev = SimpleNamespace(writers=12, eer=0.2, eer_random=0.05)
    card = SimpleNamespace(metrics={"validation": {"clerk": {"before": {"5": {"eer": 0.15}}, "after": {"5": {"eer": 0.2}}}}})
    st, why = assess_result(SimpleNamespace(before=ev, after=ev, card=card))
    assert st == "worse" and "5 specimens" in why[0]
    card.metrics["validation"]["clerk"]["after"]["5"]["eer"] = 0.1
    assert assess_result(SimpleNamespace(before=ev, after=ev, card=card))[0] == "ok"


def test_manage_models_rename_switch_delete(qtbot, window, base_model_path, tmp_path):
    from sigverify.gui.models_ui import ManageModelsDialog
    from sigverify.model.weights import load_model, save_model
    from sigverify.paths import user_models_dir

    _clear_user_models()
    m = load_model(base_model_path)
    m.card.name = "saved one"
    m.card.random_init = False
    p = save_model(m.network, m.card, user_models_dir() / "saved-one.safetensors")
    dlg = ManageModelsDialog(window)
    qtbot.addWidget(dlg)
    asked = []
    dlg.confirm = lambda title, text: asked.append(text) or True
    assert dlg.select_path(str(p))
    assert "saved one" in dlg.details.toPlainText()
    new = dlg.rename_selected("Renamed model")
    assert new and Path(new).name == "Renamed-model.safetensors" and not p.exists()
    assert load_model(new).card.name == "Renamed model"
    with qtbot.waitSignal(window.verifier_changed, timeout=TIMEOUT):
        dlg.use_selected()
    assert asked and "writer(s) only" in asked[0]  # no measured figures: confirmed, not one click
    assert str(window.current_verifier().model.path) == new
    dlg.refresh(select=new)
    assert str(dlg.models[dlg.active_row].path) == new and "active" in dlg.table.item(dlg.active_row, 1).text()
    assert sum("active" in dlg.table.item(i, 1).text() for i in range(dlg.table.rowCount())) == 1
    dlg.refresh(select=new)
    assert not dlg.delete_selected(confirm=False)  # in use: refused
    assert Path(new).exists()
    with qtbot.waitSignal(window.verifier_changed, timeout=TIMEOUT):
        window.switch_model(str(base_model_path), persist=False)
    dlg.refresh(select=new)
    assert dlg.delete_selected(confirm=False)
    assert _user_models() == []
