"""Raster outputs: the rules every output follows (never onto an input, kept unless overwritten, free space
checked first, temporary files of killed runs removed), and RGB and confidence rasters written atomically."""
from __future__ import annotations

import contextlib
import errno
import functools
import glob
import logging
import math
import os
import re
import shutil
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio._err import CPLE_BaseError  # GDAL's errors raised by copies and closes (a full disk in a COG or PNG)
from rasterio.crs import CRS
from rasterio.errors import CRSError, NotGeoreferencedWarning, RasterioIOError
from rasterio.transform import GCPTransformer
from rasterio.warp import calculate_default_transform
from rasterio.warp import transform as transform_points
from rasterio.windows import Window
from scipy import ndimage

from sarcolor.errors import SarcolorError, first_line, write_failure

log = logging.getLogger(__name__)

OUTPUT_DRIVERS = {".tif": "GTiff", ".tiff": "GTiff", ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
IMAGE_SUFFIXES = tuple(OUTPUT_DRIVERS)
# No RGB output of ours compresses better than this (DEFLATE level 1 reaches about 2-5x): a folder with
# less free space than raw size / this cannot hold the output, and is refused before any work.
BEST_COMPRESSION_RATIO = 16
ERROR_MAP_PRECISION = 0.05  # largest rounding error of a confidence map's values (CIEDE2000)
# A temporary output not written to for this long belongs to a run that was killed.
STALE_TEMP_AGE_S = 15 * 60


def umask() -> int:
    """The process's file-creation mask (read without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def output_driver(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_DRIVERS:
        raise SarcolorError(f"output {path}: unknown extension {suffix or '(none)'}; use .tif, .png or .jpg")
    return OUTPUT_DRIVERS[suffix]


def check_output_target(path: str | Path, overwrite: bool) -> Path:
    """Any output (a raster, a model file, a pairs folder), before any work: an existing one is kept unless
    ``overwrite``, and its folder must exist and take a write."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise SarcolorError(f"output exists: {path} (use --overwrite to replace it)")
    if not path.parent.is_dir():
        raise SarcolorError(f"output folder does not exist: {path.parent}")
    try:  # a real write: permissions, read-only mounts and /proc all say no here
        with tempfile.NamedTemporaryFile(prefix=f".{path.name}.", suffix=".probe", dir=path.parent):
            pass
    except OSError as exc:
        raise SarcolorError(f"output folder is not writable: {path.parent} ({exc.strerror or first_line(exc)})") from None
    return path


def _relation(output: Path, input: Path) -> str | None:
    """How an output path would touch an input path: 'is', 'contains', 'lies inside', or None."""
    out, inp = output.resolve(), input.resolve()
    if out == inp or (out.exists() and inp.exists() and os.path.samefile(out, inp)):  # also hard links
        return "is"
    if inp.is_relative_to(out):
        return "contains"
    if out.is_relative_to(inp):
        return "lies inside"
    return None


def check_outputs_apart_from_inputs(outputs: list[Path], inputs: list[Path]) -> None:
    """Inputs are never modified: an output that is, contains or lies inside an input is refused, whatever
    ``--overwrite`` says (replacing it would delete the user's data)."""
    for output in outputs:
        for input in inputs:
            relation = _relation(Path(output), Path(input))
            if relation:
                raise SarcolorError(f"output {output} {relation} the input {input}: inputs are never modified, choose another output")


def check_distinct_outputs(outputs: list[tuple[Path, str]]) -> None:
    """Two outputs of one run at one path would silently replace each other: refused before any work.
    ``outputs``: (path, what it holds) pairs, e.g. (out/a_confidence.tif, "the confidence map of a.tif")."""
    seen: dict[Path, str] = {}
    for output, what in outputs:
        key = Path(output).resolve()
        if key in seen:
            raise SarcolorError(f"{seen[key]} and {what} would both be written to {output}: rename one of the inputs")
        seen[key] = what


def check_output_path(path: str | Path, overwrite: bool) -> Path:
    """A raster output: a known format, not a folder, and a writable target; stale temp files of a killed run go."""
    path = Path(path)
    output_driver(path)
    check_output_target(path, overwrite)
    if path.is_dir():
        raise SarcolorError(f"output {path} is a folder")
    remove_stale_temp_files(path)
    return path


def temp_file_pattern(path: Path) -> re.Pattern:
    """Names of RasterWriter's temporary files for ``path`` (tempfile.mkstemp: 8 random characters)."""
    return re.compile(re.escape(f".{path.name}.") + r"[a-z0-9_]{8}\.(tif|png|jpg|jpeg|probe)(\.aux\.xml|\.msk)?")


def remove_stale_temp_files(path: Path, min_age_s: float = STALE_TEMP_AGE_S) -> None:
    """Remove temporary files a killed run (SIGKILL, power cut) left for the same output.

    Only files untouched for ``min_age_s`` go: a run writing the same target right now keeps writing
    blocks, so its temporary file stays young."""
    pattern = temp_file_pattern(path)
    now = time.time()
    for candidate in path.parent.glob(f".{glob.escape(path.name)}.*"):
        with contextlib.suppress(OSError):
            if pattern.fullmatch(candidate.name) and now - candidate.stat().st_mtime > min_age_s:
                candidate.unlink()
                log.info("removed %s, left by an interrupted run", candidate.name)


def check_free_space(path: Path, height: int, width: int, bands: int = 3) -> None:
    """Refuse, before any work, a folder that cannot hold even a well-compressed output (a full disk
    also crashes GDAL when it closes the file)."""
    free = shutil.disk_usage(path.parent).free
    needed = height * width * bands // BEST_COMPRESSION_RATIO + 2**16
    if free < needed:
        raise SarcolorError(
            f"not enough free space for {path}: {free / 2**20:.2f} MiB free in {path.parent}, "
            f"the output needs at least {needed / 2**20:.2f} MiB"
        )


def check_tiff_complete(path: Path, rows_per_read: int = 1024, threads: int = 2) -> None:
    """Raise OSError unless a just-written GeoTIFF decodes in full, strip by strip.

    GDAL reports a failed write (a full disk) as log lines, not as an exception, and still closes
    the file: without this check a truncated output would replace a good one. Decoding costs a few
    per cent of a scene's run time; ``threads`` handles of the file decode interleaved strips at once
    (GDAL lets go of the GIL while it decodes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            with rasterio.open(path) as src:
                height, width = src.height, src.width
            starts = range(0, height, rows_per_read)
            with ThreadPoolExecutor(threads) as pool:
                for done in [pool.submit(_decode_rows, path, starts[i::threads], rows_per_read, height, width)
                             for i in range(threads)]:
                    done.result()
        except RasterioIOError as exc:
            raise OSError(first_line(exc)) from None


def _decode_rows(path: Path, starts: range, rows: int, height: int, width: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            for row in starts:
                window = Window(0, row, width, min(rows, height - row))
                src.read(window=window)
                src.read_masks(1, window=window)


def geotiff_profile(src: rasterio.DatasetReader, count: int = 3) -> dict:
    """The source's profile, copied, turned into a tiled DEFLATE RGB uint8 GeoTIFF's."""
    profile = src.profile.copy()
    for key in ("nodata", "photometric", "interleave", "blockxsize", "blockysize", "tiled", "compress", "predictor"):
        profile.pop(key, None)
    profile.update(
        driver="GTiff",
        count=count,
        dtype="uint8",
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="deflate",
        predictor=2,
        # Level 1 with GDAL's worker threads: 6-9x faster than the default level 6 for 12 % more bytes;
        # at level 6, compressing the output took a fifth of a scene's run time.
        zlevel=1,
        num_threads="ALL_CPUS",
        photometric="RGB",
        interleave="pixel",
        BIGTIFF="IF_SAFER",
    )
    if src.gcps[0]:
        profile.pop("transform", None)
        profile.pop("crs", None)
    return profile


def error_map_profile(src: rasterio.DatasetReader) -> dict:
    """The RGB output's profile turned into a one-band float32 map's, NaN where there is no data.

    LERC to within ERROR_MAP_PRECISION: a quarter of DEFLATE's bytes and three times as fast to write
    and check, for an estimate whose hundredths mean nothing; GDAL (QGIS, ArcGIS) reads it."""
    profile = geotiff_profile(src, count=1)
    for key in ("predictor", "zlevel"):
        profile.pop(key, None)
    profile.update(dtype="float32", compress="lerc", max_z_error=ERROR_MAP_PRECISION, photometric="MINISBLACK", nodata=float("nan"))
    return profile


class RasterWriter:
    """Writes an RGB result window by window into a temporary GeoTIFF beside the target, then renames.

    PNG and JPEG outputs are converted from that temporary GeoTIFF at the end (those drivers
    cannot be written window by window); a PNG gets an alpha band where the input had nodata.
    On any failure the temporary files are removed and an existing output is left untouched.
    ``error_map``: a one-band float32 GeoTIFF instead (the confidence map), NaN where invalid.
    """

    def __init__(
        self, path: Path, src: rasterio.DatasetReader, with_mask: bool, cog: bool = False, warp: WarpTarget | None = None,
        error_map: dict[str, str] | None = None, tags: dict[str, str] | None = None,
    ) -> None:
        self.path = path
        self.driver = output_driver(path)
        self.src = src
        self.with_mask = with_mask and error_map is None
        self.cog = cog
        self.warp = warp
        self.error_map = error_map  # band description and tags of a confidence map
        self.tags = tags or {}  # dataset metadata of a GeoTIFF output
        self._tmp_paths: list[Path] = []
        self.dst = None

    def _tmp(self, suffix: str) -> Path:
        try:
            fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=suffix, dir=self.path.parent)
        except OSError as exc:
            raise SarcolorError(f"cannot write in {self.path.parent}: {exc.strerror or first_line(exc)}") from None
        os.close(fd)
        self._tmp_paths.append(Path(name))
        return Path(name)

    def open(self) -> "RasterWriter":
        """Create the temporary GeoTIFF; on failure nothing is left behind."""
        try:
            self._tiff_path = self._tmp(".tif")
            profile = geotiff_profile(self.src) if self.error_map is None else error_map_profile(self.src)
            self.dst = rasterio.open(self._tiff_path, "w", **profile)
            if self.src.gcps[0]:
                self.dst.gcps = self.src.gcps
            if self.error_map is not None:
                self.dst.set_band_description(1, self.error_map["description"])
                self.dst.update_tags(**self.error_map)
            if self.tags:
                self.dst.update_tags(**self.tags)
        except BaseException:
            self.close()
            self.discard()
            raise
        return self

    def __enter__(self) -> "RasterWriter":
        self._together = writing_together(self)
        self._together.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._together.__exit__(exc_type, exc, tb)

    def write(self, row_off: int, rgb: np.ndarray, valid: np.ndarray) -> None:
        """Write rows [row_off, row_off + n) of the full width: rgb (3, n, W) uint8 (or an error map's
        (1, n, W) float32), valid (n, W) bool."""
        window = Window(0, row_off, rgb.shape[2], rgb.shape[1])
        self.dst.write(rgb, window=window)
        if self.with_mask:
            self.dst.write_mask(valid.view(np.uint8) * np.uint8(255), window=window)

    def close(self) -> None:
        if self.dst is not None:
            self.dst.close()
            self.dst = None

    def finish(self) -> Path:
        """Close and check the temporary output, turned into the requested format; returns the file to rename."""
        self.close()
        try:
            self.finished = self._finish()  # read by writers that describe it (sarcolor.stac)
            return self.finished
        except (OSError, RasterioIOError, CPLE_BaseError) as error:
            raise write_failure(self.path, error) from None

    @property
    def unwarped(self) -> Path:
        """The temporary GeoTIFF as written, before any warp (kept until the rename): its outline is the data's,
        where a warped grid's rectangle also holds the masked corners around a rotated swath."""
        return self._tiff_path

    def discard(self) -> None:
        """Remove every temporary file of this writer (after a rename, the renamed one is gone already)."""
        for tmp in self._tmp_paths:
            for leftover in (tmp, Path(f"{tmp}.aux.xml"), Path(f"{tmp}.msk")):
                leftover.unlink(missing_ok=True)

    def _finish(self) -> Path:
        """Check the written GeoTIFF and turn it into the requested output; returns the file to rename."""
        check_tiff_complete(self._tiff_path)
        final = self._tiff_path
        if self.warp is not None:
            final = self._converted(final, ".tif", lambda tiff, out: warp_raster(tiff, out, self.warp))
            check_tiff_complete(final)
        if self.cog:
            final = self._converted(final, ".tif", write_cog)
            check_tiff_complete(final)
        if self.driver != "GTiff":
            final = self._converted(final, self.path.suffix, lambda tiff, out: write_plain_copy(tiff, out, self.driver))
        os.chmod(final, 0o666 & ~umask())  # mkstemp makes 0600 files; outputs get the usual mode
        return final

    def _converted(self, source: Path, suffix: str, convert) -> Path:
        """``convert(source, out)`` into a new temporary file; returns it. GDAL's copies report a full disk as their
        own errors ('TIFFRewriteDirectory', 'libpng: Write Error') and may remove their partial file: a failure with
        less room left than ``source`` takes is told as the full disk it is."""
        out = self._tmp(suffix)
        try:
            convert(source, out)
        except (OSError, RasterioIOError, CPLE_BaseError):
            if shutil.disk_usage(out.parent).free < source.stat().st_size:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)) from None
            raise
        return out


@contextlib.contextmanager
def writing_together(*writers: RasterWriter) -> Iterator[tuple[RasterWriter, ...]]:
    """Open several outputs of one result (an RGB image and its confidence map) as one unit: each is written
    to a temporary file, and they are renamed into place only once every one of them has been written and
    checked. On any failure none is renamed, every temporary file goes, and existing outputs stay as they were."""
    opened: list[RasterWriter] = []
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        try:
            for writer in writers:
                opened.append(writer.open())
            yield writers
            finals = [writer.finish() for writer in opened]
            for writer, final in zip(opened, finals):
                os.replace(final, writer.path)
        finally:
            for writer in opened:
                writer.close()
                writer.discard()


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


def write_cog(tiff_path: Path, out_path: Path) -> None:
    """Copy an RGB GeoTIFF as a Cloud Optimized GeoTIFF with averaged overviews (GDAL's COG driver)."""
    rasterio.shutil.copy(
        tiff_path, out_path, driver="COG", COMPRESS="DEFLATE", PREDICTOR="YES", BLOCKSIZE=256,
        OVERVIEW_RESAMPLING="AVERAGE", BIGTIFF="IF_SAFER", NUM_THREADS="ALL_CPUS",
    )


def write_plain_copy(tiff_path: Path, out_path: Path, driver: str) -> None:
    """Write an RGB GeoTIFF as a plain PNG (nodata as alpha) or JPEG (nodata black)."""
    with rasterio.open(tiff_path) as tiff:
        rgb = tiff.read()
        mask = tiff.dataset_mask()
    if driver == "PNG" and (mask == 0).any():
        rgb = np.concatenate([rgb, mask[None]])
    elif (mask == 0).any():
        rgb[:, mask == 0] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(
            out_path, "w", driver=driver, width=rgb.shape[2], height=rgb.shape[1], count=rgb.shape[0], dtype="uint8"
        ) as dst:
            dst.write(rgb)
