"""Raster outputs: the rules every output follows (never onto an input, kept unless overwritten, free space
checked first, temporary files of killed runs removed), and RGB and confidence rasters written atomically."""
from __future__ import annotations

import contextlib
import errno
import glob
import logging
import os
import re
import shutil
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import rasterio
import rasterio.shutil
from rasterio._err import CPLE_BaseError  # GDAL's errors raised by copies and closes (a full disk in a COG or PNG)
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.windows import Window

from sarcolor.errors import SarcolorError, first_line, write_failure

if TYPE_CHECKING:
    from sarcolor.warp import WarpTarget

log = logging.getLogger(__name__)

OUTPUT_DRIVERS = {".tif": "GTiff", ".tiff": "GTiff", ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
IMAGE_SUFFIXES = tuple(OUTPUT_DRIVERS)
# No RGB output of ours compresses better than this (DEFLATE level 1 reaches about 2-5x): a folder with
# less free space than raw size / this cannot hold the output, and is refused before any work.
BEST_COMPRESSION_RATIO = 16
ERROR_MAP_PRECISION = 0.05  # largest rounding error of a confidence map's values (CIEDE2000)
# A GeoTIFF output larger than this on a side gets internal overviews (halving down to OVERVIEW_SMALLEST_SIDE):
# without them a GIS reads every pixel to draw the whole scene.
OVERVIEW_MIN_SIDE = 8192
OVERVIEW_SMALLEST_SIDE = 256
# GDAL's block cache (bytes) while a finished file is read through once (checked, warped): its default, 5 % of
# the RAM, only grew the process by a gigabyte of blocks never read again.
READ_THROUGH_CACHE_BYTES = 64 * 2**20
# Building overviews, GDAL holds this many full-width rows of blocks in its cache: with fewer, it writes overview
# blocks half done and writes them again (a whole scene's overviews grew from a third to 85 % of the image).
OVERVIEW_CACHE_ROWS = 1024
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


def check_free_space(path: Path, height: int, width: int, bands: int = 3, warped: bool = False) -> None:
    """Refuse, before any work, a folder that cannot hold even a well-compressed output (a full disk
    also crashes GDAL when it closes the file). A ``warped`` output is first written uncompressed (RGB and
    mask) on the input's grid."""
    free = shutil.disk_usage(path.parent).free
    needed = height * width * bands // BEST_COMPRESSION_RATIO + 2**16 + warped * height * width * 4
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
    with warnings.catch_warnings(), rasterio.Env(GDAL_CACHEMAX=READ_THROUGH_CACHE_BYTES):
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


def uncompressed(profile: dict) -> dict:
    """A GeoTIFF profile without compression: for a temporary file read once (the colours before a warp), where
    compressing and decoding it cost more than writing its bytes."""
    profile = {k: v for k, v in profile.items() if k not in ("compress", "predictor", "zlevel", "num_threads")}
    return {**profile, "compress": "none"}


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
    ``error_map``: a one-band float32 GeoTIFF instead (the confidence map), NaN where invalid. A GeoTIFF over
    OVERVIEW_MIN_SIDE px on a side gets internal overviews unless ``overviews`` is False.
    """

    def __init__(
        self, path: Path, src: rasterio.DatasetReader, with_mask: bool, cog: bool = False, warp: WarpTarget | None = None,
        error_map: dict[str, str] | None = None, tags: dict[str, str] | None = None, overviews: bool = True,
    ) -> None:
        self.path = path
        self.driver = output_driver(path)
        self.src = src
        self.with_mask = with_mask and error_map is None
        self.cog = cog
        self.warp = warp
        self.overviews = overviews
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
            if self.warp is not None and self.error_map is None:
                profile = uncompressed(profile)
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
        final = self._tiff_path
        if self.warp is None:
            check_tiff_complete(final)
        else:  # the warp reads every pixel of the colours before it, and fails on a broken file as the check does
            from sarcolor.warp import warp_raster  # here, not above: warp builds on this module's profiles

            final = self._converted(final, ".tif", lambda tiff, out: warp_raster(tiff, out, self.warp))
            check_tiff_complete(final)
        if self.overviews and not self.cog and self.driver == "GTiff":
            add_overviews(final, OVERVIEW_MIN_SIDE)
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


def overview_factors(height: int, width: int, smallest: int = OVERVIEW_SMALLEST_SIDE) -> list[int]:
    """2, 4, 8, ... until the overview's longer side is at most ``smallest`` px."""
    factors = [2]
    while max(height, width) / factors[-1] > smallest:
        factors.append(factors[-1] * 2)
    return factors


def add_overviews(tiff_path: Path, min_side: int = 0) -> None:
    """Internal averaged overviews of a GeoTIFF written by ``RasterWriter`` (and of its mask), compressed as the
    image is, when it is over ``min_side`` px on a side: GIS viewers draw a whole large scene from them instead of
    reading every pixel."""
    with rasterio.open(tiff_path) as src:
        height, width, float_map = src.height, src.width, src.dtypes[0] == "float32"
    if max(height, width) <= min_side:
        return
    compression = dict(COMPRESS_OVERVIEW="LERC", MAX_Z_ERROR_OVERVIEW=ERROR_MAP_PRECISION) if float_map else dict(
        COMPRESS_OVERVIEW="DEFLATE", PREDICTOR_OVERVIEW=2, ZLEVEL_OVERVIEW=1)
    cache = max(READ_THROUGH_CACHE_BYTES, OVERVIEW_CACHE_ROWS * width * 4)  # RGB and mask, or a float32 map
    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS", GDAL_TIFF_OVR_BLOCKSIZE=256, GDAL_CACHEMAX=cache, **compression):
        with rasterio.open(tiff_path, "r+") as dst:
            dst.build_overviews(overview_factors(height, width), Resampling.average)


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
