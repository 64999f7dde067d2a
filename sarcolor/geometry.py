"""Where an output lands on the map: ``--warp`` and each input's default.

``--warp`` takes a CRS (``EPSG:4326``), ``utm`` (the UTM zone of the scene's centre, at its ground pixel
size) or ``none`` (the input's own grid, or its GCPs). Left out, a raster keeps its grid and a GRD
product, georeferenced by GCPs only, goes to ``utm``: a GCP-only GeoTIFF does not land on a map in
every GIS without further steps.
"""
from __future__ import annotations

import math

import rasterio
from rasterio.crs import CRS
from rasterio.enums import MaskFlags, Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform as transform_points

from sarcolor.errors import SarcolorError
from sarcolor.io import WarpTarget, parse_crs

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


def on_grid_of(optical, sar):
    """``optical`` (an open raster) on ``sar``'s pixel grid: reprojected (any CRS and pixel size, bilinear, through
    a WarpedVRT read window by window) when both are georeferenced, else taken pixel for pixel, which needs equal
    sizes. The result's mask says which SAR pixels the optical raster covers."""
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
    has_alpha = any(MaskFlags.alpha in flags for flags in optical.mask_flag_enums)
    return WarpedVRT(
        optical, crs=sar.crs, transform=sar.transform, width=sar.width, height=sar.height,
        resampling=Resampling.bilinear, add_alpha=not has_alpha,
    )
