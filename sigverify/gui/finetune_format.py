"""Display helpers of the fine-tuning wizard: preview thumbnails before / after preprocessing and the
before/after accuracy text. Qt-free functions (numpy / OpenCV) kept beside the GUI that shows them."""

from __future__ import annotations

import math

import numpy as np


def preview_samples(report, n: int = 6, seed: int = 0, thumb_height: int = 120) -> list[dict]:
    """A few images before (raw scan, downscaled) and after preprocessing, for the wizard's preview."""
    import cv2

    from sigverify.imaging.load import load_image

    c = report.cached
    if not len(c.images):
        return []
    rng = np.random.default_rng(seed)
    # one image per writer first, then fill up
    order = []
    seen = set()
    for i in rng.permutation(len(c.images)):
        if c.writers[i] not in seen:
            seen.add(c.writers[i])
            order.append(int(i))
    order += [int(i) for i in rng.permutation(len(c.images)) if int(i) not in order]
    out = []
    for i in order[:n]:
        try:
            grey = cv2.cvtColor(load_image(str(c.paths[i])), cv2.COLOR_RGB2GRAY)
        except Exception:  # noqa: BLE001 - preview only
            continue
        h, w = grey.shape
        s = thumb_height / max(h, 1)
        raw = cv2.resize(grey, (max(1, int(w * s)), thumb_height), interpolation=cv2.INTER_AREA)
        out.append(
            {
                "path": str(c.paths[i]),
                "writer": str(c.writers[i]),
                "genuine": bool(c.genuine[i]),
                "raw": raw,
                "preprocessed": 255 - c.images[i],
            }
        )  # show dark ink on white
    return out


def metrics_text(result) -> str:
    """Held-out before/after figures of a ``FinetuneResult`` as a few lines of text."""
    if result.before is None or result.after is None:
        return "no held-out writers: before/after accuracy not measured"
    b, a = result.before, result.after
    return (
        f"held-out writers: {a.writers}\n"
        f"  skilled-forgery EER  base {100 * b.eer:5.1f}%  ->  fine-tuned {100 * a.eer:5.1f}%\n"
        f"  random-forgery EER   base {100 * b.eer_random:5.1f}%  ->  fine-tuned {100 * a.eer_random:5.1f}%\n"
        f"  at the threshold: FAR {_pct(b.far)} / FRR {_pct(b.frr)} (base)  ->  "
        f"FAR {_pct(a.far)} / FRR {_pct(a.frr)} (fine-tuned, recalibrated)"
    )


def _pct(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{100 * x:.1f}%"


__all__ = ["preview_samples", "metrics_text"]
