"""One PDF per case: the decision report a supervisor can hand on (Qt-free, fpdf2).

``write_case_report(library, case_id, out)`` writes (atomically) one A4 document with

- the customer, the questioned image and the specimens side by side, the overlay of the questioned
  signature on the first specimen (network inputs: specimen blue, questioned orange), the gauge;
- the verdict, the distances (per specimen), thresholds, score, per-person scale and any supervisor
  threshold override;
- the model id and weights SHA-256, the questioned file's SHA-256;
- the operators, every decision with its time, the supervisor's review, and the ids of all audit
  records it is built from (verification, decisions, operator events).

The questioned image is the one kept with the case (``ReferralQueue.attach_questioned``); a file given
with ``questioned=PATH`` is used only when its SHA-256 is the audit record's. Specimens come from the
library (a removed specimen is still shown: it is kept for the audit trail unless purged).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sigverify.errors import SigverifyError
from sigverify.hashing import sha256_file
from sigverify.store.audit import utc_now

REF_RGB = (0, 114, 178)  # the GUI overlay's colours (Okabe-Ito blue / orange, near-black overlap)
Q_RGB = (230, 159, 0)
BOTH_RGB = (40, 40, 40)
ZONE_RGB = {"genuine": (27, 122, 61), "refer": (196, 150, 0), "forgery": (163, 38, 27)}
ZONE_WORD = {
    "genuine": "GENUINE - signatures match",
    "refer": "REFER - to a supervisor",
    "forgery": "FORGERY SUSPECTED - signatures do not match",
}


@dataclass
class ReportInfo:
    path: Path
    case_id: int
    pages: int
    questioned_image: bool
    specimens: int
    audit_ids: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "case_id": self.case_id,
            "pages": self.pages,
            "questioned_image": self.questioned_image,
            "specimens": self.specimens,
            "audit_ids": self.audit_ids,
        }


def _font_path() -> str | None:
    """DejaVu Sans from matplotlib (a dependency): Unicode names print correctly."""
    try:
        import matplotlib

        p = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        return str(p) if p.is_file() else None
    except Exception:  # noqa: BLE001
        return None


def _preprocess_config():
    try:
        from sigverify.model.card import ModelCard, card_path_for
        from sigverify.paths import default_model_path

        return ModelCard.load(card_path_for(default_model_path())).preprocess_config
    except Exception:  # noqa: BLE001 - any card problem: the default pipeline is fine for a picture
        return None


def _network_input(data: bytes, name: str, cfg) -> np.ndarray | None:
    try:
        from sigverify.imaging.load import decode_and_preprocess

        return decode_and_preprocess(data, name, cfg).input
    except SigverifyError:
        return None


def ink_overlay(ref_input: np.ndarray, q_input: np.ndarray) -> np.ndarray:
    h, w = max(ref_input.shape[0], q_input.shape[0]), max(ref_input.shape[1], q_input.shape[1])
    a = np.zeros((h, w, 1), np.float32)
    b = np.zeros((h, w, 1), np.float32)
    a[: ref_input.shape[0], : ref_input.shape[1], 0] = ref_input / 255.0
    b[: q_input.shape[0], : q_input.shape[1], 0] = q_input / 255.0
    out = 255.0 * (1 - a) * (1 - b) + np.array(REF_RGB) * a * (1 - b) + np.array(Q_RGB) * b * (1 - a) + np.array(BOTH_RGB) * a * b
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _pil(data: bytes | np.ndarray):
    from PIL import Image, ImageOps

    if isinstance(data, np.ndarray):
        return Image.fromarray(data)
    from sigverify.imaging.load import load_image_bytes

    try:
        return Image.fromarray(load_image_bytes(data, name="image"))
    except SigverifyError:
        return ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")


class _Doc:
    """fpdf2 with the few helpers the report uses."""

    def __init__(self, title: str, footer: str):
        from fpdf import FPDF

        outer = self

        class PDF(FPDF):
            def footer(self):  # noqa: D401 - fpdf2 hook
                self.set_y(-12)
                outer.font(7)
                self.set_text_color(110)
                self.cell(0, 5, f"{footer}   \u00b7   page {self.page_no()}/{{nb}}", align="C")
                self.set_text_color(0)

        self.pdf = PDF(format="A4", unit="mm")
        self.pdf.set_title(title)
        self.pdf.set_creator("sigverify")
        self.pdf.set_auto_page_break(True, 16)
        self.pdf.set_margins(14, 14, 14)
        fp = _font_path()
        self.family = "Helvetica"
        if fp:
            self.pdf.add_font("DejaVu", "", fp)
            bold = Path(fp).with_name("DejaVuSans-Bold.ttf")
            self.pdf.add_font("DejaVu", "B", str(bold) if bold.is_file() else fp)
            self.family = "DejaVu"
        self.pdf.add_page()

    def font(self, size: float, bold: bool = False) -> None:
        self.pdf.set_font(self.family, "B" if bold else "", size)

    def text(self, s: str) -> str:
        if self.family == "Helvetica":  # core fonts are Latin-1 only
            return s.encode("latin-1", "replace").decode("latin-1")
        return s

    def heading(self, s: str) -> None:
        self.pdf.ln(2)
        self.font(11, True)
        self.pdf.cell(0, 7, self.text(s), new_x="LMARGIN", new_y="NEXT")
        self.pdf.set_draw_color(180)
        y = self.pdf.get_y()
        self.pdf.line(self.pdf.l_margin, y, self.pdf.w - self.pdf.r_margin, y)
        self.pdf.ln(1.5)

    def rows(self, pairs: list[tuple[str, str]], key_w: float = 46) -> None:
        for k, v in pairs:
            self.font(8.5, True)
            self.pdf.cell(key_w, 5, self.text(k))
            self.font(8.5)
            self.pdf.multi_cell(0, 5, self.text(v), new_x="LMARGIN", new_y="NEXT")

    def table(self, header: list[str], rows: list[list[str]], widths: list[float]) -> None:
        with self.pdf.table(
            col_widths=widths, text_align="LEFT", line_height=4.4, first_row_as_headings=True, borders_layout="HORIZONTAL_LINES"
        ) as t:
            self.font(7.5, True)
            r = t.row()
            for h in header:
                r.cell(self.text(h))
            self.font(7.5)
            for row in rows:
                r = t.row()
                for c in row:
                    r.cell(self.text(c))


def _gauge(
    doc: _Doc,
    x: float,
    y: float,
    w: float,
    h: float,
    distance: float,
    accept: float,
    reject: float,
    ref_distances: list[float],
    zone: str,
    override: float | None,
) -> None:
    pdf = doc.pdf
    top = max(reject * 1.6, distance * 1.08, max(ref_distances or [0]) * 1.08, 1e-6)
    sx = lambda d: x + w * min(max(d / top, 0.0), 1.0)  # noqa: E731
    for (a, b), z in (((0.0, accept), "genuine"), ((accept, reject), "refer"), ((reject, top), "forgery")):
        pdf.set_fill_color(*[int(c + (255 - c) * 0.55) for c in ZONE_RGB[z]])
        pdf.rect(sx(a), y, max(sx(b) - sx(a), 0.1), h, style="F")
        doc.font(7, True)
        pdf.set_text_color(*ZONE_RGB[z])
        pdf.set_xy(sx(a), y + h + 0.5)
        pdf.cell(max(sx(b) - sx(a), 1), 4, z, align="C")
    pdf.set_text_color(0)
    pdf.set_draw_color(60)
    for t in (accept, reject):
        pdf.line(sx(t), y - 1, sx(t), y + h + 1)
        doc.font(6.5)
        pdf.set_xy(sx(t) - 10, y - 4.5)
        pdf.cell(20, 3.5, f"{t:.3f}", align="C")
    for d in ref_distances:  # one tick per specimen
        pdf.set_draw_color(90)
        pdf.line(sx(d), y + h * 0.65, sx(d), y + h)
    pdf.set_draw_color(0)
    pdf.set_line_width(0.8)
    pdf.line(sx(distance), y - 2, sx(distance), y + h + 2)
    pdf.set_line_width(0.2)
    pdf.set_fill_color(0)
    pdf.polygon([(sx(distance) - 1.6, y - 3.8), (sx(distance) + 1.6, y - 3.8), (sx(distance), y - 1.6)], style="F")
    doc.font(8, True)
    pdf.set_xy(x, y + h + 5)
    cap = f"distance {distance:.4f}  \u2192  {ZONE_WORD.get(zone, zone)}"
    if override:
        cap += f"   (supervisor threshold override \u00d7{override:.2f})"
    pdf.cell(w, 4, doc.text(cap), align="C")


def write_case_report(
    library,
    case_id: int | str,
    out: str | os.PathLike,
    store=None,
    questioned: str | os.PathLike | None = None,
    generated_by: str | None = None,
) -> ReportInfo:
    """Write the decision report of one case to ``out`` (PDF, atomic). Unknown case: ``CaseNotFound``."""
    from sigverify.app.referrals import ReferralQueue
    from sigverify.atomic import write_bytes_atomic
    from sigverify.store.operators import OperatorStore

    store = store or OperatorStore.for_library(library)
    queue = ReferralQueue(library, store)
    case = queue.case(case_id)
    rec = case.record
    cfg = _preprocess_config()

    # ---- images ----
    q_bytes, q_note = None, "not kept with the case"
    kept = store.case_image(rec.id)
    if kept is not None:
        q_bytes, q_note = kept[1], f"kept with the case ({kept[0]})"
    elif questioned is not None:
        digest = sha256_file(questioned)
        if digest != rec.questioned_sha256:
            raise SigverifyError(
                f"{Path(questioned).name} is not the questioned file of case #{rec.id} (its SHA-256"
                " differs from the audit record)"
            )
        q_bytes, q_note = Path(questioned).read_bytes(), f"from {Path(questioned).name} (SHA-256 checked)"
    specimens: list[tuple[int, str, bytes]] = []
    for rid in rec.reference_ids:
        try:
            ref = library.get_reference(rid)
            specimens.append((rid, ref.file_name, library.reference_image(rid)))
        except SigverifyError:
            specimens.append((rid, "(purged from the library)", b""))

    ops = {o.username.lower(): o for o in store.list()}

    def who(name: str) -> str:
        o = ops.get((name or "").lower())
        if o is None:
            return name or "-"
        return f"{o.label}, {o.role}" + (" (removed)" if o.removed_utc else "")

    cust = library.get_customer(rec.customer_id) if rec.customer_id else None
    title = f"sigverify decision report - case #{rec.id}"
    doc = _Doc(
        title,
        f"sigverify case #{rec.id} \u00b7 generated {utc_now()[:19].replace('T', ' ')} UTC"
        + (f" by {generated_by}" if generated_by else ""),
    )
    pdf = doc.pdf
    pdf.alias_nb_pages()
    doc.font(15, True)
    pdf.cell(0, 8, doc.text(f"Signature verification - case #{rec.id}"), new_x="LMARGIN", new_y="NEXT")
    doc.font(8.5)
    pdf.set_text_color(90)
    pdf.cell(
        0,
        5,
        doc.text("Decision support, not proof. Refer and forgery verdicts go to a supervisor."),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_text_color(0)

    # verdict banner
    pdf.ln(1)
    pdf.set_fill_color(*ZONE_RGB.get(rec.verdict, (90, 90, 90)))
    pdf.set_text_color(255)
    doc.font(12, True)
    final = case.final
    banner = f"Model verdict: {ZONE_WORD.get(rec.verdict, rec.verdict)}"
    pdf.cell(0, 9, doc.text(banner), fill=True, new_x="LMARGIN", new_y="NEXT", align="C")
    pdf.set_text_color(0)
    doc.font(9.5, True)
    status = {
        "open": "OPEN - waiting for the clerk's decision",
        "awaiting_review": "WAITING FOR A SUPERVISOR",
        "closed": "CLOSED",
    }[case.status]
    pdf.cell(
        0,
        6,
        doc.text(
            f"Case status: {status}"
            + (f"   \u00b7   final decision: {final.decision.upper()} by {who(final.operator)}" if final else "")
        ),
        new_x="LMARGIN",
        new_y="NEXT",
        align="C",
    )

    doc.heading("Customer and questioned signature")
    doc.rows(
        [
            ("Customer", cust.label if cust else (rec.customer_id or "(no customer: files compared by hand)")),
            ("Verified", f"{rec.time_utc.replace('T', ' ')[:19]} UTC via {rec.source} by {who(rec.operator)}"),
            ("Questioned file", rec.questioned_name),
            ("Questioned SHA-256", rec.questioned_sha256),
            ("Questioned image", q_note),
            ("App case id", str((rec.details or {}).get("case_id") or "-")),
        ]
    )

    # ---- images side by side ----
    doc.heading("Questioned signature and specimens")
    x0, y0 = pdf.l_margin, pdf.get_y() + 1
    box_w, box_h, gap = 42.0, 24.0, 3.0
    tiles: list[tuple[str, object]] = []
    if q_bytes is not None:
        tiles.append(("QUESTIONED", _pil(q_bytes)))
    else:
        tiles.append(("QUESTIONED (not kept)", None))
    for rid, name, data in specimens:
        tiles.append((f"specimen #{rid}: {name}"[:34], _pil(data) if data else None))
    per_row = int((pdf.w - pdf.l_margin - pdf.r_margin + gap) // (box_w + gap))
    for i, (label, img) in enumerate(tiles):
        col, row = i % per_row, i // per_row
        x, y = x0 + col * (box_w + gap), y0 + row * (box_h + 7)
        if y + box_h + 7 > pdf.h - 20:
            pdf.add_page()
            y0, y = pdf.get_y(), pdf.get_y()
        pdf.set_draw_color(*(Q_RGB if i == 0 else REF_RGB))
        pdf.set_line_width(0.5 if i == 0 else 0.25)
        pdf.rect(x, y, box_w, box_h)
        pdf.set_line_width(0.2)
        if img is not None:
            iw, ih = img.size
            s = min((box_w - 2) / iw, (box_h - 2) / ih)
            pdf.image(img, x + (box_w - iw * s) / 2, y + (box_h - ih * s) / 2, iw * s, ih * s)
        else:
            doc.font(7)
            pdf.set_xy(x, y + box_h / 2 - 2)
            pdf.cell(box_w, 4, "no image", align="C")
        doc.font(6.5, i == 0)
        pdf.set_xy(x, y + box_h + 0.5)
        pdf.cell(box_w, 4, doc.text(label), align="C")
    n_rows = (len(tiles) + per_row - 1) // per_row
    pdf.set_y(y0 + n_rows * (box_h + 7) + 1)

    # ---- overlay + gauge ----
    q_in = _network_input(q_bytes, rec.questioned_name, cfg) if q_bytes else None
    r_in = next((_network_input(d, n, cfg) for _, n, d in specimens if d), None)
    doc.heading("Overlay and gauge")
    y = pdf.get_y() + 1
    if q_in is not None and r_in is not None:
        ov = ink_overlay(r_in, q_in)
        pdf.image(_pil(ov), pdf.l_margin, y, 60, 60 * ov.shape[0] / ov.shape[1])
        pdf.set_draw_color(170)
        pdf.rect(pdf.l_margin, y, 60, 60 * ov.shape[0] / ov.shape[1])
        doc.font(7)
        pdf.set_xy(pdf.l_margin, y + 60 * ov.shape[0] / ov.shape[1] + 0.5)
        pdf.cell(60, 4, doc.text(f"specimen #{specimens[0][0]} blue, questioned orange, both dark"), align="C")
        gx = pdf.l_margin + 68
    else:
        doc.font(8)
        pdf.set_xy(pdf.l_margin, y)
        pdf.multi_cell(
            60,
            4.5,
            "No overlay: the questioned image was not kept with the case (give the file to the report to add it)."
            if q_in is None
            else "No overlay: no specimen image.",
        )
        gx = pdf.l_margin + 68
    gw = pdf.w - pdf.r_margin - gx
    if rec.threshold_accept is not None and rec.threshold_reject is not None:
        override = (rec.details or {}).get("threshold_override")
        _gauge(
            doc,
            gx,
            y + 14,
            gw,
            9,
            rec.distance,
            rec.threshold_accept,
            rec.threshold_reject,
            list(rec.distances),
            rec.verdict,
            override,
        )
    pdf.set_y(y + 44)

    doc.heading("Verdict and distances")
    det = rec.details or {}
    rows = [
        ("Verdict", ZONE_WORD.get(rec.verdict, rec.verdict)),
        ("Distance", f"{rec.distance:.4f} ({rec.metric}, {det.get('aggregate', 'mean')} over the specimens)"),
        ("Score", f"{rec.score:.1f} / 100"),
        (
            "Thresholds",
            "-"
            if rec.threshold_accept is None
            else f"genuine <= {rec.threshold_accept:.4f} < refer <= {rec.threshold_reject:.4f} < forgery",
        ),
        (
            "Per specimen",
            ", ".join(f"#{rid}: {d:.4f}" for rid, d in zip(rec.reference_ids or range(1, len(rec.distances) + 1), rec.distances)),
        ),
    ]
    if det.get("person_threshold_scale") is not None:
        rows.append(("Per-person scale", f"x{float(det['person_threshold_scale']):.3f}"))
    if det.get("threshold_override"):
        rows.append(("Threshold override", f"x{float(det['threshold_override']):.2f} applied to this verification"))
    if case.threshold_override:
        ov = store.threshold_override(rec.customer_id)
        rows.append(("Override now in force", f"x{ov.scale:.2f} by {who(ov.operator)} on {ov.time_utc[:10]}: {ov.reason}"))
    if det.get("warnings"):
        rows.append(("Warnings", "; ".join(map(str, det["warnings"]))))
    rows += [("Model", rec.model_id), ("Weights SHA-256", rec.weights_sha256 or "-")]
    if det.get("random_weights"):
        rows.append(("WARNING", "UNTRAINED random weights: this verdict is meaningless"))
    doc.rows(rows)

    doc.heading("Decisions")
    drows = [
        [
            f"#{d.id}",
            d.time_utc.replace("T", " ")[:19],
            d.source,
            who(d.operator),
            d.decision.upper() + (" (override)" if d.overrides_verdict else ""),
            d.reason or "",
        ]
        for d in rec.decisions
    ]
    if drows:
        doc.table(["audit id", "time (UTC)", "by", "operator", "decision", "reason / note"], drows, [12, 33, 17, 42, 24, 54])
    else:
        doc.font(8.5)
        pdf.cell(0, 5, "No decision yet.", new_x="LMARGIN", new_y="NEXT")
    if case.events:
        doc.heading("Referral and review")
        erows = [
            [f"#{e.id}", e.time_utc.replace("T", " ")[:19], who(e.operator), e.event.replace("_", " "), e.reason or ""]
            for e in case.events
        ]
        doc.table(["event id", "time (UTC)", "operator", "step", "reason"], erows, [13, 33, 46, 28, 62])

    doc.heading("Audit records this report is built from")
    ids = {"verification": rec.id, "decisions": [d.id for d in rec.decisions], "operator_events": [e.id for e in case.events]}
    doc.rows(
        [
            ("Verification record", f"#{rec.id}"),
            ("Decision records", ", ".join(f"#{i}" for i in ids["decisions"]) or "-"),
            ("Operator events", ", ".join(f"#{i}" for i in ids["operator_events"]) or "-"),
            ("Operators", "; ".join(sorted({who(rec.operator), *(who(d.operator) for d in rec.decisions)}))),
        ]
    )

    data = bytes(pdf.output())
    out = Path(out)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out, data)
    return ReportInfo(out, rec.id, pdf.pages_count, q_bytes is not None, len(specimens), ids)


__all__ = ["write_case_report", "ReportInfo", "ink_overlay"]
