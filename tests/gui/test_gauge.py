"""DistanceGauge: zones, value, verdict text, rendering at normal and high DPI."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PySide6.QtGui import QColor, QImage

from sigverify.gui.gauge import (
    FORGERY,
    GENUINE,
    REFER,
    DistanceGauge,
    _dial_height,
    _dial_parts,
    _fit_dial,
    separate_labels,
    zone_for,
)


@pytest.fixture
def gauge(qtbot):
    g = DistanceGauge()
    qtbot.addWidget(g)
    g.resize(360, 340)
    g.set_thresholds(0.5, 0.8, 1.2)
    return g


@pytest.mark.parametrize(
    "d,zone,word",
    [
        (0.0, GENUINE, "Genuine"),
        (0.3, GENUINE, "Genuine"),
        (0.5, GENUINE, "Genuine"),
        (0.51, REFER, "Refer"),
        (0.8, REFER, "Refer"),
        (0.81, FORGERY, "Forgery"),
        (5.0, FORGERY, "Forgery"),
    ],
)
def test_zone_value_and_words_for_known_distances(gauge, d, zone, word):
    gauge.set_result(d, score=42.0)
    assert gauge.zone() == zone
    assert gauge.value() == pytest.approx(d)
    assert gauge.score() == pytest.approx(42.0)
    assert word in gauge.verdict_text()
    assert word in gauge.accessibleDescription()


def test_explicit_zone_wins_and_clear_resets(gauge):
    gauge.set_result(0.1, 80, zone=FORGERY)  # e.g. thresholds adapted to the person
    assert gauge.zone() == FORGERY
    gauge.clear()
    assert gauge.zone() is None and gauge.value() is None and gauge.score() is None
    assert gauge.verdict_text() == "No comparison yet"
    with pytest.raises(ValueError):
        gauge.set_result(0.1, 50, zone="maybe")


def test_thresholds_and_reference_ticks(gauge):
    gauge.set_thresholds(0.9, 0.4)  # swapped order is repaired, max defaults above reject
    a, r, mx = gauge.thresholds()
    assert (a, r) == (0.4, 0.9) and mx > r
    gauge.set_result(0.6, 55, per_reference_distances=[0.5, 0.6, 0.7], caption="mean of 3 references")
    assert gauge.reference_distances() == [0.5, 0.6, 0.7]
    assert gauge.zone() == REFER


def _render(g: DistanceGauge, dpr: float) -> QImage:
    img = QImage(int(g.width() * dpr), int(g.height() * dpr), QImage.Format.Format_ARGB32)
    img.setDevicePixelRatio(dpr)
    img.fill(QColor("white"))
    g.render(img)
    return img


def _has_colour(img: QImage, rgb: tuple[int, int, int], tol: int = 40) -> bool:
    step = max(1, img.width() // 120)
    for y in range(0, img.height(), step):
        for x in range(0, img.width(), step):
            c = img.pixelColor(x, y)
            if abs(c.red() - rgb[0]) < tol and abs(c.green() - rgb[1]) < tol and abs(c.blue() - rgb[2]) < tol:
                return True
    return False


@pytest.mark.parametrize("dpr", [1.0, 2.0])
@pytest.mark.parametrize("d", [0.2, 0.65, 1.0, 3.0])
def test_renders_every_zone_at_normal_and_high_dpi(gauge, dpr, d):
    gauge.set_result(d, 50, per_reference_distances=[d * 0.9, d * 1.1])
    img = _render(gauge, dpr)
    assert img.width() == int(360 * dpr)
    fill = {GENUINE: (0, 158, 115), REFER: (230, 159, 0), FORGERY: (213, 94, 0)}[gauge.zone()]
    assert _has_colour(img, fill, 30)  # the active zone and verdict icon are drawn in full colour


def test_renders_empty_tiny_and_without_refer_zone(qtbot):
    g = DistanceGauge()
    qtbot.addWidget(g)
    for size in ((260, 250), (200, 120), (900, 500)):
        g.resize(*size)
        _render(g, 1.0)
    g.set_thresholds(0.7, 0.7, 1.4)  # a model so good it needs no refer zone
    g.set_result(0.7, 50)
    assert g.zone() == GENUINE
    _render(g, 2.0)


@settings(max_examples=60, deadline=None)
@given(accept=st.floats(0.01, 1.0), gap=st.floats(0.0, 1.0), d=st.floats(0.0, 3.0))
def test_zone_rule_matches_the_core(accept, gap, d):
    from sigverify.model.card import MetricCalibration
    from sigverify.verify.calibration import verdict_for

    reject = accept + gap
    cal = MetricCalibration(accept, reject, accept, 10.0, accept, 0.5)
    assert zone_for(d, accept, reject) == verdict_for(d, cal).zone


def test_separate_labels_pushes_overlapping_labels_apart():
    from PySide6.QtCore import QRectF

    a, b = QRectF(100, 50, 30, 14), QRectF(118, 52, 30, 14)
    a2, b2 = separate_labels(a, b)
    assert not a2.intersects(b2) and a2.center().x() < b2.center().x()
    assert a2.width() == 30 and b2.height() == 14  # moved, not resized
    far = QRectF(300, 50, 30, 14)
    assert separate_labels(a, far) == [a, far]  # apart already: unchanged


@pytest.mark.parametrize("w,h", [(220, 190), (256, 200), (360, 340), (600, 700)])
def test_the_dial_and_the_verdict_block_share_the_height_without_overlap(qtbot, w, h):
    """Close thresholds on a small gauge (200 % scaling): threshold labels apart, the dial as large as
    fits above the verdict block, never smaller than the minimum radius."""
    g = DistanceGauge()
    qtbot.addWidget(g)
    g.resize(w, h)
    g.set_thresholds(0.318, 0.507, 0.83)
    g.set_result(0.653, 2, caption="writer of 3 references")
    g.grab()
    a, b = g._label_rects
    assert not a.intersects(b)
    r, parts = _fit_dial(w, h - 60, g.font())
    assert r >= 40 and _dial_height(r, parts) <= max(h - 60, _dial_height(40, _dial_parts(40, g.font())))
    assert g._block_top < h  # the verdict headline starts inside the widget
    if h >= 300:
        assert r >= 80  # a roomy gauge gets a big dial


def test_gauge_minimum_keeps_a_readable_dial(gauge):
    assert gauge.minimumWidth() >= 220 and gauge.minimumHeight() >= 190


def test_no_placeholder_numbers_before_the_models_thresholds(qtbot):
    g = DistanceGauge()
    qtbot.addWidget(g)
    g.resize(300, 280)
    g.grab()
    assert not g.thresholds_known() and g._label_rects == []  # the model is still loading: no numbers
    g.set_thresholds(0.3, 0.5, 0.8)
    g.grab()
    assert g.thresholds_known() and len(g._label_rects) == 2
