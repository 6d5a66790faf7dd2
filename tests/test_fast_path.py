"""The fast path (issue 17): the document check gated to whole pages, the clean-crop pipeline's
statistics computed in one pass (identical results), and the audit trail's batch-key index."""

from __future__ import annotations

import importlib
import sqlite3

import cv2
import numpy as np
import pytest

from sigverify.errors import BlankImageError
from sigverify.samples import draw_signature

P = importlib.import_module("sigverify.imaging.preprocess")
L = importlib.import_module("sigverify.imaging.locate")


DARK = "no signature found: the page is (almost) entirely dark - an underexposed or inverted scan, or a covered scanner lid"
BLANK = "no signature found: the page looks blank (no ink)"


def _reference_threshold(flat, min_ink_fraction, grey_before_flat):
    """The clean-crop threshold as it was before the one-pass statistics (boolean masks, np.median,
    cv2.meanStdDev / cv2.mean with masks, mask.mean())."""
    h, w = flat.shape
    k = 3 if max(h, w) < 900 else 5
    blurred = cv2.GaussianBlur(flat, (k, k), 0)
    t, _ = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    t = min(t, 230.0)
    mask = (blurred < t).astype(np.uint8)
    if mask.mean() < min_ink_fraction:
        if float(np.median(grey_before_flat)) < 60:
            raise BlankImageError(DARK)
        raise BlankImageError(BLANK)
    paper = mask == 0
    if paper.any():
        paper_med = float(np.median(flat[paper]))
        _, sd = cv2.meanStdDev(flat, mask=paper.astype(np.uint8))
        paper_sd = float(sd[0, 0])
    else:
        paper_med, paper_sd = 255.0, 0.0
    ink_mean = float(cv2.mean(flat, mask=mask)[0])
    if paper_med - ink_mean < max(25.0, 4.0 * paper_sd):
        raise BlankImageError(BLANK)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    keep = np.zeros(n, dtype=bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= max(3, int(2e-5 * h * w))
    mask = keep[labels].astype(np.uint8)
    if mask.mean() < min_ink_fraction:
        raise BlankImageError("no signature found: only specks or noise on the page")
    return mask


def _reference_grey(rgb, remove_stamps):
    if rgb.ndim == 3:
        r, g, b = (rgb[..., i].astype(np.int16) for i in range(3))
        if np.array_equal(r, g) and np.array_equal(g, b):
            return rgb[..., 0].copy()
    return _ORIG_GREY(rgb, remove_stamps)


def _reference_flat(grey):
    h, w = grey.shape
    f = max(1, int(round(max(h, w) / 160)))
    small = cv2.resize(grey, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
    bg = cv2.dilate(small, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)))
    bg = cv2.medianBlur(bg, 5)
    bg = cv2.resize(bg, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    return np.clip(grey.astype(np.float32) / np.maximum(bg, 1.0) * 255.0, 0, 255).astype(np.uint8)


_ORIG_GREY = P._to_grey


def _images():
    rng = np.random.default_rng(11)
    out = []
    for k in range(16):
        img = draw_signature(
            ["Alice Smith", "Bob Jones", "Chen Wei", "Dana Ruiz"][k % 4], k, 0.6, size=[(300, 800), (180, 500), (700, 950)][k % 3]
        )
        if k % 2:
            img = img.copy()
            ys, xs = rng.integers(0, img.shape[0], 80), rng.integers(0, img.shape[1], 80)
            img[ys, xs] = 0
            img = np.clip(img.astype(np.int16) + rng.normal(0, 5, img.shape), 0, 255).astype(np.uint8)
        if k % 4 == 1:  # a grey scan stored as RGB
            img = np.dstack([img] * 3)
        elif k % 4 == 3:  # a colour scan with a tint
            img = np.dstack([img, np.minimum(255, img.astype(np.int16) + 15).astype(np.uint8), img])
        out.append(img)
    out.append(np.full((300, 800), 245, np.uint8))  # blank
    out.append(np.full((300, 800), 25, np.uint8))  # dark
    out.append(rng.integers(235, 256, (300, 800)).astype(np.uint8))  # paper noise only
    return out


def _run(img):
    try:
        p = P.preprocess(img, document=False)
        return p.input.tobytes(), p.bbox, p.ink_fraction, p.region
    except BlankImageError as exc:
        return ("blank", str(exc))


def test_clean_pipeline_identical_to_the_reference_implementation(monkeypatch):
    images = _images()
    fast = [_run(i) for i in images]
    monkeypatch.setattr(P, "_threshold", _reference_threshold)
    monkeypatch.setattr(P, "_to_grey", _reference_grey)
    monkeypatch.setattr(P, "_flat_field", _reference_flat)
    ref = [_run(i) for i in images]
    assert fast == ref
    assert sum(1 for r in ref if r[0] == "blank") == 3  # the blank, dark and noise pages are refused


def test_one_pass_statistics_equal_opencv():
    """Paper median / std and ink mean from the joint histogram equal np.median / cv2.meanStdDev /
    cv2.mean on the same masks (bit for bit), so the blank-page decision cannot move."""
    rng = np.random.default_rng(5)
    for k in range(200):
        h, w = (int(v) for v in rng.integers(10, 300, 2))
        flat = np.clip(rng.normal(rng.uniform(100, 250), rng.uniform(1, 60), (h, w)), 0, 255).astype(np.uint8)
        mask = (rng.random((h, w)) < rng.uniform(0.01, 0.9)).astype(np.uint8)
        hist2 = cv2.calcHist([flat, mask], [0, 1], None, [256, 2], [0, 256, 0, 2]).astype(np.float64)
        levels = np.arange(256.0)
        n_paper = int(hist2[:, 0].sum())
        s = 1.0 / n_paper
        mean = float(hist2[:, 0] @ levels) * s
        sd = float(np.sqrt(max(float(hist2[:, 0] @ (levels * levels)) * s - mean * mean, 0.0)))
        m_ref, sd_ref = cv2.meanStdDev(flat, mask=1 - mask)
        assert (mean, sd) == (float(m_ref[0, 0]), float(sd_ref[0, 0]))
        assert float(hist2[:, 1] @ levels) * (1.0 / int(hist2[:, 1].sum())) == cv2.mean(flat, mask=mask)[0]


def test_small_clean_crop_skips_the_document_analysis(monkeypatch):
    img = draw_signature("Alice Smith", 3, 0.6, size=(300, 800))
    ref = P.preprocess(img, document=False)

    def boom(*a, **k):
        raise AssertionError("analyse must not run on a clean crop below the page size")

    monkeypatch.setattr(L, "analyse", boom)
    out = P.preprocess(img)
    assert out.input.tobytes() == ref.input.tobytes() and not out.document and out.region == ref.region
    # asked for explicitly, the document path still analyses
    with pytest.raises(AssertionError, match="analyse must not run"):
        P.preprocess(img, document=True)


def test_page_sized_image_still_gets_the_document_check(monkeypatch):
    img = draw_signature("Bob Jones", 4, 0.6, size=(600, P.DOCUMENT_MIN_SIDE))
    calls = []
    real = L.analyse

    def spy(image, score=True):
        calls.append(image.shape)
        return real(image, score=score)

    monkeypatch.setattr(L, "analyse", spy)
    out = P.preprocess(img)
    assert calls == [img.shape]
    assert out.input.tobytes() == P.preprocess(img, document=False).input.tobytes()  # still a clean crop


# ---------------------------------------------------------------------------------- audit index
def _lookup_plan(conn):
    from sigverify.store.audit import AUDIT_INDEXES  # noqa: F401

    q = (
        "EXPLAIN QUERY PLAN SELECT id, json_extract(details, '$.batch_item_key') FROM audit_verifications "
        "WHERE source = 'batch' AND json_extract(details, '$.batch_item_key') IN (?, ?)"
    )
    return " ".join(str(r[3]) for r in conn.execute(q, ("a", "b")))


def _entry(i):
    from sigverify.store.audit import VerificationEntry

    return VerificationEntry(
        f"q{i}.png",
        f"{i:064x}",
        "m@1",
        "0" * 64,
        "euclidean",
        [0.3],
        0.3,
        0.7,
        "genuine",
        "C1",
        0.4,
        0.5,
        [1],
        {"batch_item_key": f"k{i}"},
    )


def test_batch_key_lookup_uses_an_index_and_old_databases_get_it(tmp_path):
    from sigverify.store.audit import check_audit
    from sigverify.store.library import Library

    db = tmp_path / "lib.sqlite3"
    lib = Library(db, operator="t")
    assert "USING INDEX audit_verifications_batch_item_key" in _lookup_plan(lib._conn)
    ids = lib.audit.append_many([_entry(i) for i in range(5)], "batch", decide_automatically=True)
    lib.audit.append_many([_entry(99)], "cli")  # not a batch record: not in the partial index
    rows = lib._q(
        "SELECT id FROM audit_verifications WHERE source = 'batch' AND json_extract(details, '$.batch_item_key') IN (?, ?, ?)",
        ("k1", "k4", "k99"),
    )
    assert sorted(r[0] for r in rows) == [ids[1], ids[4]]
    lib.close()
    # a database from before the index (dropped here) gets it when opened; records and chain unchanged
    conn = sqlite3.connect(db)
    conn.execute("DROP INDEX audit_verifications_batch_item_key")
    conn.commit()
    before = conn.execute("SELECT * FROM audit_chain ORDER BY seq").fetchall()
    assert "USING INDEX" not in _lookup_plan(conn)
    conn.close()
    lib = Library(db, operator="t")
    assert "USING INDEX audit_verifications_batch_item_key" in _lookup_plan(lib._conn)
    assert [tuple(r) for r in lib._q("SELECT * FROM audit_chain ORDER BY seq")] == before
    lib.close()
    chk = check_audit(db)
    assert chk.ok and chk.verifications == 6


def test_read_only_database_opens_without_the_index(tmp_path):
    from sigverify.store.audit import _ensure_indexes
    from sigverify.store.library import Library

    db = tmp_path / "lib.sqlite3"
    Library(db, operator="t").close()
    conn = sqlite3.connect(db)
    conn.execute("DROP INDEX audit_verifications_batch_item_key")
    conn.commit()
    conn.close()
    ro = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    assert _ensure_indexes(ro) == []  # refused quietly: lookups scan, nothing breaks
    ro.close()
    rw = sqlite3.connect(db)
    assert _ensure_indexes(rw) == ["audit_verifications_batch_item_key"]
    assert _ensure_indexes(rw) == []
    rw.close()
