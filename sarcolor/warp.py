"""Putting an output on a map grid (``--warp``): the target grid, and an RGB GeoTIFF or a confidence map
reprojected onto it block by block, through its transform or, for GCPs, a thin-plate spline through every one."""
from __future__ import annotations

import collections
import math
import os
import queue
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.transform import GCPTransformer
from rasterio.warp import calculate_default_transform
from rasterio.warp import transform as transform_points
from rasterio.windows import Window

from sarcolor.errors import SarcolorError
from sarcolor.io import READ_THROUGH_CACHE_BYTES, error_map_profile, geotiff_profile


def parse_crs(text: str) -> CRS:
    try:
        with rasterio.Env(CPL_LOG=os.devnull):  # PROJ would also print its own error line
            return CRS.from_user_input(text)
    except CRSError:
        raise SarcolorError(f"--warp {text!r} is not a CRS rasterio knows (try EPSG:4326 or EPSG:32633)") from None


@dataclass(frozen=True)
class WarpTarget:
    """Where ``--warp`` puts an output: a CRS and, if given, a pixel size in its units (on a grid aligned to it)."""

    crs: CRS
    resolution: float | None = None


def warped_grid(src: rasterio.DatasetReader, target: WarpTarget, **georef) -> tuple[Affine, int, int]:
    """(transform, width, height) of ``src`` in ``target``: GDAL's suggestion, or at the target's resolution with
    the origin on a multiple of it (neighbouring scenes share one grid). ``georef``: the source's transform and CRS,
    or its GCPs (rasterio.warp's source keywords)."""
    gcps = georef.get("gcps")
    transformer = {k: v for k, v in georef.items() if k.isupper()}
    bounds = {} if gcps else dict(zip(("left", "bottom", "right", "top"), src.bounds))
    resolution = {"resolution": target.resolution} if target.resolution else {}
    transform, width, height = calculate_default_transform(
        georef["src_crs"], target.crs, src.width, src.height, gcps=gcps, **bounds, **resolution, **transformer,
    )
    if not target.resolution:
        return transform, width, height
    res = target.resolution
    left, top = math.floor(transform.c / res) * res, math.ceil(transform.f / res) * res
    right, bottom = transform.c + width * res, transform.f - height * res
    return Affine(res, 0, left, 0, -res, top), math.ceil((right - left) / res), math.ceil((top - bottom) / res)


def to_source_pixels(src: rasterio.DatasetReader, georef: dict, dst_transform: Affine, dst_crs: CRS, cols: np.ndarray,
                     rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fractional source (row, col) of destination pixel positions (col, row), through the source's GCPs (thin-plate
    spline) or its CRS and transform."""
    xs, ys = dst_transform * (cols, rows)
    if georef.get("gcps"):
        lons, lats = transform_points(dst_crs, georef["src_crs"], xs, ys)
        with GCPTransformer(georef["gcps"], tps=True) as to_pixels:
            return to_pixels.rowcol(lons, lats, op=float)
    src_xs, src_ys = transform_points(dst_crs, src.crs, xs, ys)
    return rasterio.transform.rowcol(src.transform, src_xs, src_ys, op=float)


# Source positions are computed exactly (GCP thin-plate spline, or CRS transform) every POSITION_STEP destination
# pixels, once for the whole grid, and interpolated bilinearly between: on a GRD's real geolocation grid within
# 0.31 px of the exact spline, where GDAL's approximate transformer erred by over a pixel at 1 % of the places.
POSITION_STEP = 32
BLOCK = 2048  # destination blocks: square, since a full-width strip of a rotated scene needs a source window many times its size
WARP_THREADS = os.cpu_count() or 1  # blocks warped at once (the warp runs once the colours are written: every core is free)


class SourcePositions:
    """Where each destination pixel of a grid falls in the source: the exact positions on a lattice every
    POSITION_STEP px, computed once, and a block's pixels interpolated from them bilinearly."""

    def __init__(self, src: rasterio.DatasetReader, georef: dict, transform: Affine, crs: CRS, width: int, height: int,
                 step: int = POSITION_STEP) -> None:
        self.step = step
        xs, ys = np.meshgrid(np.arange(0, width + step, step, dtype=float), np.arange(0, height + step, step, dtype=float))
        rows, cols = to_source_pixels(src, georef, transform, crs, xs.ravel(), ys.ravel())
        self.rows, self.cols = (np.asarray(v, float).reshape(xs.shape) for v in (rows, cols))

    def block(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Source (row, col) float32 of the pixel centres of ``window`` (its offsets multiples of the step), pixel
        centres at integers (OpenCV's convention)."""
        step = self.step
        top, left = window.row_off // step, window.col_off // step
        lattice = (slice(top, top + window.height // step + 2), slice(left, left + window.width // step + 2))
        return tuple(_interpolated(v[lattice], window.height, window.width, step) - np.float32(0.5) for v in (self.rows, self.cols))


def _interpolated(lattice: np.ndarray, height: int, width: int, step: int) -> np.ndarray:
    """Values every ``step`` px (at 0, step, 2 step, ...) at the (height, width) pixel centres, bilinearly, float32.
    OpenCV's resize by ``step`` puts output pixel j at lattice position (j + 0.5) / step - 0.5: pixel i is j = i +
    step / 2."""
    ny, nx = lattice.shape
    dense = cv2.resize(lattice.astype(np.float32), (nx * step, ny * step), interpolation=cv2.INTER_LINEAR)
    return dense[step // 2 : step // 2 + height, step // 2 : step // 2 + width]


def _source_window(rows: np.ndarray, cols: np.ndarray, height: int, width: int) -> Window | None:
    """The source pixels that bilinear sampling at (rows, cols) reads, within a (height, width) source; None where
    every position lies outside it (a block of the corners around a rotated swath)."""
    top, left = max(int(np.floor(rows.min())), 0), max(int(np.floor(cols.min())), 0)
    bottom, right = min(int(np.floor(rows.max())) + 2, height), min(int(np.floor(cols.max())) + 2, width)
    return Window(left, top, right - left, bottom - top) if bottom > top and right > left else None


def remap_weighted(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """OpenCV's bilinear remap of ``image`` (h, w, C), its last channel the validity (255 or 1.0 where valid) and
    the others already 0 where invalid, at source positions (rows, cols); outside the image counts as invalid.
    Weights are in 1/32 px (OpenCV's fixed point), colours within a level of exact bilinear sampling."""
    h, w = image.shape[:2]
    np.clip(cols, -2, w + 1, out=cols)  # OpenCV's fixed-point maps hold 16-bit positions
    np.clip(rows, -2, h + 1, out=rows)
    xy, fraction = cv2.convertMaps(cols, rows, cv2.CV_16SC2)
    return cv2.remap(image, xy, fraction, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def rgb_block(src: rasterio.DatasetReader, window: Window, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One destination block of an RGB raster with a mask, bilinear: (RGB (3, h, w) uint8, mask (h, w) uint8). A
    pixel is covered when at least half its weight falls on valid pixels; its colour is the valid ones' average, so
    no-data never darkens its neighbours."""
    rgba = np.empty((window.height, window.width, 4), np.uint8)
    bands = np.moveaxis(rgba, -1, 0)
    src.read(window=window, out=bands[:3])
    src.read_masks(1, window=window, out=bands[3])
    pixels = rgba.view(np.uint32)  # R, G, B, mask (0 or 255) in one word: zero the colours of masked pixels at once
    pixels &= (pixels >> 24) * np.uint32(0x01010101)
    out = remap_weighted(rgba, rows - window.row_off, cols - window.col_off)
    rgb, coverage = np.moveaxis(out[..., :3], -1, 0), out[..., 3]
    edge = np.nonzero(coverage - np.uint8(1) < 254)  # 1 to 254, along the data's outline: divided by the valid weight
    rgb[:, edge[0], edge[1]] = np.minimum(np.rint(rgb[:, edge[0], edge[1]] * (255.0 / coverage[edge])), 255)
    pixels = out.view(np.uint32)
    pixels &= (pixels >> 31) * np.uint32(0xFFFFFFFF)  # the coverage's top bit: under half (< 128), all of it zeroed
    return rgb, (coverage >> 7) * np.uint8(255)


def error_block(src: rasterio.DatasetReader, window: Window, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """One destination block of a confidence map (float32, NaN where there is no data), covered as the colours are."""
    values = src.read(1, window=window)
    valid = np.isfinite(values)
    image = np.stack([np.where(valid, values, np.float32(0)), valid.astype(np.float32)], axis=-1)
    out = remap_weighted(image, rows - window.row_off, cols - window.col_off)
    coverage = out[..., 1]
    return np.where(coverage >= 0.5, out[..., 0] / np.maximum(coverage, 1e-6), np.float32(np.nan))[None]


def warp_raster(tiff_path: Path, out_path: Path, target: WarpTarget, block: int = BLOCK, threads: int = WARP_THREADS) -> None:
    """Reproject an RGB GeoTIFF with its mask, or a confidence map (float32), from its transform or GCPs to
    ``target``, bilinear, in square blocks, ``threads`` at once; outside is masked (NaN in a map), and blocks
    wholly outside the data are not written (GDAL reads them as masked). Two outputs of one scene land on the
    same grid.

    GCPs are followed by a thin-plate spline: through every GCP, where GDAL's default polynomial missed a
    Sentinel-1 GRD's geolocation grid by up to 1.7 km."""
    if block % POSITION_STEP:
        raise ValueError(f"block must be a multiple of {POSITION_STEP} px (the positions' lattice), got {block}")
    with rasterio.Env(GDAL_CACHEMAX=READ_THROUGH_CACHE_BYTES), rasterio.open(tiff_path) as src:
        gcps, gcp_crs = src.gcps
        georef = dict(gcps=gcps, src_crs=gcp_crs, SRC_METHOD="GCP_TPS") if gcps else dict(src_transform=src.transform, src_crs=src.crs)
        transform, width, height = warped_grid(src, target, **georef)
        error_map = src.dtypes[0] == "float32"
        profile = error_map_profile(src) if error_map else geotiff_profile(src)
        profile.update(crs=target.crs, transform=transform, width=width, height=height, sparse_ok=True)
        positions = SourcePositions(src, georef, transform, target.crs, width, height)
        handles: queue.SimpleQueue = queue.SimpleQueue()  # one reader per thread: a GDAL dataset is not thread-safe
        for _ in range(threads):
            handles.put(rasterio.open(tiff_path))

        def warped(window: Window):
            rows, cols = positions.block(window)
            source = _source_window(rows, cols, src.height, src.width)
            if source is None:
                return None
            reader = handles.get()
            try:
                return (error_block if error_map else rgb_block)(reader, source, rows, cols)
            finally:
                handles.put(reader)

        windows = [Window(col, row, min(block, width - col), min(block, height - row))
                   for row in range(0, height, block) for col in range(0, width, block)]
        try:
            with rasterio.open(out_path, "w", **profile) as dst, ThreadPoolExecutor(threads) as pool:
                dst.update_tags(**src.tags())  # sarcolor's own tags (the warning, the input's provenance, a map's calibration) stay
                dst.descriptions = src.descriptions
                pending: collections.deque = collections.deque()
                for window in windows:  # at most ``threads`` blocks ahead of the writer
                    pending.append((window, pool.submit(warped, window)))
                    if len(pending) > threads:
                        _write_block(dst, *pending.popleft())
                while pending:
                    _write_block(dst, *pending.popleft())
        finally:
            while not handles.empty():
                handles.get().close()


def _write_block(dst, window: Window, done) -> None:
    result = done.result()
    if result is None:
        return
    if isinstance(result, tuple):
        rgb, mask = result
        dst.write(rgb, window=window)
        dst.write_mask(mask, window=window)
    else:
        dst.write(result, window=window)
