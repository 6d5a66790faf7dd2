"""Distance gauge: a QPainter dial with the calibrated zones, a needle at the distance and the verdict.

Zones (from the calibrated, possibly per-person-adapted thresholds)::

    0 ... genuine ... accept | refer ... reject | forgery ... max_distance

The verdict is shown in words, in colour *and* as a shape (check in a circle / question mark in a
diamond / cross in an octagon), so it reads without colour vision and in greyscale print-outs.
Everything is drawn in device-independent units, so it stays sharp at 200 % scaling.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

GENUINE, REFER, FORGERY = "genuine", "refer", "forgery"
ZONES = (GENUINE, REFER, FORGERY)

#: Okabe-Ito colour-blind-safe palette: fill colours for the dial and darker shades for text.
ZONE_FILL = {GENUINE: QColor("#009E73"), REFER: QColor("#E69F00"), FORGERY: QColor("#D55E00")}
ZONE_TEXT_COLOR = {GENUINE: QColor("#00694C"), REFER: QColor("#8A5C00"), FORGERY: QColor("#A63A00")}
ZONE_HEADLINE = {GENUINE: "Genuine", REFER: "Refer to supervisor", FORGERY: "Forgery suspected"}
ZONE_DETAIL = {GENUINE: "signatures match", REFER: "not conclusive - get a second opinion", FORGERY: "signatures do not match"}
ZONE_SHORT = {GENUINE: "GENUINE", REFER: "REFER", FORGERY: "FORGERY"}

START_DEG = 205.0  # Qt angles: 0 = 3 o'clock, counter-clockwise positive
SWEEP_DEG = 230.0


def zone_for(distance: float, accept: float, reject: float) -> str:
    """The same rule as the core: d <= accept genuine, d > reject forgery, else refer."""
    if distance <= accept:
        return GENUINE
    if distance > reject:
        return FORGERY
    return REFER


def verdict_shape(zone: str, center: QPointF, r: float) -> tuple[QPainterPath, QPainterPath]:
    """Outline and glyph paths for a zone's icon (circle+check, diamond+?, octagon+cross)."""
    outline, glyph = QPainterPath(), QPainterPath()
    cx, cy = center.x(), center.y()
    if zone == GENUINE:
        outline.addEllipse(center, r, r)
        glyph.moveTo(cx - 0.48 * r, cy + 0.02 * r)
        glyph.lineTo(cx - 0.12 * r, cy + 0.38 * r)
        glyph.lineTo(cx + 0.52 * r, cy - 0.36 * r)
    elif zone == REFER:
        outline.addPolygon(
            QPolygonF(
                [QPointF(cx, cy - 1.1 * r), QPointF(cx + 1.1 * r, cy), QPointF(cx, cy + 1.1 * r), QPointF(cx - 1.1 * r, cy)]
            )
        )
        outline.closeSubpath()
        glyph.moveTo(cx - 0.3 * r, cy - 0.22 * r)
        glyph.cubicTo(cx - 0.3 * r, cy - 0.62 * r, cx + 0.32 * r, cy - 0.62 * r, cx + 0.32 * r, cy - 0.24 * r)
        glyph.cubicTo(cx + 0.32 * r, cy + 0.02 * r, cx, cy + 0.02 * r, cx, cy + 0.24 * r)
        glyph.addEllipse(QPointF(cx, cy + 0.5 * r), 0.06 * r, 0.06 * r)
    else:
        pts = [
            QPointF(cx + r * math.cos(math.radians(22.5 + 45 * i)), cy + r * math.sin(math.radians(22.5 + 45 * i)))
            for i in range(8)
        ]
        outline.addPolygon(QPolygonF(pts))
        outline.closeSubpath()
        k = 0.38 * r
        glyph.moveTo(cx - k, cy - k)
        glyph.lineTo(cx + k, cy + k)
        glyph.moveTo(cx + k, cy - k)
        glyph.lineTo(cx - k, cy + k)
    return outline, glyph


DIAL_TOP = 8.0  # px above the dial band
MIN_RADIUS = 40.0


def _dial_parts(r: float, base_font: QFont) -> tuple[float, QFont, QFont]:
    """Band width, label font and number font of a dial of radius ``r``."""
    f_small = QFont(base_font)
    f_small.setPixelSize(max(10, int(r * 0.085)))
    f_num = QFont(base_font)
    f_num.setPixelSize(max(16, int(r * 0.2)))
    f_num.setBold(True)
    return max(10.0, r * 0.14), f_small, f_num


def _dial_height(r: float, parts) -> float:
    """Height the dial of radius ``r`` needs: the arc above the pivot; below it the longer of the
    arc's ends with their 0 / max labels and the distance number with its caption."""
    return DIAL_TOP + r + _caption_offset(r, parts) + QFontMetricsF(parts[1]).height() + 4


def _caption_offset(r: float, parts) -> float:
    """How far below the pivot the distance caption goes: under the number and under the 0 / max
    labels at the arc's ends (a long caption never runs into them)."""
    band, f_small, f_num = parts
    fs, fn = QFontMetricsF(f_small).height(), QFontMetricsF(f_num).height()
    arc_r = r - band / 2 - 8
    ends = arc_r * math.sin(math.radians(25)) + band / 2 + 2 + fs
    return max(ends, r * 0.16 + fn)


def _fit_dial(w: float, h: float, base_font: QFont) -> tuple[float, tuple]:
    """The largest radius whose dial fits ``w`` x ``h`` (never below ``MIN_RADIUS``)."""
    r = max(MIN_RADIUS, (w - 24) / 2.0)
    while r > MIN_RADIUS:
        parts = _dial_parts(r, base_font)
        if _dial_height(r, parts) <= h:
            return r, parts
        r -= 1.0
    return MIN_RADIUS, _dial_parts(MIN_RADIUS, base_font)


def separate_labels(a: QRectF, b: QRectF, gap: float = 3.0) -> list[QRectF]:
    """Two threshold labels pushed apart (each half the way, along the line between their centres)
    until they no longer overlap: close thresholds stay readable on a small dial."""
    a, b = QRectF(a), QRectF(b)
    if not a.adjusted(-gap, -gap, gap, gap).intersects(b):
        return [a, b]
    dx = b.center().x() - a.center().x()
    dy = b.center().y() - a.center().y()
    # overlap along each axis; move along the axis that needs the smaller shift
    need_x = (a.width() + b.width()) / 2 + gap - abs(dx)
    need_y = (a.height() + b.height()) / 2 + gap - abs(dy)
    if need_x <= need_y:
        s = (1.0 if dx >= 0 else -1.0) * need_x / 2
        a.translate(-s, 0)
        b.translate(s, 0)
    else:
        s = (1.0 if dy >= 0 else -1.0) * need_y / 2
        a.translate(0, -s)
        b.translate(0, s)
    return [a, b]


class DistanceGauge(QWidget):
    """Custom dial widget. Feed it thresholds and a result; read back ``zone()``/``value()``."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._accept = 0.6
        self._reject = 0.9
        self._max = 1.35
        self._value: float | None = None
        self._score: float | None = None
        self._zone: str | None = None
        self._refs: list[float] = []
        self._caption = ""
        self._known = False  # no thresholds yet (the model is loading): no placeholder numbers are drawn
        # big enough for a readable dial (radius >= ~60 px) and the verdict block; the verdict and the
        # decision still fit 1366x768 and 200 % on 1920x1080
        self.setMinimumSize(220, 190)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setAccessibleName("Distance gauge")
        self._update_accessible()

    # -- public API -----------------------------------------------------------------------------
    def set_thresholds(self, accept: float, reject: float, max_distance: float | None = None) -> None:
        accept, reject = float(accept), float(reject)
        if reject < accept:
            accept, reject = reject, accept
        self._accept, self._reject = accept, reject
        self._known = True
        self._max = float(max_distance) if max_distance and max_distance > reject else max(reject * 1.5, 1e-6)
        if self._value is not None and self._zone is None:
            self._zone = zone_for(self._value, accept, reject)
        self._update_accessible()
        self.update()

    def set_result(
        self,
        distance: float,
        score: float | None = None,
        zone: str | None = None,
        per_reference_distances: list[float] | None = None,
        caption: str = "",
    ) -> None:
        """Show a distance; ``zone`` defaults to the one the thresholds give; ``caption`` e.g. "mean of 3"."""
        self._value = float(distance)
        self._score = None if score is None else float(score)
        z = zone or zone_for(self._value, self._accept, self._reject)
        if z not in ZONES:
            raise ValueError(f"unknown zone {z!r}")
        self._zone = z
        self._refs = [float(d) for d in (per_reference_distances or [])]
        self._caption = caption
        self._update_accessible()
        self.update()

    def clear(self) -> None:
        self._value = self._score = self._zone = None
        self._refs = []
        self._caption = ""
        self._update_accessible()
        self.update()

    def zone(self) -> str | None:
        return self._zone

    def value(self) -> float | None:
        return self._value

    def score(self) -> float | None:
        return self._score

    def thresholds(self) -> tuple[float, float, float]:
        return self._accept, self._reject, self._max

    def thresholds_known(self) -> bool:
        """False until the model's thresholds arrive (the dial then shows no numbers)."""
        return self._known

    def reference_distances(self) -> list[float]:
        return list(self._refs)

    def verdict_text(self) -> str:
        if self._zone is None:
            return "No comparison yet"
        return f"{ZONE_HEADLINE[self._zone]} - {ZONE_DETAIL[self._zone]}"

    def sizeHint(self) -> QSize:
        return QSize(340, 330)

    def heightForWidth(self, w: int) -> int:
        return int(w * 0.95)

    # -- painting -------------------------------------------------------------------------------
    def _angle(self, d: float) -> float:
        f = min(max(d / self._max, 0.0), 1.0) if self._max > 0 else 0.0
        return START_DEG - SWEEP_DEG * f

    def _update_accessible(self) -> None:
        if self._value is None:
            desc = "No comparison yet"
        else:
            desc = (
                f"{self.verdict_text()}. Distance {self._value:.3f}; genuine up to {self._accept:.3f}, "
                f"forgery above {self._reject:.3f}"
            )
            if self._score is not None:
                desc += f"; score {self._score:.0f} of 100"
        self.setAccessibleDescription(desc)
        self.setToolTip(desc)

    def paintEvent(self, _event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        w, h = self.width(), self.height()
        pal = self.palette()
        fg = pal.windowText().color()
        muted = QColor(fg)
        muted.setAlphaF(0.62)
        base_font = QFont(self.font())

        # Layout: the verdict block (headline, detail, score) gets exactly the height its fonts need; the
        # dial gets the rest, as large as fits (labels, the number and its caption included), centred.
        f_head = QFont(base_font)
        f_head.setPixelSize(min(26, max(15, int(min(w, h) * 0.068))))
        f_head.setBold(True)
        fmh = QFontMetricsF(f_head)
        f_det = QFont(base_font)
        f_det.setPixelSize(max(11, int(f_head.pixelSize() * 0.62)))
        fmd = QFontMetricsF(f_det)
        block = fmh.height() + 4 + 2 * fmd.height() + 2 + 6
        r, parts = _fit_dial(w, h - block, base_font)
        band, f_small, f_num = parts
        off = max(0.0, (h - block - _dial_height(r, parts)) / 2)
        cx = w / 2.0
        cy = off + DIAL_TOP + r
        center = QPointF(cx, cy)
        arc_r = r - band / 2 - 8

        # Zones as a thick arc band.
        rect = QRectF(cx - arc_r, cy - arc_r, 2 * arc_r, 2 * arc_r)
        active = self._value is not None
        bounds = [(GENUINE, 0.0, self._accept), (REFER, self._accept, self._reject), (FORGERY, self._reject, self._max)]
        for zone, lo, hi in bounds:
            if hi <= lo:
                continue
            a0, a1 = self._angle(lo), self._angle(hi)
            col = QColor(ZONE_FILL[zone])
            if active and zone != self._zone:
                col.setAlphaF(0.38)
            elif not active:
                col.setAlphaF(0.55)
            pen = QPen(col, band, Qt.PenStyle.SolidLine, Qt.PenCapStyle.FlatCap)
            p.setPen(pen)
            p.drawArc(rect, int(a0 * 16), int((a1 - a0) * 16))

        # Zone separators and threshold labels.
        p.setFont(f_small)
        fm = QFontMetricsF(f_small)
        for t in (self._accept, self._reject):
            ang = math.radians(self._angle(t))
            ca, sa = math.cos(ang), -math.sin(ang)
            p.setPen(QPen(pal.window().color(), max(2.0, band * 0.16)))
            p.drawLine(
                QPointF(cx + (arc_r - band / 2) * ca, cy + (arc_r - band / 2) * sa),
                QPointF(cx + (arc_r + band / 2) * ca, cy + (arc_r + band / 2) * sa),
            )
        if not self._known:
            labels = []
        elif self._accept == self._reject:
            labels = [(self._accept, f"{self._accept:.2f}")]
        else:
            labels = [(self._accept, f"{self._accept:.2f}"), (self._reject, f"{self._reject:.2f}")]
        lr = arc_r - band / 2 - fm.height() * 0.9
        p.setPen(muted)
        rects = []
        for t, txt in labels:
            ang = math.radians(self._angle(t))
            pt = QPointF(cx + lr * math.cos(ang), cy - lr * math.sin(ang))
            tw = fm.horizontalAdvance(txt)
            rects.append(QRectF(pt.x() - tw / 2 - 2, pt.y() - fm.height() / 2, tw + 4, fm.height()))
        if len(rects) == 2:
            rects = separate_labels(rects[0], rects[1])
        self._label_rects = rects
        for rc, (_t, txt) in zip(rects, labels):
            p.drawText(rc, Qt.AlignmentFlag.AlignCenter, txt)
        # 0 and max at the ends of the band.
        for t, align in ((0.0, Qt.AlignmentFlag.AlignRight), (self._max, Qt.AlignmentFlag.AlignLeft)):
            ang = math.radians(self._angle(t))
            pt = QPointF(cx + arc_r * math.cos(ang), cy - arc_r * math.sin(ang) + band / 2 + 2)
            txt = "0" if t == 0 else (f"{self._max:.2f}" if self._known else "")
            tw = fm.horizontalAdvance(txt)
            x = pt.x() - tw / 2
            p.drawText(QRectF(x - 2, pt.y(), tw + 4, fm.height()), Qt.AlignmentFlag.AlignCenter, txt)

        # Zone names inside the band when there is room (white text on the colour).
        f_zone = QFont(base_font)
        f_zone.setPixelSize(max(9, int(band * 0.62)))
        f_zone.setBold(True)
        fmz = QFontMetricsF(f_zone)
        p.setFont(f_zone)
        for zone, lo, hi in bounds:
            if hi <= lo:
                continue
            a0, a1 = self._angle(lo), self._angle(hi)
            label = ZONE_SHORT[zone]
            arc_len = math.radians(abs(a0 - a1)) * arc_r
            if fmz.horizontalAdvance(label) + 8 > arc_len:
                continue
            self._draw_text_on_arc(
                p,
                label,
                center,
                arc_r,
                (a0 + a1) / 2,
                fmz,
                QColor("white") if (not active or zone == self._zone) else QColor(255, 255, 255, 220),
            )

        # Per-reference distance ticks (outside the band).
        outer = arc_r + band / 2 + 3
        for d in self._refs:
            ang = math.radians(self._angle(d))
            ca, sa = math.cos(ang), -math.sin(ang)
            tip = QPointF(cx + outer * ca, cy + outer * sa)
            base = QPointF(cx + (outer + band * 0.7) * ca, cy + (outer + band * 0.7) * sa)
            perp = QPointF(-sa * band * 0.28, ca * band * 0.28)
            tri = QPolygonF([tip, base + perp, base - perp])
            p.setPen(QPen(fg, 1))
            p.setBrush(QColor(fg.red(), fg.green(), fg.blue(), 150))
            p.drawPolygon(tri)
        p.setBrush(Qt.BrushStyle.NoBrush)

        # Needle.
        if active:
            ang = math.radians(self._angle(self._value))
            ca, sa = math.cos(ang), -math.sin(ang)
            L = arc_r + band / 2 - 2
            tip = QPointF(cx + L * ca, cy + L * sa)
            perp = QPointF(-sa, ca)
            wdt = max(3.0, r * 0.035)
            tail = QPointF(cx - 0.12 * r * ca, cy - 0.12 * r * sa)
            needle = QPolygonF([tip, tail + perp * wdt, tail - perp * wdt])
            p.setPen(QPen(QColor("#222222"), 1))
            p.setBrush(QColor("#222222"))
            p.drawPolygon(needle)
            p.drawEllipse(center, wdt * 1.8, wdt * 1.8)
            p.setBrush(pal.window().color())
            p.drawEllipse(center, wdt * 0.7, wdt * 0.7)
            p.setBrush(Qt.BrushStyle.NoBrush)

        # Distance number under the pivot.
        p.setFont(f_num)
        p.setPen(fg if active else muted)
        num_top = cy + r * 0.16
        fmn = QFontMetricsF(f_num)
        num = "-" if not active else f"{self._value:.3f}"
        if active and self._value > self._max:
            num = f"> {self._max:.2f}"
        p.drawText(QRectF(0, num_top, w, fmn.height()), Qt.AlignmentFlag.AlignHCenter, num)
        p.setFont(f_small)
        p.setPen(muted)
        cap = "distance" + (f" ({self._caption})" if self._caption else "")
        if fm.horizontalAdvance(cap) > w - 8:
            cap = self._caption or cap  # "mean of 3 references": the number above is the distance
        p.drawText(QRectF(0, cy + _caption_offset(r, parts), w, fm.height()), Qt.AlignmentFlag.AlignHCenter, cap)

        # Verdict block: icon + headline, then detail and score.
        top = off + _dial_height(r, parts) + 2
        self._block_top = top
        if active:
            zone = self._zone
            head = ZONE_HEADLINE[zone]
            icon_r = fmh.height() * 0.5
            tw = fmh.horizontalAdvance(head)
            total = 2 * icon_r + 10 + tw
            x0 = max(4.0, (w - total) / 2)
            ic = QPointF(x0 + icon_r, top + fmh.height() / 2)
            outline, glyph = verdict_shape(zone, ic, icon_r)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(ZONE_FILL[zone])
            p.drawPath(outline)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.setPen(
                QPen(
                    QColor("white"),
                    max(2.0, icon_r * 0.22),
                    Qt.PenStyle.SolidLine,
                    Qt.PenCapStyle.RoundCap,
                    Qt.PenJoinStyle.RoundJoin,
                )
            )
            p.drawPath(glyph)
            p.setFont(f_head)
            p.setPen(ZONE_TEXT_COLOR[zone])
            p.drawText(
                QRectF(x0 + 2 * icon_r + 10, top, w - x0 - 2 * icon_r - 10, fmh.height()),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                head,
            )
            p.setFont(f_det)
            p.setPen(fg)
            y = top + fmh.height() + 4
            p.drawText(
                QRectF(4, y, w - 8, fmd.height()),
                Qt.AlignmentFlag.AlignHCenter,
                fmd.elidedText(ZONE_DETAIL[zone], Qt.TextElideMode.ElideRight, w - 8),
            )
            if self._score is not None:
                y += fmd.height() + 2
                p.setPen(muted)
                p.drawText(
                    QRectF(4, y, w - 8, fmd.height()),
                    Qt.AlignmentFlag.AlignHCenter,
                    f"Score {self._score:.0f} / 100 (same writer likelihood)",
                )
        else:
            p.setFont(f_head)
            p.setPen(muted)
            p.drawText(QRectF(0, top, w, fmh.height()), Qt.AlignmentFlag.AlignHCenter, "No comparison yet")
            p.setFont(f_det)
            p.drawText(
                QRectF(4, top + fmh.height() + 4, w - 8, fmd.height() * 2),
                Qt.AlignmentFlag.AlignHCenter | Qt.TextFlag.TextWordWrap,
                "Add reference and questioned signatures",
            )
        p.end()

    @staticmethod
    def _draw_text_on_arc(
        p: QPainter, text: str, center: QPointF, radius: float, mid_deg: float, fm: QFontMetricsF, color: QColor
    ) -> None:
        """Letters placed along the arc, centred on ``mid_deg``, reading left to right."""
        total = fm.horizontalAdvance(text)
        # Arc length per letter -> angle; text runs clockwise (decreasing Qt angle).
        ang = mid_deg + math.degrees(total / 2 / radius)
        p.setPen(color)
        for ch in text:
            cw = fm.horizontalAdvance(ch)
            a = ang - math.degrees(cw / 2 / radius)
            rad = math.radians(a)
            pos = QPointF(center.x() + radius * math.cos(rad), center.y() - radius * math.sin(rad))
            p.save()
            p.translate(pos)
            p.rotate(90 - a)
            p.drawText(QPointF(-cw / 2, fm.ascent() / 2 - fm.descent() / 2), ch)
            p.restore()
            ang -= math.degrees(cw / radius)
