"""An optical reference image on the SAR's pixel grid: its red, green and blue, stretched, and where it is usable.

Read from an 8-bit RGB raster (GeoTIFF, PNG, JPEG), a multi-band Sentinel-2 raster (bands chosen as ``pairs`` chooses
them, default B4, B3, B2), a folder of one file per band (``B4.tif``, ``B04.jp2``, with ``SCL.tif`` where the
product is L2A), or a Sentinel-2 product or STAC Item, read as its band files (``products``). Reprojected onto the SAR
grid as ``pairs`` does (``geometry.on_grid_of``). Usable: covered, not nodata nor masked, and not cloud
(``sarcolor.reference.clouds``). Reflectance is stretched as ``pairs`` stretches optical
(each channel / its 99 % quantile, here of the usable pixels); 8-bit colours are kept in their own stretch.
"""
from __future__ import annotations

import logging
import re
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from sarcolor.errors import SarcolorError, first_line
from sarcolor.geometry import CoarseGrid, on_grid_of
from sarcolor.readers.raster import STATS_MAX_SIDE, decimated_shape
from sarcolor.reference.clouds import CLOUD_MARGIN, CONTEXT, clear_pixels
from sarcolor.reference.products import BandSource, sentinel2_source

log = logging.getLogger(__name__)

DEFAULT_BANDS = (4, 3, 2)  # Sentinel-2's B4, B3, B2 in a raster of its bands in order (as --rgb-bands of pairs)
BAND_FILE = re.compile(r"^B0?(\d{1,2}A?)(_\d+m)?\.(tif|tiff|jp2)$", re.IGNORECASE)
SCL_FILE = re.compile(r"^SCL(_\d+m)?\.(tif|tiff|jp2)$", re.IGNORECASE)
MIN_CLEAR = 0.02  # fewer usable overlapping pixels than this share of the SAR scene: refused
GREY = 0.95  # at least this share of the clear pixels with red = green = blue: a grey image (SAR), not optical


@dataclass
class Channel:
    """One band of an open raster, on the SAR grid."""

    source: object  # a rasterio dataset or WarpedVRT
    band: int
    gain: float = 1.0  # value = read * gain + offset: reflectance x 10,000 from a product's or an Item's DNs
    offset: float = 0.0


def band_files(folder: Path) -> dict[str, Path]:
    """A folder's one-file-per-band rasters by band name ("4", "8A", "SCL")."""
    found = {}
    for path in sorted(folder.iterdir()):
        match = BAND_FILE.match(path.name)
        if match:
            found[match.group(1).upper()] = path
        elif SCL_FILE.match(path.name):
            found["SCL"] = path
    return found


class ReferenceImage:
    """Open with ``ReferenceImage.open(path, sar_src, bands)`` inside a ``with`` block (it holds files open)."""

    def __init__(self, path: Path, channels: list[Channel], scl: Channel | None, reflectance: bool, stack: ExitStack):
        self.path, self.channels, self.scl, self.reflectance, self._stack = path, channels, scl, reflectance, stack
        self.scale = np.full(3, 255.0)  # what a channel is divided by: 8-bit kept as it is
        self.clear_share = 0.0
        self.taken = None  # the sensing time, where the reference says it (a product, an Item)

    @classmethod
    def open(cls, path: str | Path, sar_src, bands: tuple[int, ...] | None = None, scale=None) -> "ReferenceImage":
        """``scale``: the stretch measured when it was opened before (a Dask chunk's reader); else measured now."""
        given, path = path, Path(path)
        stack = ExitStack()
        try:
            source = sentinel2_source(given)
            if source is not None:
                reference = cls._open_bands(path, source, sar_src, bands, stack)
            elif path.is_dir():
                reference = cls._open_folder(path, sar_src, bands, stack)
            elif path.is_file():
                reference = cls._open_file(path, sar_src, bands, stack)
            else:
                raise SarcolorError(f"reference not found: {path}")
            if scale is None:
                reference._measure()
            else:
                reference.scale = np.asarray(scale, np.float64)
        except (rasterio.errors.RasterioError, OSError) as exc:
            stack.close()
            raise unreadable(path, exc) from None
        except BaseException:
            stack.close()
            raise
        return reference

    @classmethod
    def _open_file(cls, path: Path, sar_src, bands, stack: ExitStack) -> "ReferenceImage":
        src = stack.enter_context(rasterio.open(path))
        eight_bit = src.dtypes[0] == "uint8"
        if src.count < 3:
            raise SarcolorError(
                f"the reference {path.name} is not an optical image: it has {src.count} band(s) "
                "(a SAR raster?); a reference needs red, green and blue"
            )
        chosen = _rgb_bands(path, src.count, bands)
        scl = next((i + 1 for i, d in enumerate(src.descriptions) if d and d.upper().startswith("SCL")), None)
        grid = stack.enter_context(on_grid_of(src, sar_src))
        classes = Channel(stack.enter_context(on_grid_of(src, sar_src, Resampling.nearest)), scl) if scl else None
        return cls(path, [Channel(grid, b) for b in chosen], classes, not eight_bit, stack)

    @classmethod
    def _open_folder(cls, path: Path, sar_src, bands, stack: ExitStack) -> "ReferenceImage":
        return cls._open_bands(path, BandSource(band_files(path)), sar_src, bands, stack)

    @classmethod
    def _open_bands(cls, path: Path, given: BandSource, sar_src, bands, stack: ExitStack) -> "ReferenceImage":
        """One raster per band: a band folder's files, or a Sentinel-2 product's or STAC Item's."""
        files = given.files
        wanted = [str(b) for b in (bands or DEFAULT_BANDS)]
        missing = [f"B{b}" for b in wanted if b not in files]
        if missing:
            what = path.name if given.levels else f"folder {path}"  # a product or an Item, else a band folder
            raise SarcolorError(f"the reference {what} has no {', '.join(missing)} file (B4.tif, B04.jp2...)")
        if given.env:
            stack.enter_context(rasterio.Env(**given.env))
        sources = [stack.enter_context(rasterio.open(files[name])) for name in wanted]
        channels = [Channel(stack.enter_context(on_grid_of(src, sar_src)), 1, *given.levels.get(name, (1.0, 0.0)))
                    for name, src in zip(wanted, sources)]
        scl = None
        if "SCL" in files:
            classes = stack.enter_context(rasterio.open(files["SCL"]))
            scl = Channel(stack.enter_context(on_grid_of(classes, sar_src, Resampling.nearest)), 1)
        reference = cls(path, channels, scl, sources[0].dtypes[0] != "uint8", stack)
        reference.taken = given.taken
        return reference

    def __enter__(self) -> "ReferenceImage":
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    @property
    def stretch(self) -> str:
        if not self.reflectance:
            return "8-bit colours as given"
        return "each channel / its 99 % quantile of the clear pixels (" + ", ".join(f"{s:.4g}" for s in self.scale) + ")"

    @property
    def shape(self) -> tuple[int, int]:
        source = self.channels[0].source
        return source.height, source.width

    def _raw(self, window: Window, out_shape=None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Raw values (3, h, w) float32, covered and not nodata (h, w), and the scene classes or None: of a window of
        the SAR grid, or of all of it at ``out_shape``."""
        if out_shape is None:
            return self._read(self.channels, self.scl, {"window": window})
        with ExitStack() as views:
            coarse = {}

            def on_coarse_grid(channel: Channel) -> Channel:
                if id(channel.source) not in coarse:
                    coarse[id(channel.source)] = views.enter_context(CoarseGrid(channel.source, out_shape))
                return replace(channel, source=coarse[id(channel.source)])

            return self._read([on_coarse_grid(c) for c in self.channels], self.scl and on_coarse_grid(self.scl), {})

    def _read(self, channels: list[Channel], scl: Channel | None, kwargs: dict):
        sources = {id(c.source): c.source for c in channels}
        if len(sources) == 1:  # one file: its bands read together (one warp of the window, not three)
            raw = channels[0].source.read([c.band for c in channels], **kwargs)
        else:
            raw = np.stack([c.source.read(c.band, **kwargs) for c in channels])
        integers = np.issubdtype(raw.dtype, np.integer)  # no NaN to look for (a full scene's strip: seconds)
        rgb = raw.astype(np.float32)
        covered = (rgb > 0).any(0) if integers else np.isfinite(rgb).all(0) & (rgb > 0).any(0)
        for source in sources.values():
            covered &= source.dataset_mask(**kwargs) > 0
        gains, offsets = (np.array([getattr(c, name) for c in channels], np.float32)[:, None, None] for name in ("gain", "offset"))
        if (gains != 1).any() or (offsets != 0).any():  # DNs 0 stay no data
            rgb = np.where(covered, rgb * gains + offsets, 0)
        classes = scl.source.read(scl.band, **kwargs) if scl else None
        return rgb if integers else np.nan_to_num(rgb), covered, classes

    def _measure(self) -> None:
        """The clear share and, for reflectance, the per-channel stretch, from a decimated read of the whole grid."""
        height, width = self.shape
        shape = decimated_shape(height, width, STATS_MAX_SIDE)
        rgb, covered, scl = self._raw(None, out_shape=shape)
        if (rgb < 0).mean() > 0.5:
            raise SarcolorError(f"the reference {self.path.name} is not an optical image: most of its values are negative (SAR in dB?)")
        if not covered.any():
            raise SarcolorError(f"the reference {self.path.name} does not overlap the SAR scene, or holds only no data over it")
        clear = clear_pixels(self._unit(rgb), covered, scl, max(1, round(CLOUD_MARGIN * shape[0] / height)), self.reflectance)
        self.clear_map, self.clear_share = clear, float(clear.mean())
        if self.clear_share < MIN_CLEAR:
            raise SarcolorError(
                f"the reference {self.path.name} has {100 * self.clear_share:.1f} % clear pixels over the SAR scene "
                f"(clouds, nodata or no overlap): at least {100 * MIN_CLEAR:.0f} % are needed"
            )
        if (np.ptp(rgb[:, clear], axis=0) == 0).mean() >= GREY:
            raise SarcolorError(f"the reference {self.path.name} is not an optical image: its red, green and blue are "
                                "the same (a grey SAR image?)")
        if self.reflectance:
            self.scale = np.array([np.quantile(channel[clear], 0.99) for channel in rgb], np.float64)
            if not (self.scale > 0).all():
                raise SarcolorError(f"the reference {self.path.name} has no usable red, green and blue (99 % quantiles {self.scale.tolist()})")
        log.info("reference %s: %.0f %% of the SAR scene clear and usable", self.path.name, 100 * self.clear_share)

    def _unit(self, rgb: np.ndarray) -> np.ndarray:
        """Values in [0, 1] for the cloud test: 8-bit / 255, Sentinel-2 reflectance (x 10,000) / 10,000."""
        return rgb / (10_000.0 if self.reflectance else 255.0)

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """RGB (3, h, w) float32 in [0, 1], stretched, and the usable pixels (h, w) of a window of the SAR grid;
        parts of the window outside the grid are not usable."""
        height, width = self.shape
        top, left = max(0, window.row_off - CONTEXT), max(0, window.col_off - CONTEXT)
        bottom = min(height, window.row_off + window.height + CONTEXT)
        right = min(width, window.col_off + window.width + CONTEXT)
        rgb = np.zeros((3, window.height, window.width), np.float32)
        usable = np.zeros((window.height, window.width), bool)
        if bottom <= top or right <= left:
            return rgb, usable
        try:  # a damaged file may read in the decimated look at open and fail at full resolution
            raw, covered, scl = self._raw(Window(left, top, right - left, bottom - top))
        except rasterio.errors.RasterioError as exc:
            raise unreadable(self.path, exc) from None
        clear = clear_pixels(self._unit(raw), covered, scl, CLOUD_MARGIN, self.reflectance)
        stretched = np.clip(raw / self.scale.astype(np.float32)[:, None, None], 0, 1)
        rows = slice(max(0, window.row_off) - top, min(height, window.row_off + window.height) - top)
        cols = slice(max(0, window.col_off) - left, min(width, window.col_off + window.width) - left)
        out_rows = slice(max(0, -window.row_off), max(0, -window.row_off) + rows.stop - rows.start)
        out_cols = slice(max(0, -window.col_off), max(0, -window.col_off) + cols.stop - cols.start)
        rgb[:, out_rows, out_cols] = stretched[:, rows, cols]
        usable[out_rows, out_cols] = clear[rows, cols]
        return rgb, usable


def unreadable(path: Path, exc: BaseException) -> SarcolorError:
    """GDAL's reason in one line (the file and block it failed on), where rasterio says only 'Read failed'."""
    return SarcolorError(f"cannot read the reference {path.name}: {first_line(exc.__cause__ or exc)}")


def _rgb_bands(path: Path, count: int, bands) -> list[int]:
    """The red, green and blue band indexes: ``bands``, or 1, 2, 3 of a three- or four-band (RGB, RGBA) raster, or
    Sentinel-2's B4, B3, B2 of one with all its bands in order."""
    if bands is None and count in (3, 4):
        return [1, 2, 3]
    bands = tuple(bands or DEFAULT_BANDS)
    if len(bands) != 3 or not all(1 <= b <= count for b in bands):
        raise SarcolorError(f"--reference-bands {','.join(map(str, bands))}: need three bands of 1..{count} in {path.name}")
    return list(bands)

