"""Colourise a scene window by window: the whole scene in memory is one window, a Dask array one per chunk.

A window is coloured by the tiles of the whole scene's plan that reach it (``tiling.window_plan``), read
through the scene's reader, so it gets the pixels the CLI writes there: the same tiles, anchored on the
map grid, the same scaling (the whole scene's 99 % quantile, measured once before any chunk runs) and
the same mirroring at the scene's edges. A Dask chunk therefore needs its neighbours' pixels up to one
tile deep (``dask.array.map_overlap``), and chunks join without a seam.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
from rasterio.windows import Window

from sarcolor.infer import ColorizeOptions, channels_needed, error_values, to_uint8
from sarcolor.readers.raster import SarReader
from sarcolor.reference.fill import REACH, DetachedReference, filled_colours
from sarcolor.tiling import TilePlan, blend_tiles, window_plan


@dataclass(frozen=True)
class Colours:
    rgb: np.ndarray  # (3, h, w) uint8, 0 where there is no data
    valid: np.ndarray  # (h, w) bool: where the input has data
    error: np.ndarray | None  # (h, w) float32 expected colour error, NaN where there is no data; None unless asked


def colorize_window(
    model, reader: SarReader, plan: TilePlan, window: Window, confidence: bool = False, batch_size: int = 4,
) -> Colours:
    """The colours of ``window`` of the scene ``reader`` reads, tiled by ``plan`` (the whole scene's)."""
    height, width = window.height, window.width
    rgb = np.zeros((3, height, width), np.uint8)
    valid = np.zeros((height, width), bool)
    error = np.full((height, width), np.nan, np.float32) if confidence else None

    def read(part: Window):
        return reader.read(Window(part.col_off + window.col_off, part.row_off + window.row_off, part.width, part.height))

    def write(row: int, values: np.ndarray, valid_rows: np.ndarray) -> None:
        rows = slice(row, row + values.shape[1])
        if error is not None:
            error[rows] = error_values(values[3], valid_rows, model.error_calibration)[0]
        rgb[:, rows] = to_uint8(values[:3], valid_rows)
        valid[rows] = valid_rows

    net = channels_needed(model, ColorizeOptions(confidence=confidence))
    blend_tiles(net, read, write, window_plan(plan, window), batch_size)
    return Colours(rgb, valid, error)


def halo(plan: TilePlan) -> dict[int, int]:
    """How far past its chunk a window's tiles reach, per axis: one tile."""
    return {0: plan.rows.tile, 1: plan.cols.tile}


def _detached(reader: SarReader) -> SarReader:
    """``reader`` without its pixels, for Dask tasks: each carries the scene's scaling and gets its own chunk."""
    detached = copy.copy(reader)
    detached.src = reader.src.without_data()
    return detached


def _chunk_reader(reader: SarReader, block: np.ndarray, origin: tuple[int, int]) -> SarReader:
    chunk_reader = copy.copy(reader)
    chunk_reader.src = reader.src.holding(block, origin)
    return chunk_reader


def fill_chunks(rgb, valid, reference: DetachedReference):
    """Lazily, ``--fill`` on the lazy colours ``rgb`` (3, H, W) uint8 (``valid``: (H, W) bool or None): each chunk
    with the reference's pixels ``REACH`` around it, so that chunks join without a seam."""
    import dask.array as da

    planes = rgb if valid is None else da.concatenate([rgb, valid[None].astype(np.uint8)])
    planes = planes.rechunk({0: -1, **{axis: da.overlap.ensure_minimum_chunksize(REACH, planes.chunks[axis]) for axis in (1, 2)}})
    return da.map_overlap(
        _fill_chunk, planes, depth={0: 0, 1: REACH, 2: REACH}, boundary="none", trim=False,
        chunks=((3,), *planes.chunks[1:]), dtype=np.uint8, meta=np.empty((0, 0, 0), np.uint8), reference=reference,
    )


def _fill_chunk(block: np.ndarray, reference: DetachedReference, block_info=None) -> np.ndarray:
    """Runs on a worker: one chunk's colours filled, from the chunk and its halo (``block``: RGB, and valid)."""
    _, (row0, row1), (col0, col1) = block_info[None]["array-location"]
    top, left = row0 - (REACH if row0 else 0), col0 - (REACH if col0 else 0)  # boundary="none": no halo at the edges
    valid = block[3].astype(bool) if len(block) == 4 else None
    with reference.open() as image:
        out = filled_colours(block[:3], valid, image, Window(left, top, block.shape[2], block.shape[1]))
    return out[:, row0 - top : row1 - top, col0 - left : col1 - left]


def valid_chunks(data, reader: SarReader):
    """Lazily, where a 2-D Dask array read by ``reader`` has data (bool, chunked as ``data``); no model runs."""
    return data.map_blocks(_valid_chunk, reader=_detached(reader), dtype=bool, meta=np.empty((0, 0), bool))


def _valid_chunk(block: np.ndarray, reader: SarReader, block_info=None) -> np.ndarray:
    (row0, row1), (col0, col1) = block_info[None]["array-location"]
    return _chunk_reader(reader, block, (row0, col0)).read(Window(col0, row0, col1 - col0, row1 - row0))[1]


def colorize_chunks(data, model, reader: SarReader, plan: TilePlan, confidence: bool = False, batch_size: int = 4):
    """Lazy colours of a 2-D Dask array read by ``reader`` (its scaling already measured on the whole array):
    (3, H, W) uint8, or with ``confidence`` (4, H, W) float32 whose last band is the expected error."""
    import dask.array as da

    depth = halo(plan)
    # A chunk narrower than the halo would need pixels beyond its neighbour.
    data = data.rechunk(tuple(da.overlap.ensure_minimum_chunksize(depth[axis], data.chunks[axis]) for axis in (0, 1)))
    bands, dtype = (4, np.float32) if confidence else (3, np.uint8)
    return da.map_overlap(
        _colorize_chunk, data, depth=depth, boundary="none", trim=False, new_axis=0, chunks=((bands,), *data.chunks),
        dtype=dtype, meta=np.empty((0, 0, 0), dtype), model=model, reader=_detached(reader), plan=plan, confidence=confidence,
        batch_size=batch_size,
    )


def _colorize_chunk(block: np.ndarray, model, reader: SarReader, plan: TilePlan, confidence: bool, batch_size: int,
                    block_info=None) -> np.ndarray:
    """Runs on a worker: the colours of one chunk, from the chunk and its halo (``block``)."""
    (row0, row1), (col0, col1) = block_info[None]["array-location"][1:]
    depth = halo(plan)
    # boundary="none": no halo at the scene's edges, where the reader mirrors the scene instead.
    origin = (row0 - (depth[0] if row0 else 0), col0 - (depth[1] if col0 else 0))
    colours = colorize_window(model, _chunk_reader(reader, block, origin), plan, Window(col0, row0, col1 - col0, row1 - row0), confidence, batch_size)
    if colours.error is None:
        return colours.rgb
    return np.concatenate([colours.rgb.astype(np.float32), colours.error[None]])
