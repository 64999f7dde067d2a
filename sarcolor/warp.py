"""Putting an output on a map grid (``--warp``): the target grid, and an RGB GeoTIFF or a confidence map
reprojected onto it block by block, through its transform or, for GCPs, a thin-plate spline through every one."""
from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.transform import GCPTransformer
from rasterio.warp import calculate_default_transform
from rasterio.warp import transform as transform_points
from rasterio.windows import Window
from scipy import ndimage

from sarcolor.errors import SarcolorError
from sarcolor.io import error_map_profile, geotiff_profile


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


def source_window(src: rasterio.DatasetReader, georef: dict, dst_transform: Affine, dst_crs: CRS, width: int, height: int,
                  margin: int = 2) -> Window | None:
    """The source pixels a destination block needs (its outline mapped back, plus ``margin`` for bilinear), within
    the source; None when the block lies outside it."""
    steps = np.linspace(0.0, 1.0, 17)
    cols = np.r_[steps * width, np.full(17, width), steps[::-1] * width, np.zeros(17)]
    rows = np.r_[np.zeros(17), steps * height, np.full(17, height), steps[::-1] * height]
    src_rows, src_cols = to_source_pixels(src, georef, dst_transform, dst_crs, cols, rows)
    top, left = max(int(np.floor(np.min(src_rows))) - margin, 0), max(int(np.floor(np.min(src_cols))) - margin, 0)
    bottom = min(int(np.ceil(np.max(src_rows))) + margin, src.height)
    right = min(int(np.ceil(np.max(src_cols))) + margin, src.width)
    return Window(left, top, right - left, bottom - top) if bottom > top and right > left else None


# Source positions are computed exactly (GCP thin-plate spline, or CRS transform) every POSITION_STEP destination
# pixels and interpolated bilinearly between: on a GRD's real geolocation grid within 0.31 px of the exact spline,
# where GDAL's approximate transformer erred by over a pixel at 1 % of the places; sampling with
# scipy.ndimage then took a 2048² block from 2.3-2.7 s (GDAL's warper) to 0.8-1.3 s.
POSITION_STEP = 32
WARP_THREADS = os.cpu_count() or 1  # the warp runs once the colours are written: every core is free


def interpolation_matrix(n: int, step: int) -> np.ndarray:
    """(n, ceil(n / step) + 1) weights taking values on a grid every ``step`` px to the n pixel centres, bilinearly."""
    at = (np.arange(n) + 0.5) / step
    below = np.floor(at).astype(int)
    weights = np.zeros((n, n // step + 2))
    weights[np.arange(n), below] = 1 - (at - below)
    weights[np.arange(n), below + 1] = at - below
    return weights[:, : -(-n // step) + 1]


def source_positions(src: rasterio.DatasetReader, georef: dict, dst_transform: Affine, dst_crs: CRS, width: int,
                     height: int) -> tuple[np.ndarray, np.ndarray]:
    """Source (row, col) of every destination pixel centre, in map_coordinates' convention (pixel centres at
    integers)."""
    step = POSITION_STEP
    grid_x, grid_y = np.meshgrid(np.arange(0, width + step, step, dtype=float), np.arange(0, height + step, step, dtype=float))
    rows, cols = to_source_pixels(src, georef, dst_transform, dst_crs, grid_x.ravel(), grid_y.ravel())
    along_y, along_x = interpolation_matrix(height, step), interpolation_matrix(width, step)
    return tuple(along_y @ np.asarray(v, float).reshape(grid_x.shape) @ along_x.T - 0.5 for v in (rows, cols))


def warp_weighted(src: rasterio.DatasetReader, georef: dict, dst_transform: Affine, dst_crs: CRS, width: int, height: int,
                  read) -> tuple[np.ndarray, np.ndarray]:
    """One destination block, bilinear: (values, coverage), values float32 (C, height, width) already divided by the
    coverage (0 to 1: the share of the bilinear weight on valid source pixels). ``read(window)`` gives the window's
    values (C, h, w) float32, 0 where invalid, and its validity (h, w) float32, so no-data never darkens its
    neighbours."""
    values, coverage = np.zeros((0, height, width), np.float32), np.zeros((height, width), np.float32)
    window = source_window(src, georef, dst_transform, dst_crs, width, height)
    if window is None:
        return values, coverage
    rows, cols = source_positions(src, georef, dst_transform, dst_crs, width, height)
    at = [rows - window.row_off, cols - window.col_off]
    data, valid = read(window)
    sample = functools.partial(ndimage.map_coordinates, coordinates=at, order=1, output=np.float32, cval=0.0, prefilter=False)
    with ThreadPoolExecutor(WARP_THREADS) as pool:  # ndimage lets go of the GIL: 2.2x on 2 cores
        coverage, *bands = pool.map(sample, [valid, *data])
    return np.stack(bands) / np.maximum(coverage, 1e-6), coverage


def warp_block(src: rasterio.DatasetReader, georef: dict, dst_transform: Affine, dst_crs: CRS, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """One destination block of an RGB raster with a mask: (RGB uint8, validity mask uint8), bilinear; a pixel is
    covered when at least half its weight falls on valid pixels."""
    def read(window: Window) -> tuple[np.ndarray, np.ndarray]:
        valid = (src.read_masks(1, window=window) > 0).astype(np.float32)
        return src.read(window=window).astype(np.float32) * valid, valid

    values, coverage = warp_weighted(src, georef, dst_transform, dst_crs, width, height, read)
    covered = coverage >= 0.5
    if not values.size:
        return np.zeros((3, height, width), np.uint8), covered.view(np.uint8)
    np.rint(values, out=values)
    np.clip(values, 0, 255, out=values)
    values *= covered
    return values.astype(np.uint8), covered.view(np.uint8) * np.uint8(255)


def warp_error_block(src: rasterio.DatasetReader, georef: dict, dst_transform: Affine, dst_crs: CRS, width: int, height: int) -> np.ndarray:
    """One destination block of a confidence map (float32, NaN where there is no data), covered as the colours are."""
    def read(window: Window) -> tuple[np.ndarray, np.ndarray]:
        data = src.read(window=window)
        valid = np.isfinite(data[0]).astype(np.float32)
        return np.nan_to_num(data, nan=0.0), valid

    values, coverage = warp_weighted(src, georef, dst_transform, dst_crs, width, height, read)
    if not values.size:
        return np.full((1, height, width), np.nan, np.float32)
    return np.where(coverage >= 0.5, values, np.float32(np.nan))


def warp_raster(tiff_path: Path, out_path: Path, target: WarpTarget, block: int = 2048) -> None:
    """Reproject an RGB GeoTIFF with its mask, or a confidence map (float32), from its transform or GCPs to
    ``target``, bilinear, in square blocks; outside is masked (NaN in a map). Two outputs of one scene land on
    the same grid.

    GCPs are followed by a thin-plate spline: through every GCP, where GDAL's default polynomial missed a
    Sentinel-1 GRD's geolocation grid by up to 1.7 km. (Square blocks, since a full-width strip of a rotated
    scene needs a source window many times its size.)"""
    with rasterio.open(tiff_path) as src:
        gcps, gcp_crs = src.gcps
        georef = dict(gcps=gcps, src_crs=gcp_crs, SRC_METHOD="GCP_TPS") if gcps else dict(src_transform=src.transform, src_crs=src.crs)
        transform, width, height = warped_grid(src, target, **georef)
        error_map = src.dtypes[0] == "float32"
        profile = error_map_profile(src) if error_map else geotiff_profile(src)
        profile.update(crs=target.crs, transform=transform, width=width, height=height)
        with rasterio.open(out_path, "w", **profile) as dst:
            dst.update_tags(**src.tags())  # sarcolor's own tags (the warning, the input's provenance, a map's calibration) stay
            dst.descriptions = src.descriptions
            for row in range(0, height, block):
                for col in range(0, width, block):
                    window = Window(col, row, min(block, width - col), min(block, height - row))
                    placed = (georef, transform @ Affine.translation(col, row), target.crs, window.width, window.height)
                    if error_map:
                        dst.write(warp_error_block(src, *placed), window=window)
                    else:
                        rgb, mask = warp_block(src, *placed)
                        dst.write(rgb, window=window)
                        dst.write_mask(mask, window=window)
