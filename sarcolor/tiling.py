"""Window plans and Hann-window blending for scene-scale inference, streamed strip by strip.

The model is any callable ``(N, 1, h, w) float32 -> (N, C, h, w) float32`` (torch or onnxruntime
behind it). Tiles overlap; every tile's prediction is weighted by a 2-D Hann window and the
output is sum(w * pred) / sum(w), so tile edges, where a convolution sees padding, carry almost
no weight and there is no seam. Only one strip of tiles is held in memory at a time.
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
from rasterio.windows import Window, WindowError, intersection

ModelFn = Callable[[np.ndarray], np.ndarray]
ReadFn = Callable[[Window], tuple[np.ndarray, np.ndarray]]
WriteFn = Callable[[int, np.ndarray, np.ndarray], None]


def hann_window(height: int, width: int) -> np.ndarray:
    """2-D Hann window, strictly positive (sampled at pixel centres) so no pixel gets zero weight."""
    wy = np.sin(np.pi * (np.arange(height) + 0.5) / height) ** 2
    wx = np.sin(np.pi * (np.arange(width) + 0.5) / width) ** 2
    return np.outer(wy, wx).astype(np.float32)


def clip_window(window: Window, height: int, width: int) -> Window | None:
    """The part of ``window`` inside a (height, width) image, or None where it lies wholly outside."""
    try:
        return intersection(window, Window(0, 0, width, height))
    except WindowError:
        return None


def mirror_window(inside: np.ndarray, window: Window, inside_window: Window) -> np.ndarray:
    """``window`` of an image whose part inside the image, ``inside``, is ``inside_window``: the part
    outside the image is the image mirrored at its edges.

    A constant fill outside the image would be a false context for every pixel near an edge (a model
    with a wide receptive field colours it as the fill's "land cover"): mirrored, the edge sees more
    of the same ground, so a crop of a scene gets the colours the whole scene gets there.
    """
    before_rows, before_cols = inside_window.row_off - window.row_off, inside_window.col_off - window.col_off
    after_rows = window.height - before_rows - inside.shape[0]
    after_cols = window.width - before_cols - inside.shape[1]
    return np.pad(inside, ((before_rows, after_rows), (before_cols, after_cols)), mode="symmetric")


def _round_up(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)


@dataclass(frozen=True)
class AxisPlan:
    """Tile offsets along one axis. Tiles start overlap//2 before the image so that its first and
    last pixels lie well inside a tile, not at a tile's zero-weight edge.

    ``origin`` is the image's first pixel on its map grid (the CRS's pixel lattice). Tiles are placed on
    that grid, at every ``stride`` px of it, not from the file's first pixel: two crops of one scene are
    then cut into the same tiles (apart from their own edges), and a model with strides (features every
    ``multiple`` px; with an overlap of at least that, the stride is a multiple of it) samples the same
    places in both. So the same place gets the same colour wherever the scene is cut. The price: a scene
    whose first pixel is off the grid gets at most one more row and column of tiles.
    """

    length: int
    tile: int
    overlap: int
    origin: int = 0
    grid: int = 0  # the map grid's period for the tiles' starts; 0: the stride

    @property
    def stride(self) -> int:
        return self.tile - self.overlap

    @property
    def offsets(self) -> list[int]:
        margin = self.overlap // 2
        first = -margin - self.origin % (self.grid or self.stride)  # origin + first + margin: on the grid
        count = max(1, math.ceil((self.length - first + margin - self.tile) / self.stride) + 1)
        return [first + i * self.stride for i in range(count)]


def plan_axis(length: int, tile: int, overlap: int, multiple: int, origin: int = 0) -> AxisPlan:
    """An overlap of at least the model's multiple is rounded down to a multiple of it, so every tile samples
    the same lattice (a smaller one is kept: a model with a coarse lattice, like pix2pix's 256 px, still gets
    its tiles blended). An image that fits one tile gets one smaller tile (no wasted padding), still starting
    on the grid."""
    if overlap < 0 or overlap >= tile:
        raise ValueError(f"overlap must be in [0, tile): got tile={tile}, overlap={overlap}")
    if overlap >= multiple:
        overlap -= overlap % multiple
    plan = AxisPlan(length, tile, overlap, origin)
    if len(plan.offsets) > 1 or tile <= multiple:
        return plan
    small = max(overlap + multiple, _round_up(length + overlap // 2 - plan.offsets[0], multiple))
    return AxisPlan(length, min(tile, small), overlap, origin, grid=plan.stride)


@dataclass(frozen=True)
class TilePlan:
    rows: AxisPlan
    cols: AxisPlan

    @property
    def tile_count(self) -> int:
        return len(self.rows.offsets) * len(self.cols.offsets)


def plan_tiles(
    height: int, width: int, tile: int, overlap: int, multiple: int = 16, origin: tuple[int, int] = (0, 0),
) -> TilePlan:
    """Tiles over a (height, width) image whose first pixel is ``origin`` (row, col) on its map grid."""
    if tile % multiple:
        raise ValueError(f"tile size must be a multiple of {multiple}, got {tile}")
    return TilePlan(
        plan_axis(height, tile, overlap, multiple, origin[0]), plan_axis(width, tile, overlap, multiple, origin[1])
    )


@dataclass(frozen=True)
class AxisWindow:
    """The tiles of ``plan`` that reach pixels [start, start + length), offsets counted from ``start``.

    ``blend_tiles`` over it gives the pixels the whole plan gives there, bit for bit: the same tiles
    (anchored on the scene's map grid, not on the window), summed in the same order. So a scene cut
    into windows (Dask chunks) is coloured as it is whole, without a seam at the cuts."""

    plan: AxisPlan
    start: int
    length: int

    @property
    def tile(self) -> int:
        return self.plan.tile

    @property
    def stride(self) -> int:
        return self.plan.stride

    @property
    def offsets(self) -> list[int]:
        end = self.start + self.length
        return [o - self.start for o in self.plan.offsets if o < end and o + self.tile > self.start]


def window_plan(plan: TilePlan, window: Window) -> TilePlan:
    """The part of ``plan`` that colours ``window`` of its image, in the window's coordinates."""
    return TilePlan(
        AxisWindow(plan.rows, window.row_off, window.height), AxisWindow(plan.cols, window.col_off, window.width)
    )


def _predict_strip(model: ModelFn, strip: np.ndarray, cols: AxisPlan, batch_size: int) -> Iterator[tuple[int, np.ndarray]]:
    """(start column in the strip, prediction) per tile, a batch at a time: a strip is never held whole."""
    starts = [x - cols.offsets[0] for x in cols.offsets]
    for i in range(0, len(starts), batch_size):
        batch = starts[i : i + batch_size]
        outputs = model(np.stack([strip[:, s : s + cols.tile] for s in batch])[:, None])
        yield from zip(batch, outputs)


class StripBlender:
    """One strip of tiles (a tile row of the plan) accumulated with Hann weights; the rows no later strip
    reaches are taken out, and the rows the next strip overlaps are kept for it.

    Each tile's weights are normalised in advance (``AxisWeights``), so the strip holds finished values and
    needs no division. A tile's pixels that no earlier tile reached are assigned, not added (the strip is
    never cleared), and copied where the tile is the only one (most of it at an overlap of 32, where the
    normalised weight is exactly 1): only the overlapped bands are multiplied."""

    def __init__(self, plan: TilePlan, channels: int) -> None:
        rows, cols = plan.rows, plan.cols
        self.rows, self.cols = rows, cols
        self.margin = -cols.offsets[0]
        span = cols.offsets[-1] + cols.tile - cols.offsets[0]
        self.acc = np.empty((channels, rows.tile, span), np.float32)
        self.row_weights = axis_weights(rows)
        self.col_weights = {offset - cols.offsets[0]: w for offset, w in zip(cols.offsets, axis_weights(cols))}
        self.strip = 0

    def add(self, start: int, pred: np.ndarray) -> None:
        """Add one tile's prediction (C, tile, tile), ``start`` columns from the strip's first column."""
        rw, cw = self.row_weights[self.strip], self.col_weights[start]
        acc = self.acc[:, :, start : start + self.cols.tile]
        top, left = rw.fresh, cw.fresh
        acc[:, :top] += pred[:, :top] * rw.weight[:top, None] * cw.weight  # rows an earlier strip reached
        acc[:, top:, :left] += pred[:, top:, :left] * rw.weight[top:, None] * cw.weight[:left]  # the previous tile's
        fresh = acc[:, top:, left:]
        fresh[...] = pred[:, top:, left:]
        for band in rw.shared_bands(top):
            fresh[:, band] *= rw.weight[top:][band, None]
        for band in cw.shared_bands(left):
            fresh[:, :, band] *= cw.weight[left:][band]

    def final_rows(self, index: int) -> tuple[slice, np.ndarray | None]:
        """The strip ``index``'s rows no later strip reaches, as (rows of the strip, their blended values (C, n, W)
        or None when none of them is inside the image); then keeps only the rows the next strip overlaps."""
        y = self.rows.offsets[index]
        done = self.rows.stride if index + 1 < len(self.rows.offsets) else self.rows.tile
        lo, hi = max(0, -y), min(done, self.rows.length - y)
        values = None
        if hi > lo:
            values = self.acc[:, lo:hi, self.margin : self.margin + self.cols.length].copy()
        kept = self.rows.tile - done
        self.acc[:, :kept] = self.acc[:, done:]
        self.strip = index + 1
        return slice(lo, hi), values


@dataclass(frozen=True)
class AxisWeights:
    """One tile's blending weights along an axis: its Hann weights over every tile's sum there (the 2-D window is
    the outer product of the 1-D ones and the tiles form a grid, so the weights are normalised axis by axis),
    exactly 1 on [alone_start, alone_end), where no other tile reaches; ``fresh``: the first position no earlier
    tile reaches."""

    weight: np.ndarray
    alone_start: int
    alone_end: int
    fresh: int

    def shared_bands(self, start: int) -> list[slice]:
        """The ranges from ``start`` on that other tiles also reach, relative to ``start``."""
        bands = [(start, self.alone_start), (max(start, self.alone_end), len(self.weight))]
        return [slice(a - start, b - start) for a, b in bands if b > a]


def axis_weights(axis: AxisPlan) -> list[AxisWeights]:
    """Every tile's ``AxisWeights`` along ``axis``. The sums run over the tiles in order, so a window plan
    (``AxisWindow``) gets the whole plan's weights bit for bit inside its window."""
    hann = hann_window(1, axis.tile)[0]
    starts = [offset - axis.offsets[0] for offset in axis.offsets]
    total = np.zeros(starts[-1] + axis.tile, np.float32)
    for start in starts:
        total[start : start + axis.tile] += hann
    out, reached = [], 0
    for start in starts:
        weight = hann / total[start : start + axis.tile]
        alone = np.flatnonzero(weight == 1.0)
        first, end = (int(alone[0]), int(alone[-1]) + 1) if alone.size else (0, 0)
        out.append(AxisWeights(weight, first, end, min(max(reached - start, 0), axis.tile)))
        reached = max(reached, start + axis.tile)
    return out


def blend_tiles(
    model: ModelFn,
    read: ReadFn,
    write: WriteFn,
    plan: TilePlan,
    batch_size: int = 2,
    on_tiles_done: Callable[[int], None] | None = None,
) -> None:
    """Run ``model`` over the whole plan and emit finished rows through ``write``.

    ``read(window)`` returns model input and validity for any ``rasterio.windows.Window``, also one
    reaching outside the image (filled there); ``write(row_off, values (C, n, W) float32, valid (n, W))`` receives each
    band of finished rows exactly once, top to bottom. The next strip is read in a background
    thread while the model runs, and finished rows are written in another: one strip read ahead and
    one written behind at most, so memory stays bounded.
    """
    rows, cols = plan.rows, plan.cols
    span = cols.offsets[-1] + cols.tile - cols.offsets[0]
    margin = -cols.offsets[0]
    row_offsets = rows.offsets
    blender = None

    def read_strip(y: int):
        return read(Window(cols.offsets[0], y, span, rows.tile))

    with ThreadPoolExecutor(1) as reader, ThreadPoolExecutor(1) as writer:
        pending_read = reader.submit(read_strip, row_offsets[0])
        pending_write = None
        for i, y in enumerate(row_offsets):
            strip, valid = pending_read.result()
            if i + 1 < len(row_offsets):
                pending_read = reader.submit(read_strip, row_offsets[i + 1])
            for s, pred in _predict_strip(model, strip, cols, batch_size):
                blender = blender or StripBlender(plan, pred.shape[0])
                blender.add(s, pred)
            if on_tiles_done:
                on_tiles_done(len(cols.offsets))
            if pending_write is not None:  # before the next rows are taken out: one strip's values in memory at a time
                pending_write.result()
                pending_write = None
            done, values = blender.final_rows(i)
            if values is not None:
                pending_write = writer.submit(write, y + done.start, values, valid[done, margin : margin + cols.length].copy())
        if pending_write is not None:
            pending_write.result()


def blend_to_array(model: ModelFn, read: ReadFn, plan: TilePlan, batch_size: int = 2) -> np.ndarray:
    """``blend_tiles`` into memory: the whole (C, H, W) float32 prediction (for scenes that fit in memory)."""
    rows: list[np.ndarray] = []
    blend_tiles(model, read, lambda row, values, valid: rows.append(values), plan, batch_size)
    return np.concatenate(rows, axis=1)


def predict_array(
    model: ModelFn, sar: np.ndarray, tile: int = 512, overlap: int = 32, multiple: int = 16, batch_size: int = 2,
    origin: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """Blend ``model`` over an in-memory (H, W) model-input array whose first pixel is ``origin`` on its map
    grid; returns (C, H, W) float32."""
    height, width = sar.shape

    def read(window: Window) -> tuple[np.ndarray, np.ndarray]:
        inside = clip_window(window, height, width)  # tiles start before the image: never wholly outside
        part = sar[inside.toslices()].astype(np.float32, copy=False)
        return mirror_window(part, window, inside), np.ones((window.height, window.width), bool)

    return blend_to_array(model, read, plan_tiles(height, width, tile, overlap, multiple, origin), batch_size)
