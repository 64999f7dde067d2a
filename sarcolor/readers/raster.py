"""A SAR raster read window by window and scaled to the model convention, and the raster opening it rests on.

The model convention (that of the training data): amplitude divided by the scene's 99 % quantile,
clipped to [0, 1]. ``SarReader`` turns one band of any raster into that, whatever the band's unit
(``sarcolor.scale`` decides which, and why).
"""
from __future__ import annotations

import contextlib
import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol

import numpy as np
import rasterio
from rasterio.enums import MaskFlags, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.windows import Window

from sarcolor.errors import SarcolorError, check_choice, first_line
from sarcolor.novelty import scene_statistics
from sarcolor.scale import (
    DB_MAX_ABS, INPUT_SCALES, RasterMetadata, Rescaled, ScaleDecision, check_not_constant, decide_scale, forced_db,
    forced_scale_warning, parse_db_range, to_amplitude,
)
from sarcolor.speckle import LOCAL_BLOCK, LocalStatistics, check_speckled
from sarcolor.tiling import clip_window, mirror_window

log = logging.getLogger(__name__)

# Quantile and fill statistics come from a decimated read at most this many pixels on a side.
STATS_MAX_SIDE = 2048
PREVIEW_STRETCH = 0.02  # a SAR preview's dB runs from this quantile (black) to 1 minus it (white)


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


def decimated_positions(length: int, samples: int) -> np.ndarray:
    """The pixels a nearest-neighbour decimated read of ``length`` pixels into ``samples`` takes (GDAL's rule)."""
    return np.floor((np.arange(samples) + 0.5) * (length / samples)).astype(np.int64)


def raster_metadata(src: rasterio.DatasetReader, band: int) -> RasterMetadata:
    """What a raster says about its values: file name, band description and unit, dataset and band tags."""
    return RasterMetadata(
        name=Path(src.name).name, description=src.descriptions[band - 1], units=src.units[band - 1] or None,
        tags={**src.tags(), **src.tags(band)},
    )


def band_rescaling(src: rasterio.DatasetReader, band: int) -> Rescaled | None:
    """A band's own scale and offset (GDAL metadata, e.g. dB x 100 stored as int16 with scale 0.01), or None."""
    scale, offset = src.scales[band - 1], src.offsets[band - 1]
    return None if (scale, offset) == (1.0, 0.0) else Rescaled(scale, offset)


@dataclass(frozen=True)
class SarScaling:
    """How a raster's values map to model input: x = clip(amplitude(v) / reference, 0, 1)."""

    scale: str
    reference: float  # the scene's amplitude quantile (1.0 for already normalised input)
    fill: float  # model-input value used for nodata and outside-the-image pixels

    def apply(self, raw: np.ndarray, dtype: str) -> np.ndarray:
        amplitude = to_amplitude(raw, self.scale, dtype)
        # In place where to_amplitude made a new array: a strip's fresh array costs more than the arithmetic.
        out = amplitude if amplitude is not raw and amplitude.dtype == np.float32 else None
        scaled = np.divide(amplitude, np.float32(self.reference), out=out, dtype=np.float32)
        return np.clip(scaled, 0.0, 1.0, out=scaled)


class Calibration(Protocol):
    """Turns a product's digital numbers into calibrated values (e.g. a GRD's sigma0), pixel by pixel."""

    decision: ScaleDecision | None  # the scale of the calibrated values and what was done; None: decided as usual

    def values(self, raw: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Calibrated float32 values of ``raw`` (len(rows), len(cols)), taken at those rows and columns."""


class SarReader:
    """One band of a SAR raster, read window by window, scaled to the model convention.

    Invalid pixels are those the dataset masks (nodata value, internal mask, alpha) and
    non-finite values; for uint16 amplitude without a declared nodata, 0 (the Sentinel-1 GRD
    border fill) is also treated as nodata. The scale comes from ``input_scale``, or for "auto" from
    the raster's ``metadata`` (its own by default) and values (``scale_decision`` says which and why);
    a ``calibration`` (a product's) turns the raw values into calibrated ones first and fixes the scale.
    """

    def __init__(
        self, src: rasterio.DatasetReader, band: int = 1, input_scale: str = "auto", quantile: float = 0.99,
        calibration: Calibration | None = None, metadata: RasterMetadata | None = None,
        db_range: tuple[float, float] | str | None = None,
    ):
        self.src = src
        self.band = band
        self.dtype = src.dtypes[band - 1] if 1 <= band <= src.count else ""
        self._check_band()
        self.zero_is_nodata = self.dtype == "uint16" and src.nodatavals[band - 1] is None
        self.calibration = calibration or band_rescaling(src, band)
        self.value_dtype = "float32" if self.calibration else self.dtype  # the type of the values that are scaled
        self.metadata = metadata or raster_metadata(src, band)
        self.db_range = parse_db_range(db_range)
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

    def _calibrated(self, raw: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """The values that are scaled: the raw ones, or a product's calibrated ones at those rows and columns."""
        return raw if self.calibration is None else self.calibration.values(raw, rows, cols)

    def _decimated_values(self, max_side: int = STATS_MAX_SIDE) -> tuple[np.ndarray, np.ndarray]:
        """(values, valid) of a decimated read of the whole band, calibrated if the reader calibrates."""
        raw = self._decimated(self.src.read, max_side)
        valid = self._valid(raw, self._decimated(self.src.read_masks, max_side))
        rows, cols = (decimated_positions(length, n) for length, n in zip((self.height, self.width), raw.shape))
        return self._calibrated(raw, rows, cols), valid

    def _local_block(self) -> tuple[np.ndarray, np.ndarray]:
        """(values, valid) of a full-resolution block at the scene's centre, for speckle statistics; an integer
        type's extremes are left out (clipped values carry no speckle)."""
        height, width = min(self.height, LOCAL_BLOCK), min(self.width, LOCAL_BLOCK)
        window = Window((self.width - width) // 2, (self.height - height) // 2, width, height)
        try:
            raw = self.src.read(self.band, window=window)
            valid = self._valid(raw, self.src.read_masks(self.band, window=window))
        except RasterioIOError as exc:
            raise SarcolorError(f"cannot read {self.src.name}: {first_line(exc)}") from None
        if np.issubdtype(raw.dtype, np.integer):
            limits = np.iinfo(raw.dtype)
            valid &= (raw > limits.min) & (raw < limits.max)
        rows = np.arange(window.row_off, window.row_off + height)
        cols = np.arange(window.col_off, window.col_off + width)
        return self._calibrated(raw, rows, cols), valid

    def _decide_scale(self, input_scale: str, values: np.ndarray, local: LocalStatistics | None) -> ScaleDecision:
        # A product's calibration fixes the scale; a mere rescaling (a STAC asset's scale and offset) leaves it open.
        if self.calibration is not None and self.calibration.decision is not None:
            return self.calibration.decision
        if self.db_range is not None and input_scale not in ("auto", "db"):
            raise SarcolorError(f"--db-range is for dB values (--input-scale db or auto), not --input-scale {input_scale}")
        if input_scale == "db" and np.issubdtype(np.dtype(self.value_dtype), np.integer):
            return forced_db(self.value_dtype, values, self.metadata.name, self.db_range, "given with --input-scale db")
        if input_scale != "auto":
            warning = forced_scale_warning(input_scale, self.value_dtype, values, self.metadata, local)
            return ScaleDecision(input_scale, "given with --input-scale", warning)
        return decide_scale(self.value_dtype, values, self.metadata, local, self.db_range)

    def _measure_scaling(self, input_scale: str, quantile: float) -> SarScaling:
        check_choice("--input-scale", input_scale, INPUT_SCALES)
        values, decision = self._checked_decision(input_scale)
        if input_scale == "auto":
            log.info("input scale auto -> %s: %s", decision.scale, decision.reason)
        if decision.warning:
            log.warning("%s: %s", self.metadata.name, decision.warning)
        amplitude = to_amplitude(values, decision.scale, self.value_dtype)
        if decision.scale == "normalized":
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
        return SarScaling(scale=decision.scale, reference=reference, fill=float(np.median(model_input)))

    def _checked_decision(self, input_scale: str) -> tuple[np.ndarray, ScaleDecision]:
        """The valid values of a decimated read (as the decision reads them) and their scale, checked: not one
        value, dB within range, and speckled like radar."""
        calibrated, valid = self._decimated_values()
        if not valid.any():
            raise SarcolorError(f"{self.src.name} has no valid pixels (all NaN or nodata)")
        values = calibrated[valid]
        check_not_constant(self.src.name, values)
        product = self.calibration is not None and self.calibration.decision is not None
        block, block_valid = (None, None) if product else self._local_block()
        local = None if product else LocalStatistics.of(block, block_valid)
        self.scale_decision = decision = self._decide_scale(input_scale, values, local)
        if decision.stretch is not None:  # integers that encode dB: read their dB from now on
            self.calibration, self.value_dtype = decision.stretch, "float32"
            values, block = decision.stretch.values(values), decision.stretch.values(block) if block is not None else None
        if decision.scale == "db" and np.abs(values).max() > DB_MAX_ABS:
            raise SarcolorError(
                f"{self.src.name}: values reach {np.abs(values).max():g}, not sigma0 in dB "
                f"(within ±{DB_MAX_ABS:g}); is --input-scale right for this data? (an integer dB stretch needs --db-range)"
            )
        if block is not None:
            power = np.square(to_amplitude(np.where(block_valid, block, 0), decision.scale, self.value_dtype), dtype=np.float64)
            check_speckled(self.src.name, power, block_valid, "given" if input_scale != "auto" else
                           "8-bit" if self.dtype == "uint8" else "auto")
        return values, decision

    def scene_warning(self, training_scenes) -> str | None:
        """One line when the scene's scale looks wrong or the scene is unlike the model's training scenes
        (``training_scenes``: the model's ``TrainingScenes``, or None), else None. The scale's warning was
        logged when it was decided; the other is logged here."""
        novelty = training_scenes.warning(self.scene_statistics) if training_scenes else None
        if novelty:
            log.warning("%s: %s", self.metadata.name, novelty)
        return "; ".join(w for w in (self.scale_decision.warning, novelty) if w) or None

    def preview(self, max_side: int) -> np.ndarray:
        """The input as analysts view SAR: a grey uint8 image of its dB, from the 2 % quantile (black) to the
        98 % one (white), at most ``max_side`` px on a side; nodata is black. (Linear amplitude puts most of a
        scene in the darkest quarter.)"""
        values, valid = self._decimated_values(max_side)
        amplitude = self.scaling.apply(np.where(valid, values, 0), self.value_dtype)
        db = 20 * np.log10(np.maximum(amplitude, 1e-4))
        low, high = np.quantile(db[valid], [PREVIEW_STRETCH, 1 - PREVIEW_STRETCH]) if valid.any() else (0.0, 1.0)
        grey = np.clip((db - low) / max(high - low, 1e-6), 0, 1)
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
        rows = np.arange(inside.row_off, inside.row_off + inside.height)
        cols = np.arange(inside.col_off, inside.col_off + inside.width)
        values = self._calibrated(raw, rows, cols)
        if not np.issubdtype(values.dtype, np.integer):  # NaN, inf or absurd values where invalid: out of the way first
            values = np.where(inside_valid, values, 0)
        values = self.scaling.apply(values, self.value_dtype)
        values[~inside_valid] = self.scaling.fill
        valid[Window(inside.col_off - window.col_off, inside.row_off - window.row_off, inside.width, inside.height).toslices()] = inside_valid
        return mirror_window(values.astype(np.float32, copy=False), window, inside), valid


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
