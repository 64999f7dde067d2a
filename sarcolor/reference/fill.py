"""``--fill``: the reference's clear pixels kept as they are, the SAR's colours only in its gaps (clouds, shadows,
nodata), joined without a seam.

In a gap the SAR's colours are moved toward the reference's by the local mean difference between the two on the
clear pixels around it, a correction that fades over a few ``FEATHER`` widths into the gap: at a cloud's edge the
SAR's colours meet the reference's level, deep inside they are the fitted colours alone. Near-white clear pixels
(a bright roof, a wisp of cloud the cloud test let through) are left out of the correction: spread into a gap they
would paint it cloud-white. Rows are streamed: each is written once the rows within the correction's reach below it
have arrived.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.windows import Window
from scipy import ndimage

from sarcolor.errors import SarcolorError
from sarcolor.reference.image import ReferenceImage

FEATHER = 4.0  # pixels: the Gaussian width of the correction at a gap's edge
NEAR_WHITE = 0.85  # clear pixels whose darkest channel is above this (stretched, 0..1) do not set the correction
REACH = int(3 * FEATHER)  # rows the correction reaches
FADE = 0.05  # the correction is the local mean difference x clear share / (clear share + FADE): 0 far from clear pixels


def filled(sar_rgb: np.ndarray, reference_rgb: np.ndarray, clear: np.ndarray) -> np.ndarray:
    """``reference_rgb`` where ``clear``, elsewhere ``sar_rgb`` plus the faded correction (all (3, h, w) / (h, w))."""
    weight = (clear & (reference_rgb.min(0) <= NEAR_WHITE)).astype(np.float32)

    def smooth(a: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(a, FEATHER, mode="nearest", truncate=REACH / FEATHER)

    near = smooth(weight)
    out = np.empty_like(sar_rgb)
    for c in range(3):
        correction = smooth(weight * (reference_rgb[c] - sar_rgb[c])) / (near + FADE)
        out[c] = np.where(clear, reference_rgb[c], np.clip(sar_rgb[c] + correction, 0, 1))
    return out


def check_fill(fill: bool, reference) -> None:
    if fill and not reference:
        raise SarcolorError("--fill needs --reference: the optical image whose gaps the SAR fills")


def filled_colours(rgb: np.ndarray, valid: np.ndarray | None, reference: ReferenceImage, window: Window) -> np.ndarray:
    """8-bit colours (3, h, w) of ``window`` of the SAR grid with the reference's clear pixels kept and its gaps
    filled from ``rgb`` (the 8-bit fitted colours there); black where ``valid`` (None: everywhere) is False."""
    colours, clear = reference.read(window)
    out = np.rint(np.clip(filled(rgb.astype(np.float32) / 255, colours, clear), 0, 1) * 255).astype(np.uint8)
    if valid is not None:
        out[:, ~valid] = 0
    return out


@dataclass(frozen=True)
class DetachedReference:
    """A reference as a Dask task carries it: opened again on each chunk (``open()``), with the stretch measured on
    the whole scene once."""

    path: Path
    sar: object  # the SAR grid, without its pixels
    bands: tuple[int, ...] | None
    scale: np.ndarray

    def open(self) -> ReferenceImage:
        return ReferenceImage.open(self.path, self.sar, self.bands, scale=self.scale)


class GapFiller:
    """A ``write(row, values, valid)`` for ``tiling.blend_tiles`` that fills ``write``'s colours from the reference;
    call ``finish()`` after the last rows."""

    def __init__(self, reference: ReferenceImage, write, width: int) -> None:
        self.reference, self.write, self.width = reference, write, width
        self.start = 0  # the buffer's first row
        self.done = 0  # the first row not yet written
        self.values: np.ndarray | None = None
        self.valid: np.ndarray | None = None

    def __call__(self, row: int, values: np.ndarray, valid: np.ndarray) -> None:
        if self.values is None:
            self.start = self.done = row
            self.values, self.valid = values, valid
        else:
            self.values = np.concatenate([self.values, values], 1)
            self.valid = np.concatenate([self.valid, valid], 0)
        self._emit(self.start + self.values.shape[1] - REACH)

    def finish(self) -> None:
        if self.values is not None:
            self._emit(self.start + self.values.shape[1])

    def _emit(self, until: int) -> None:
        """Write rows [done, until), computed with the buffered rows around them; keep REACH rows above for the next."""
        if until <= self.done:
            return
        end = self.start + self.values.shape[1]
        reference, clear = self.reference.read(Window(0, self.start, self.width, end - self.start))
        rgb = filled(self.values[:3], reference, clear)
        rows = slice(self.done - self.start, until - self.start)
        values = np.concatenate([rgb[:, rows], self.values[3:, rows]]) if len(self.values) > 3 else rgb[:, rows]
        self.write(self.done, np.ascontiguousarray(values), self.valid[rows].copy())
        self.done = until
        keep = max(self.start, until - REACH)
        self.values, self.valid = self.values[:, keep - self.start :], self.valid[keep - self.start :]
        self.start = keep
