"""Raster IO: open SAR inputs, scale them to the model's convention, write RGB outputs atomically.

The model convention (that of the training data): amplitude divided by the scene's 99 % quantile,
clipped to [0, 1]. Every reader turns its input into that, whatever the input's unit.
"""
from __future__ import annotations

import contextlib
import glob
import logging
import math
import os
import re
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.crs import CRS
from rasterio.enums import MaskFlags, Resampling
from rasterio.errors import CRSError, NotGeoreferencedWarning, RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from sarcolor.errors import SarcolorError, check_choice, first_line
from sarcolor.novelty import scene_statistics
from sarcolor.tiling import clip_window, mirror_window

log = logging.getLogger(__name__)

# Sentinel-1 sigma0 lies within about -50..+30 dB; values far outside are not dB.
DB_MAX_ABS = 100.0
INPUT_SCALES = ("auto", "normalized", "amplitude", "intensity", "db")
OUTPUT_DRIVERS = {".tif": "GTiff", ".tiff": "GTiff", ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
IMAGE_SUFFIXES = tuple(OUTPUT_DRIVERS)
# Quantile and fill statistics come from a decimated read at most this many pixels on a side.
STATS_MAX_SIDE = 2048
# No RGB output of ours compresses better than this (DEFLATE level 1 reaches about 2-5x): a folder with
# less free space than raw size / this cannot hold the output, and is refused before any work.
BEST_COMPRESSION_RATIO = 16
ERROR_MAP_PRECISION = 0.05  # largest rounding error of a confidence map's values (CIEDE2000)
# A temporary output not written to for this long belongs to a run that was killed.
STALE_TEMP_AGE_S = 15 * 60


def decimated_shape(height: int, width: int, max_side: int) -> tuple[int, int]:
    """(height, width) after decimating by the smallest integer factor that fits ``max_side``."""
    factor = max(1, int(np.ceil(max(height, width) / max_side)))
    return int(np.ceil(height / factor)), int(np.ceil(width / factor))


@contextlib.contextmanager
def open_raster(path: str | Path) -> Iterator[rasterio.DatasetReader]:
    """Open a raster for reading, turning every way it can fail into a one-line SarcolorError."""
    path = Path(path)
    if not path.exists():
        raise SarcolorError(f"input not found: {path}")
    if path.is_dir():
        raise SarcolorError(f"input is a folder, not an image: {path}")
    if not path.is_file():  # a FIFO or a device would block the read forever
        raise SarcolorError(f"input is not a regular file: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            src = rasterio.open(path)
    except RasterioIOError as exc:
        raise SarcolorError(f"cannot read {path} as an image: {first_line(exc)}") from None
    with src:
        yield src


def read_plain_image(path: str | Path) -> np.ndarray:
    """Read a whole small image (e.g. a PNG of the pairs folder) as a (bands, H, W) array."""
    with open_raster(path) as src:
        try:
            return src.read()
        except RasterioIOError as exc:
            raise SarcolorError(f"cannot read {path}: {first_line(exc)}") from None


def guess_input_scale(dtype: str, sample: np.ndarray) -> str:
    """What ``--input-scale auto`` decides, from the data type and valid values."""
    if dtype == "uint8":
        return "normalized"
    if np.issubdtype(np.dtype(dtype), np.floating) and sample.size and float(sample.min()) < 0:
        return "db"
    return "amplitude"


def to_amplitude(values: np.ndarray, scale: str, dtype: str) -> np.ndarray:
    """Convert raw values to (relative) amplitude, float32."""
    values = values.astype(np.float32, copy=False)
    if scale == "db":  # sigma0 in dB is an intensity ratio: amplitude = 10 ** (dB / 20)
        with np.errstate(over="ignore"):  # absurd dB values overflow to inf; callers check the result
            return np.power(np.float32(10.0), values / np.float32(20.0))
    if scale == "intensity":
        return np.sqrt(np.maximum(values, 0))
    if scale == "normalized" and np.issubdtype(np.dtype(dtype), np.integer):
        return values / np.float32(np.iinfo(np.dtype(dtype)).max)
    return values


@dataclass(frozen=True)
class SarScaling:
    """How a raster's values map to model input: x = clip(amplitude(v) / reference, 0, 1)."""

    scale: str
    reference: float  # the scene's amplitude quantile (1.0 for already normalised input)
    fill: float  # model-input value used for nodata and outside-the-image pixels

    def apply(self, raw: np.ndarray, dtype: str) -> np.ndarray:
        return np.clip(to_amplitude(raw, self.scale, dtype) / np.float32(self.reference), 0.0, 1.0)


class SarReader:
    """One band of a SAR raster, read window by window, scaled to the model convention.

    Invalid pixels are those the dataset masks (nodata value, internal mask, alpha) and
    non-finite values; for uint16 amplitude without a declared nodata, 0 (the Sentinel-1 GRD
    border fill) is also treated as nodata.
    """

    def __init__(self, src: rasterio.DatasetReader, band: int = 1, input_scale: str = "auto", quantile: float = 0.99):
        self.src = src
        self.band = band
        self.dtype = src.dtypes[band - 1] if 1 <= band <= src.count else ""
        self._check_band()
        self.zero_is_nodata = self.dtype == "uint16" and src.nodatavals[band - 1] is None
        self.scaling = self._measure_scaling(input_scale, quantile)

    @property
    def height(self) -> int:
        return self.src.height

    @property
    def width(self) -> int:
        return self.src.width

    @property
    def grid_origin(self) -> tuple[int, int]:
        """(row, col) of the first pixel on the map grid of the raster's pixel size: crops of one scene differ
        by their offset. (0, 0) for a raster without a north-up transform (GCPs, rotation, none)."""
        t = self.src.transform
        if self.src.crs is None or t.b or t.d or t.is_identity:
            return 0, 0
        # floor(x + 1/4), not round(): grids registered at pixel corners (x whole) or centres (x + 1/2) are
        # common, and round() sends halves to the even number, so two cuts of one grid could land 1 px apart.
        return math.floor(t.f / t.e + 0.25), math.floor(t.c / t.a + 0.25)

    @property
    def may_have_invalid(self) -> bool:
        flags = self.src.mask_flag_enums[self.band - 1]
        return (
            MaskFlags.all_valid not in flags
            or np.issubdtype(np.dtype(self.dtype), np.floating)
            or self.zero_is_nodata
        )

    def _check_band(self) -> None:
        name = self.src.name
        if not 1 <= self.band <= self.src.count:
            raise SarcolorError(f"{name} has {self.src.count} band(s); --band {self.band} is out of range")
        if self.dtype not in ("uint8", "uint16", "int16", "uint32", "int32", "float32", "float64"):
            raise SarcolorError(f"{name}: unsupported data type {self.dtype} (expected uint8, uint16 or float32)")
        if self.src.driver in ("PNG", "JPEG") and self.src.count >= 3 and self.band <= 3:
            self._check_grey_rgb()

    def _check_grey_rgb(self) -> None:
        rgb = self._decimated(self.src.read, indexes=[1, 2, 3])
        if not (np.array_equal(rgb[0], rgb[1]) and np.array_equal(rgb[0], rgb[2])):
            raise SarcolorError(
                f"{self.src.name} is a colour image (its R, G, B differ): give a grey SAR image, not an optical one"
            )

    def _decimated(self, read, max_side: int = STATS_MAX_SIDE, **kwargs) -> np.ndarray:
        shape = decimated_shape(self.height, self.width, max_side)
        indexes = kwargs.pop("indexes", self.band)
        out_shape = shape if np.isscalar(indexes) else (len(indexes), *shape)
        try:
            return read(indexes, out_shape=out_shape, resampling=Resampling.nearest, **kwargs)
        except RasterioIOError as exc:
            raise SarcolorError(f"cannot read {self.src.name}: {first_line(exc)}") from None

    def _valid(self, raw: np.ndarray, mask: np.ndarray) -> np.ndarray:
        valid = mask > 0
        if np.issubdtype(raw.dtype, np.floating):
            valid &= np.isfinite(raw)
        if self.zero_is_nodata:
            valid &= raw != 0
        return valid

    def _measure_scaling(self, input_scale: str, quantile: float) -> SarScaling:
        check_choice("--input-scale", input_scale, INPUT_SCALES)
        raw = self._decimated(self.src.read)
        valid = self._valid(raw, self._decimated(self.src.read_masks))
        if not valid.any():
            raise SarcolorError(f"{self.src.name} has no valid pixels (all NaN or nodata)")
        values = raw[valid]
        scale = guess_input_scale(self.dtype, values) if input_scale == "auto" else input_scale
        if input_scale == "auto":
            log.info("input scale auto -> %s (data type %s)", scale, self.dtype)
        if scale == "db" and np.abs(values).max() > DB_MAX_ABS:
            raise SarcolorError(
                f"{self.src.name}: values reach {np.abs(values).max():g}, not sigma0 in dB "
                f"(within ±{DB_MAX_ABS:g}); is --input-scale right for this data?"
            )
        amplitude = to_amplitude(values, scale, self.dtype)
        if scale == "normalized":
            reference = 1.0
        else:
            reference = float(np.quantile(amplitude, quantile))
            if not np.isfinite(reference) or reference <= 0:
                raise SarcolorError(
                    f"{self.src.name}: the {quantile:.0%} amplitude quantile is {reference:g}; "
                    "is --input-scale right for this data?"
                )
        model_input = np.clip(amplitude / reference, 0, 1)
        self.scene_statistics = scene_statistics(model_input)  # for the "unlike the training data" check
        return SarScaling(scale=scale, reference=reference, fill=float(np.median(model_input)))

    def preview(self, max_side: int) -> np.ndarray:
        """The scaled input as a grey uint8 image at most ``max_side`` px on a side; nodata is black."""
        raw = self._decimated(self.src.read, max_side)
        valid = self._valid(raw, self._decimated(self.src.read_masks, max_side))
        grey = self.scaling.apply(np.where(valid, raw, 0), self.dtype)
        return np.where(valid, np.rint(grey * 255.0), 0).astype(np.uint8)

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Model input and validity for any window, also one reaching outside the image (mirrored there, not valid)."""
        valid = np.zeros((window.height, window.width), dtype=bool)
        inside = clip_window(window, self.height, self.width)
        if inside is None:
            return np.full(valid.shape, self.scaling.fill, dtype=np.float32), valid
        try:
            raw = self.src.read(self.band, window=inside)
            mask = self.src.read_masks(self.band, window=inside)
        except RasterioIOError as exc:
            raise SarcolorError(f"cannot read {self.src.name}: {first_line(exc)}") from None
        inside_valid = self._valid(raw, mask)
        values = self.scaling.apply(np.where(inside_valid, raw, 0), self.dtype)
        values[~inside_valid] = self.scaling.fill
        valid[Window(inside.col_off - window.col_off, inside.row_off - window.row_off, inside.width, inside.height).toslices()] = inside_valid
        return mirror_window(values.astype(np.float32, copy=False), window, inside), valid


def _umask() -> int:
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


def check_tiff_complete(path: Path, rows_per_read: int = 1024) -> None:
    """Raise OSError unless a just-written GeoTIFF decodes in full, strip by strip.

    GDAL reports a failed write (a full disk) as log lines, not as an exception, and still closes
    the file: without this check a truncated output would replace a good one. Decoding costs a few
    per cent of a scene's run time."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            with rasterio.open(path) as src:
                for row in range(0, src.height, rows_per_read):
                    window = Window(0, row, src.width, min(rows_per_read, src.height - row))
                    src.read(window=window)
                    src.read_masks(1, window=window)
        except RasterioIOError as exc:
            raise OSError(first_line(exc)) from None


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
        self, path: Path, src: rasterio.DatasetReader, with_mask: bool, cog: bool = False, warp: CRS | None = None,
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

    def __enter__(self) -> "RasterWriter":
        self._env = rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True)
        self._env.__enter__()
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
        except BaseException as exc:  # __exit__ is not called when __enter__ fails: clean up here
            self.__exit__(type(exc), exc, None)
            raise
        return self

    def write(self, row_off: int, rgb: np.ndarray, valid: np.ndarray) -> None:
        """Write rows [row_off, row_off + n) of the full width: rgb (3, n, W) uint8 (or an error map's
        (1, n, W) float32), valid (n, W) bool."""
        window = Window(0, row_off, rgb.shape[2], rgb.shape[1])
        self.dst.write(rgb, window=window)
        if self.with_mask:
            self.dst.write_mask(valid.view(np.uint8) * np.uint8(255), window=window)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self.dst is not None:
                self.dst.close()
            if exc_type is None:
                try:
                    final = self._finish()
                except (OSError, RasterioIOError) as error:
                    reason = "no space left on device" if _disk_full(self.path.parent) else first_line(error)
                    raise SarcolorError(f"cannot write {self.path}: {reason}") from None
                os.replace(final, self.path)
        finally:
            self._env.__exit__(None, None, None)
            for tmp in self._tmp_paths:
                for leftover in (tmp, Path(f"{tmp}.aux.xml"), Path(f"{tmp}.msk")):
                    leftover.unlink(missing_ok=True)

    def _finish(self) -> Path:
        """Check the written GeoTIFF and turn it into the requested output; returns the file to rename."""
        check_tiff_complete(self._tiff_path)
        final = self._tiff_path
        if self.warp is not None:
            final = self._tmp(".tif")
            warp_rgb(self._tiff_path, final, self.warp)
            check_tiff_complete(final)
        if self.cog:
            tiff, final = final, self._tmp(".tif")
            write_cog(tiff, final)
            check_tiff_complete(final)
        if self.driver != "GTiff":
            final = self._convert_plain(final)
        os.chmod(final, 0o666 & ~_umask())  # mkstemp makes 0600 files; outputs get the usual mode
        return final

    def _convert_plain(self, tiff: Path) -> Path:
        out = self._tmp(self.path.suffix)
        write_plain_copy(tiff, out, self.driver)
        return out


def _disk_full(folder: Path) -> bool:
    return shutil.disk_usage(folder).free < 2**16


def parse_crs(text: str) -> CRS:
    try:
        with rasterio.Env(CPL_LOG=os.devnull):  # PROJ would also print its own error line
            return CRS.from_user_input(text)
    except CRSError:
        raise SarcolorError(f"--warp {text!r} is not a CRS rasterio knows (try EPSG:4326 or EPSG:32633)") from None


def warp_rgb(tiff_path: Path, out_path: Path, crs: CRS, rows_per_block: int = 1024) -> None:
    """Reproject an RGB GeoTIFF (transform or GCPs) to ``crs``, bilinear, block by block; outside is masked."""
    with rasterio.open(tiff_path) as src, WarpedVRT(src, crs=crs, resampling=Resampling.bilinear, add_alpha=True) as vrt:
        profile = geotiff_profile(vrt)
        profile.update(crs=vrt.crs, transform=vrt.transform, width=vrt.width, height=vrt.height)
        with rasterio.open(out_path, "w", **profile) as dst:
            for row in range(0, vrt.height, rows_per_block):
                window = Window(0, row, vrt.width, min(rows_per_block, vrt.height - row))
                rgba = vrt.read(window=window)
                dst.write(rgba[:3], window=window)
                dst.write_mask(rgba[3], window=window)


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


def read_preview(path: str | Path, indexes: list[int], max_side: int) -> tuple[np.ndarray, np.ndarray]:
    """Bands ``indexes`` (C, h, w), averaged down to at most ``max_side`` px on a side, and where they are valid (h, w)."""
    with open_raster(path) as src:
        shape = decimated_shape(src.height, src.width, max_side)
        values = src.read(indexes, out_shape=(len(indexes), *shape), resampling=Resampling.average)
        valid = src.dataset_mask(out_shape=shape, resampling=Resampling.nearest) > 0
    return values, valid


def read_rgb_preview(path: str | Path, max_side: int) -> np.ndarray:
    """An RGB raster as (H, W, 3) uint8, decimated to at most ``max_side`` px on a side; nodata black."""
    rgb, valid = read_preview(path, [1, 2, 3], max_side)
    rgb[:, ~valid] = 0
    return np.moveaxis(rgb, 0, -1)
