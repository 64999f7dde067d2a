"""Sentinel-1 STAC Items: a GRD or RTC item from a STAC API search, saved as JSON or given by its URL.

The raster asset of the cross-polarisation (VH, or HV) is chosen by its key, title or ``sar:polarizations``
and read through rasterio window by window, in place: a local file, or a remote COG over HTTP range requests
(GDAL's ``/vsicurl/``, which rasterio uses for URLs; ``s3://`` through ``/vsis3/``). What the item says about
its values (``raster:bands`` unit, scale and offset, the asset's title and description, ``sar:`` fields) feeds
``--input-scale auto`` (``sarcolor.scale``). A GRD item's DNs (Element84's and Planetary Computer's
``sentinel-1-grd``) are calibrated to sigma0 from its ``schema-calibration-*`` and ``schema-noise-*``
assets when it has them, as a product's are; an RTC item's (``sentinel-1-rtc``) gamma0 is read as it is.

Items are read with ``pystac`` (the ``stac`` extra); a local item needs no network.
"""
from __future__ import annotations

import json
import logging
import re
import textwrap
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

from sarcolor.errors import SarcolorError, first_line
from sarcolor.readers.calibration import GrdCalibration
from sarcolor.readers.polarisation import CROSS_POLARISATIONS, co_pol_check
from sarcolor.scale import RasterMetadata, Rescaled, named_polarisation

log = logging.getLogger(__name__)

STAC_SUFFIXES = (".json", ".geojson")
URL = re.compile(r"^(https?):/+", re.I)  # also a URL whose // a Path collapsed ("https:/host/item.json")
RASTER_TYPES = ("image/tiff", "image/vnd.stac.geotiff", "application/x-geotiff")
RASTER_SUFFIXES = (".tif", ".tiff")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".jp2")
RASTER_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+", b"\x89PNG", b"\xff\xd8\xff")  # TIFF, BigTIFF, PNG, JPEG
FETCH_TIMEOUT_S = 60
DESCRIPTION_CHARS = 80  # of an asset's description, in the scale decision's reason (its first words say what it holds)
# GDAL settings for remote assets: no directory listing on open (one request saved per file), retries on
# the transient errors (429, 502-504) object stores give under load.
REMOTE_ENV = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_HTTP_MAX_RETRY": 3, "GDAL_HTTP_RETRY_DELAY": 1}


def input_location(path: str | Path) -> str:
    """A path as given, or a URL whose ``//`` a ``Path`` collapsed, restored."""
    return URL.sub(lambda m: f"{m.group(1).lower()}://", str(path), count=1)


def is_url(location: str) -> bool:
    return URL.match(location) is not None


def is_stac_item(path: str | Path) -> bool:
    """Whether ``path`` is given as a STAC Item: a URL, or a local .json file."""
    location = input_location(path)
    return is_url(location) or Path(location).suffix.lower() in STAC_SUFFIXES


def import_pystac():
    try:
        import pystac
    except ImportError:
        raise SarcolorError("reading STAC items needs pystac: pip install 'sarcolor[stac]'") from None
    return pystac


def read_href(href: str, what: str) -> bytes:
    """The bytes of a local file or an http(s) URL; every failure is a one-line error naming ``what``."""
    try:
        if is_url(href):
            with urllib.request.urlopen(href, timeout=FETCH_TIMEOUT_S) as response:
                return response.read()
        return Path(href.removeprefix("file://")).read_bytes()
    except urllib.error.HTTPError as exc:
        raise SarcolorError(f"cannot fetch {what} {href}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise SarcolorError(f"cannot fetch {what} {href}: {first_line(exc.reason) if isinstance(exc.reason, BaseException) else exc.reason}") from None
    except (OSError, ValueError) as exc:
        raise SarcolorError(f"cannot read {what} {href}: {getattr(exc, 'strerror', None) or first_line(exc)}") from None


def item_dict(data: object, location: str) -> tuple[dict, str]:
    """The Item in a parsed JSON document: the document itself, or the only feature of a search's results; and
    the JSON pointer to it inside the document ('' for the document itself)."""
    pointer = ""
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        features = data.get("features") or []
        if len(features) != 1:
            raise SarcolorError(f"{location} holds {len(features)} STAC items (a search's results): save the one to colourise")
        data, pointer = features[0], "/features/0"
    if not isinstance(data, dict) or data.get("type") != "Feature":
        kind = data.get("type") if isinstance(data, dict) else type(data).__name__
        raise SarcolorError(f"{location} is not a STAC Item (its type is {kind!r}, not 'Feature')")
    return data, pointer


def item_reference(item, where: str, pointer: str) -> str:
    """Where the Item itself is, for a link to it: the file or URL read when it is the Item; inside a search's
    results, the Item's own URL (a STAC API's, its ``self`` link) or else the feature in the file read."""
    if not pointer:
        return where
    declared = next((link.href for link in item.links if link.rel == "self"), None)
    return declared if declared and is_url(declared) else f"{where}#{pointer}"


def raster_given_as_item(location: str) -> SarcolorError:
    return SarcolorError(
        f"{location} is a raster, not a STAC Item: sarcolor reads a remote raster through its STAC Item, so give "
        "the Item's URL, or download the raster and give its path"
    )


def load_item(location: str):
    """The pystac Item at a local path or URL, its relative asset hrefs resolved against where it was read, and
    where the Item itself is (``item_reference``)."""
    pystac = import_pystac()
    if not is_url(location) and not Path(location).is_file():
        raise SarcolorError(f"input not found: {location}")
    if is_url(location) and urlparse(location).path.lower().endswith(RASTER_SUFFIXES + IMAGE_SUFFIXES):
        raise raster_given_as_item(location)  # before fetching what may be gigabytes
    text = read_href(location, "STAC item")
    if text.startswith(RASTER_MAGIC):
        raise raster_given_as_item(location)
    try:
        data, pointer = item_dict(json.loads(text), location)
        item = pystac.Item.from_dict(data, preserve_dict=False)
    except json.JSONDecodeError as exc:
        raise SarcolorError(f"{location} is not a STAC Item: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise SarcolorError(f"{location} is not a STAC Item: it holds binary data, not JSON text") from None
    except (KeyError, TypeError, ValueError, pystac.STACError) as exc:
        raise SarcolorError(f"{location} is not a valid STAC Item: {type(exc).__name__} {first_line(exc)}") from None
    where = location if is_url(location) else str(Path(location).resolve())
    reference = item_reference(item, where, pointer)
    item.set_self_href(where)
    return item, reference


@dataclass(frozen=True)
class ItemAsset:
    key: str
    href: str  # absolute: a path or a URL
    polarisation: str | None
    asset: object  # pystac.Asset

    @property
    def raster_band(self) -> dict:
        bands = self.asset.extra_fields.get("raster:bands") or [{}]
        return bands[0] if isinstance(bands[0], dict) else {}


def is_raster_asset(asset) -> bool:
    """A data raster: not a thumbnail, overview or metadata file."""
    roles = set(asset.roles or [])
    if roles and not roles & {"data", "backscatter", "amplitude", "intensity"}:
        return False
    media = (asset.media_type or "").lower()
    if media:
        return media.startswith(RASTER_TYPES)
    return urlparse(asset.href).path.lower().endswith(RASTER_SUFFIXES)


def asset_polarisation(key: str, asset) -> str | None:
    """The asset's ``sar:polarizations`` when it lists one; else what its key or title names."""
    listed = asset.extra_fields.get("sar:polarizations")
    if isinstance(listed, list) and len(listed) == 1:
        return str(listed[0]).upper()
    return named_polarisation(key, asset.title)


def raster_assets(item) -> list[ItemAsset]:
    pols = [str(p).upper() for p in item.properties.get("sar:polarizations") or []]
    found = []
    for key, asset in item.assets.items():
        if is_raster_asset(asset):
            href = asset.get_absolute_href() or asset.href
            found.append(ItemAsset(key, href, asset_polarisation(key, asset), asset))
    if len(found) == 1 and found[0].polarisation is None and len(pols) == 1:  # one band of a single-pol item
        found[0] = ItemAsset(found[0].key, found[0].href, pols[0], found[0].asset)
    return found


def choose_asset(item, allow_co_pol: bool) -> tuple[ItemAsset, str, str | None]:
    """(asset, reason, warning): the cross-pol raster asset, or a co-pol one when allowed; else a one-line error."""
    rasters = raster_assets(item)
    cross = [a for a in rasters if a.polarisation in CROSS_POLARISATIONS]
    if len(cross) > 1:
        raise SarcolorError(f"{item.id}: several cross-polarisation assets ({', '.join(a.key for a in cross)}); cannot tell which to colourise")
    listed = ", ".join(sorted(item.assets)) or "none"
    if cross:
        chosen = cross[0]
        others = ", ".join(a.key for a in rasters if a is not chosen) or "no other raster"
        return chosen, f"asset {chosen.key!r} chosen, the {chosen.polarisation} band the models expect (beside {others})", None
    co = [a for a in rasters if a.polarisation is not None]
    if not co:
        raise SarcolorError(
            f"{item.id}: no VH or HV raster asset (assets: {listed}): sarcolor reads Sentinel-1 GRD or RTC items"
        )
    chosen = co[0]
    warning = co_pol_check(item.id, chosen.polarisation, allow_co_pol, f"its only polarisation asset ({chosen.key!r})")
    return chosen, f"asset {chosen.key!r} chosen ({chosen.polarisation}, on request)", warning


def item_time(item) -> tuple[datetime | None, datetime | None]:
    """(start, end) of the acquisition: the item's datetime, or its start and end datetimes."""
    if item.datetime is not None:
        return item.datetime, item.datetime
    parse = import_pystac().utils.str_to_datetime
    start, end = item.properties.get("start_datetime"), item.properties.get("end_datetime")
    return (parse(start) if start else None), (parse(end) if end else None)


def asset_metadata(item, chosen: ItemAsset) -> RasterMetadata:
    """What the item says about the asset's values, for ``--input-scale auto``."""
    band = chosen.raster_band
    description = textwrap.shorten(chosen.asset.description, DESCRIPTION_CHARS) if chosen.asset.description else None
    text = "; ".join(t for t in (chosen.asset.title, description) if t)
    tags = {key: str(value) for key, value in item.properties.items() if key.startswith("sar:") and isinstance(value, str)}
    return RasterMetadata(
        name=Path(urlparse(chosen.href).path).name, description=text or None, units=band.get("unit") or None,
        tags=tags, polarisation=chosen.polarisation,
    )


def rescaling(chosen: ItemAsset) -> Rescaled | None:
    band = chosen.raster_band
    scale, offset = float(band.get("scale", 1.0)), float(band.get("offset", 0.0))
    return None if (scale, offset) == (1.0, 0.0) else Rescaled(scale, offset)


def grd_calibration(item, chosen: ItemAsset, dataset) -> GrdCalibration | None:
    """A GRD item's calibration from its calibration and noise table assets, for an asset of integer DNs."""
    if not np.issubdtype(np.dtype(dataset.dtypes[0]), np.integer):
        return None
    pol = (chosen.polarisation or "").lower()
    calibration, noise = item.assets.get(f"schema-calibration-{pol}"), item.assets.get(f"schema-noise-{pol}")
    if calibration is None:
        return None
    hrefs = [asset.get_absolute_href() or asset.href for asset in (calibration, noise) if asset is not None]
    tables = [read_href(href, "calibration table") for href in hrefs]
    if noise is None:
        log.warning("%s: no schema-noise-%s asset; thermal noise is not removed", item.id, pol)
    names = ", ".join(Path(urlparse(href).path).name for href in hrefs)
    return GrdCalibration.from_xml(tables[0], tables[1] if noise is not None else None, names)


def open_asset(item, chosen: ItemAsset) -> rasterio.DatasetReader:
    """The asset opened in place (a path, or a URL through GDAL's virtual file systems)."""
    href = chosen.href.removeprefix("file://")
    if not is_url(href) and "://" not in href and not Path(href).is_file():
        raise SarcolorError(f"{item.id}: asset {chosen.key!r} not found at {href}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(href)
    except RasterioIOError as exc:
        hint = " (a signed URL may be needed: sign Planetary Computer items with planetary_computer.sign)" if "403" in str(exc) else ""
        raise SarcolorError(f"cannot read asset {chosen.key!r} of {item.id} at {href}: {first_line(exc)}{hint}") from None


@dataclass
class OpenedItem:
    item: object  # pystac.Item
    location: str
    asset: ItemAsset
    dataset: rasterio.DatasetReader
    metadata: RasterMetadata
    calibration: object | None  # GrdCalibration or Rescaled
    pixel_spacing: float | None
    warning: str | None = None  # a co-pol asset colourised on request
    reference: str | None = None  # where the Item itself is (``item_reference``)

    def tags(self) -> dict[str, str]:
        """Provenance for the output's metadata."""
        return {"SARCOLOR_INPUT": self.location, "SARCOLOR_STAC_ASSET": self.asset.key,
                "SARCOLOR_POLARISATION": self.asset.polarisation or "unknown"}

    @property
    def has_gcps_only(self) -> bool:
        return self.dataset.crs is None and bool(self.dataset.gcps[0])

    def close(self) -> None:
        self.dataset.close()


def open_item(location: str, allow_co_pol: bool) -> OpenedItem:
    """Open the cross-pol asset of the STAC Item at ``location`` (a path or URL), with what the item says about it."""
    item, reference = load_item(location)
    chosen, reason, warning = choose_asset(item, allow_co_pol)
    dataset = open_asset(item, chosen)  # before the choice is said: an unreadable asset is the only line
    log.info("%s: %s", item.id, reason)
    if warning:
        log.warning("%s: %s", item.id, warning)
    try:
        if dataset.count != 1:
            log.info("%s: asset %r has %d bands; band 1 is read", item.id, chosen.key, dataset.count)
        calibration = grd_calibration(item, chosen, dataset) or rescaling(chosen)
        spacing = item.properties.get("sar:pixel_spacing_range") or chosen.raster_band.get("spatial_resolution")
        return OpenedItem(item, location, chosen, dataset, asset_metadata(item, chosen), calibration,
                          float(spacing) if spacing else None, warning, reference)
    except BaseException:
        dataset.close()
        raise
