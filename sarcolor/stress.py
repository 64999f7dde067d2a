"""8-bit SAR inputs with pixels at or near 0, saved as JPEG: the inputs on which the detail term once
painted false colour (issue 25). Scenes from other processing chains look like this; the tests and
experiments/false_colour.py build them from real scenes."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

JPEG_QUALITY = 75


def jpeg_round_trip(sar: np.ndarray, quality: int = JPEG_QUALITY) -> np.ndarray:
    """An 8-bit grey image (H, W) as it reads back after saving as JPEG."""
    buffer = io.BytesIO()
    Image.fromarray(sar).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer))


def random_dark_pixels(sar: np.ndarray, share: float, rng: np.random.Generator, levels: int = 3) -> np.ndarray:
    """A copy of an 8-bit image with a random ``share`` of its pixels set to 0 .. levels - 1."""
    out = sar.copy()
    picked = rng.random(sar.shape) < share
    out[picked] = rng.integers(0, levels, int(picked.sum()))
    return out


def darkest_at_zero(sar: np.ndarray, share: float) -> np.ndarray:
    """A copy of an 8-bit image whose darkest ``share`` of pixels are 0 (a floor-clipped product)."""
    out = sar.copy()
    darkest = np.argsort(sar, axis=None, kind="stable")[: round(share * sar.size)]
    out.flat[darkest] = 0
    return out
