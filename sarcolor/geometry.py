"""Where an output lands on the map: ``--warp`` and each input's default.

``--warp`` takes a CRS (``EPSG:4326``), ``utm`` (the UTM zone of the scene's centre, at its ground pixel
size) or ``none`` (the input's own grid, or its GCPs). Left out, a raster keeps its grid and a GRD
product, georeferenced by GCPs only, goes to ``utm``: a GCP-only GeoTIFF does not land on a map in
every GIS without further steps.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import rasterio
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.enums import MaskFlags, Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile
from rasterio.transform import Affine
from rasterio.vrt import WarpedVRT
from rasterio.warp import reproject
from rasterio.warp import transform as transform_points
from rasterio.windows import Window

from sarcolor.errors import SarcolorError
from sarcolor.warp import WarpTarget, parse_crs

WARP_KEEP = "none"
WARP_UTM = "utm"
WGS84 = CRS.from_epsg(4326)


def check_warp(text: str | None) -> None:
    """A ``--warp`` value, checked before any work."""
    if text is not None and text.lower() not in (WARP_KEEP, WARP_UTM):
        parse_crs(text)


def warps(text: str | None) -> bool:
    """Whether a ``--warp`` value given by the user asks for a reprojection."""
    return text is not None and text.lower() != WARP_KEEP


def scene_centre(src: rasterio.DatasetReader) -> tuple[float, float]:
    """(longitude, latitude) of the middle of a raster georeferenced by a transform or by GCPs."""
    gcps, gcp_crs = src.gcps
    if gcps:
        xs, ys, crs = [p.x for p in gcps], [p.y for p in gcps], gcp_crs
        x, y = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
    else:
        (x, y), crs = src.xy(src.height / 2, src.width / 2), src.crs
    (lon,), (lat,) = transform_points(crs, WGS84, [x], [y])
    return lon, lat


def utm_crs(lon: float, lat: float) -> CRS:
    """The WGS 84 / UTM zone of a point (EPSG:326zz north, 327zz south)."""
    zone = min(60, int(math.floor((lon + 180) / 6)) + 1)
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def warp_target(text: str | None, src: rasterio.DatasetReader, default: str | None, pixel_spacing: float | None) -> WarpTarget | None:
    """What ``--warp text`` means for ``src`` (``default`` when left out); None keeps the input's georeferencing."""
    text = default if text is None else text
    if text is None or text.lower() == WARP_KEEP:
        return None
    if not (src.crs or src.gcps[0]):
        raise SarcolorError(f"--warp: {src.name} has no CRS or GCPs to reproject from")
    if text.lower() == WARP_UTM:
        return WarpTarget(utm_crs(*scene_centre(src)), pixel_spacing)
    return WarpTarget(parse_crs(text))


def by_gcps_only(src) -> bool:
    """Whether a raster is georeferenced by GCPs alone (a Sentinel-1 GRD product as downloaded)."""
    return not src.crs and bool(src.gcps[0])


def on_grid_of(optical, sar, resampling: Resampling = Resampling.bilinear):
    """``optical`` (an open raster) on ``sar``'s pixel grid: reprojected (any CRS and pixel size, ``resampling``,
    read window by window) when both are georeferenced, by a transform or, for the SAR, by GCPs alone; else taken
    pixel for pixel, which needs equal sizes. The result's mask says which SAR pixels the optical raster covers."""
    if by_gcps_only(sar) and optical.crs:
        return OnGcpGrid(optical, sar, resampling)
    georeferenced = bool(sar.crs) and bool(optical.crs)
    if not georeferenced:
        if bool(sar.crs) != bool(optical.crs) and (sar.width, sar.height) != (optical.width, optical.height):
            raise SarcolorError("only one of the two rasters is georeferenced, and their sizes differ: cannot align them")
        if (sar.width, sar.height) != (optical.width, optical.height):
            raise SarcolorError(
                f"mismatched sizes: SAR {sar.width}x{sar.height}, optical {optical.width}x{optical.height} px "
                "(without georeferencing the two images must be co-registered and of equal size)"
            )
        return optical
    # add_alpha: the VRT's mask says which SAR pixels the optical raster covers (and where its nodata is);
    # an RGBA raster's own alpha band does that already, and GDAL refuses a second one.
    return WarpedVRT(
        optical, crs=sar.crs, transform=sar.transform, width=sar.width, height=sar.height,
        resampling=resampling, add_alpha=alpha_band(optical) is None,
    )


class CoarseGrid:
    """A raster that ``on_grid_of`` put on a SAR grid, read whole at a coarser ``shape`` (height, width) of that grid:
    a WarpedVRT is warped anew onto the coarser grid, where a decimated read of it would have GDAL warp every
    full-resolution pixel first (minutes for a full Sentinel-1 scene); others are read decimated as they are."""

    def __init__(self, source, shape: tuple[int, int]) -> None:
        self.source, self.shape = source, tuple(shape)
        self.vrt = None
        if isinstance(source, WarpedVRT):
            height, width = self.shape
            self.vrt = WarpedVRT(
                source.src_dataset, crs=source.crs, width=width, height=height, resampling=Resampling.nearest,
                transform=source.transform * Affine.scale(source.width / width, source.height / height),
                add_alpha=alpha_band(source.src_dataset) is None,
            )

    def __enter__(self) -> "CoarseGrid":
        return self

    def __exit__(self, *exc) -> None:
        if self.vrt is not None:
            self.vrt.close()

    def read(self, indexes, **_) -> np.ndarray:
        if self.vrt is not None:
            return self.vrt.read(indexes)
        return self.source.read(indexes, out_shape=self.shape, resampling=Resampling.nearest)

    def dataset_mask(self, **_) -> np.ndarray:
        if self.vrt is not None:
            return self.vrt.dataset_mask()
        return self.source.dataset_mask(out_shape=self.shape, resampling=Resampling.nearest)


def alpha_band(src) -> int | None:
    """The index of a raster's alpha band, if it has one."""
    return next((i + 1 for i, flags in enumerate(src.mask_flag_enums) if MaskFlags.alpha in flags), None)


class OnGcpGrid:
    """An optical raster on the pixel grid of a SAR georeferenced by GCPs alone, read as a rasterio dataset is
    (``read``, ``dataset_mask``, ``height``, ``width``). Each read warps the window asked for (GDAL's warper); the SAR's
    pixels are placed on the map by a thin-plate spline through its GCPs, as the output's own warp places them
    (``io.warp_raster``), so the reference lands where the coloured pixels will."""

    def __init__(self, optical, sar, resampling: Resampling) -> None:
        self.optical, self.resampling = optical, resampling
        self.gcps, self.gcp_crs = sar.gcps
        self.height, self.width = sar.height, sar.width
        self.alpha = alpha_band(optical)
        self._last: tuple[tuple, dict[int, np.ndarray]] = ((), {})  # the window last warped: bands, then its mask

    def __enter__(self) -> "OnGcpGrid":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._last = ((), {})

    def read(self, indexes=None, window: Window | None = None, out_shape=None, resampling=None, **_) -> np.ndarray:
        bands = list(range(1, self.optical.count + 1)) if indexes is None else indexes
        listed = bands if isinstance(bands, (list, tuple)) else [bands]
        warped = self._warped(listed, window, out_shape, resampling)
        values = np.stack([warped[b] for b in listed])
        return values if isinstance(bands, (list, tuple)) else values[0]

    def dataset_mask(self, window: Window | None = None, out_shape=None, resampling=None, **_) -> np.ndarray:
        return np.where(self._warped([], window, out_shape, resampling)[0] > 0, 255, 0).astype(np.uint8)

    def _warped(self, bands: list[int], window: Window | None, out_shape, resampling) -> dict[int, np.ndarray]:
        """The bands asked for and the coverage (key 0) on a window of the SAR grid (whole: None), at ``out_shape``
        (default the window's size); the last window's bands are kept for the next read of it."""
        window = window or Window(0, 0, self.width, self.height)
        height, width = out_shape[-2:] if out_shape is not None else (int(window.height), int(window.width))
        key = (window.col_off, window.row_off, window.width, window.height, height, width, resampling)
        if key != self._last[0]:
            self._last = (key, {})
        done = self._last[1]
        missing = [b for b in bands if b not in done]
        if not missing and 0 not in done:  # the mask alone: it comes with a warp of one band
            missing = [1]
        if missing:
            done.update(self._warp(missing, window, height, width, resampling or self.resampling))
        return done

    def _warp(self, bands: list[int], window: Window, height: int, width: int, resampling) -> dict[int, np.ndarray]:
        sy, sx = height / window.height, width / window.width
        gcps = [GroundControlPoint((g.row - window.row_off) * sy, (g.col - window.col_off) * sx, g.x, g.y, g.z)
                for g in self.gcps]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with MemoryFile() as memory, memory.open(driver="MEM", width=width, height=height, count=len(bands) + 1,
                                                     dtype=self.optical.dtypes[0]) as grid:
                grid.gcps = (gcps, self.gcp_crs)
                reproject(rasterio.band(self.optical, bands), rasterio.band(grid, list(range(1, len(bands) + 1))),
                          src_alpha=self.alpha or 0, dst_alpha=len(bands) + 1, resampling=resampling,
                          DST_METHOD="GCP_TPS")
                values = grid.read()
        return {0: values[-1], **dict(zip(bands, values[:-1]))}
