"""Scan-like augmentation.

``augment_input`` works on a preprocessed network input (ink = 255 on 0) and is cheap enough for every
training step: small affine, stroke width, blur, speckle, a ruled line, partial occlusion, JPEG.
``augment_scan`` works on a raw grey scan *before* preprocessing (tinted / uneven paper, ruled lines,
noise, blur, JPEG, skew, ink colour and darkness), so training also sees what the real preprocessing
makes of a messy scan.
"""

from __future__ import annotations

import cv2
import numpy as np


def _affine(img: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    h, w = img.shape
    ang = rng.uniform(-8, 8) * strength
    sc = np.exp(rng.uniform(-0.15, 0.1) * strength)
    shear = rng.uniform(-0.2, 0.2) * strength
    tx, ty = rng.uniform(-0.05, 0.05, 2) * np.array([w, h]) * strength
    m = cv2.getRotationMatrix2D((w / 2, h / 2), ang, sc)
    m[0, 1] += shear
    m[0, 2] += tx - shear * h / 2
    m[1, 2] += ty
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)


def augment_input(img: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """One random scan-like variant of a network input (uint8, ink 255). Same shape and dtype."""
    out = img
    if rng.random() < 0.9:
        out = _affine(out, rng, strength)
    r = rng.random()
    if r < 0.25:
        out = cv2.dilate(out, np.ones((2, 2), np.uint8))
    elif r < 0.4:
        out = cv2.erode(out, np.ones((2, 2), np.uint8)) if (out > 127).mean() > 0.01 else out
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (3, 3), rng.uniform(0.3, 1.0))
    if rng.random() < 0.15:
        out = out.copy()
        h, w = out.shape
        y = int(rng.uniform(0.55, 0.9) * h)
        x0, x1 = sorted(rng.integers(0, w, 2))
        cv2.line(out, (int(x0 * 0.3), y), (int(w - (w - x1) * 0.3), y + int(rng.integers(-3, 4))), 255, 1)
    if rng.random() < 0.2:
        out = out.copy()
        h, w = out.shape
        n = int(rng.integers(5, 40))
        out[rng.integers(0, h, n), rng.integers(0, w, n)] = 255
    if rng.random() < 0.15:
        out = out.copy()
        h, w = out.shape
        ow, oh = int(w * rng.uniform(0.05, 0.15)), int(h * rng.uniform(0.2, 0.5))
        x, y = int(rng.integers(0, w - ow)), int(rng.integers(0, h - oh))
        out[y : y + oh, x : x + ow] = 0
    if rng.random() < 0.15:
        q = int(rng.integers(30, 80))
        ok, enc = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            out = cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE)
    return out


def augment_scan(grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A messy-scan variant of a raw grey scan (paper light, ink dark), still uint8 grey.

    Ink is re-rendered from a rough ink mask at a random darkness, paper gets a random tint level and
    gradient, then optional printed line, speckle, blur, rotation and JPEG artefacts.
    """
    g = grey.astype(np.float32)
    h, w = g.shape
    bg_level = np.percentile(g, 90)
    ink = np.clip((bg_level - g) / max(bg_level - g.min(), 1.0), 0, 1)
    paper = rng.uniform(170, 255)
    grad = np.linspace(0, rng.uniform(-40, 40), w)[None, :] + np.linspace(0, rng.uniform(-30, 30), h)[:, None]
    paper_img = np.clip(paper + grad, 120, 255)
    ink_level = rng.uniform(0, 110)
    out = paper_img * (1 - ink) + ink_level * ink
    if rng.random() < 0.4:  # printed signature line through the lower part
        y = int(rng.uniform(0.6, 0.95) * h)
        cv2.line(out, (0, y), (w - 1, y + int(rng.integers(-4, 5))), float(rng.uniform(40, 140)), int(rng.integers(1, 4)))
    if rng.random() < 0.3:  # guilloche-like light pattern
        xs = np.arange(w)[None, :]
        ys = np.arange(h)[:, None]
        pat = (np.sin(xs / rng.uniform(3, 9) + np.sin(ys / rng.uniform(5, 15)) * 3) > 0.7).astype(np.float32)
        out = out - pat * rng.uniform(10, 40)
    if rng.random() < 0.4:
        out = out + rng.normal(0, rng.uniform(2, 12), out.shape)
    if rng.random() < 0.3:
        n = int(rng.integers(20, 200))
        out[rng.integers(0, h, n), rng.integers(0, w, n)] = rng.uniform(0, 100)
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.5))
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-4, 4), 1.0)
        out = cv2.warpAffine(out, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if rng.random() < 0.4:
        ok, enc = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 85))])
        if ok:
            out = cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE)
    return out
