"""Sentinel-2 references as they are published: a L1C or L2A product as downloaded (a ``.SAFE`` folder or its
``.zip``) and a Sentinel-2 STAC Item (a local .json or a URL).

Either comes down to what a band folder is: one raster per band, opened by the band-folder reader
(``image.ReferenceImage``). A product's are the JPEG2000 images its ``MTD_MSIL1C.xml`` or ``MTD_MSIL2A.xml`` lists
(each band at its finest resolution, and the L2A scene classification ``SCL``), read in place (``/vsizip/`` inside
a zip). GDAL's SENTINEL2 driver is not used: it would mosaic each resolution into a tile-wide VRT from the granule's
metadata, where the reader needs three bands and the classes, each on the SAR grid from its own georeferencing.
From processing baseline 04.00 on, the DNs carry an offset (``RADIO_ADD_OFFSET`` in L1C, ``BOA_ADD_OFFSET`` in
L2A: -1000), added back here so that the stretch and the cloud test see reflectance x 10,000 on every baseline.
An Item's bands are its assets named B04, B03, B02 (by their ``eo:bands`` or key) or of common name red, green,
blue, and ``scl``; their ``raster:bands`` scale and offset are applied.
"""
from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sarcolor.errors import SarcolorError
from sarcolor.readers import name_time
from sarcolor.readers.safe import FolderProduct, ProductFiles, ZipProduct
from sarcolor.readers.stac import (REMOTE_ENV, ItemAsset, input_location, is_raster_asset, is_stac_item, is_url, item_time,
                                   load_item)

log = logging.getLogger(__name__)

METADATA = ("MTD_MSIL1C.xml", "MTD_MSIL2A.xml")  # at the root of a L1C or L2A product
BAND_ORDER = ("1", "2", "3", "4", "5", "6", "7", "8", "8A", "9", "10", "11", "12")  # the metadata's band_id 0..12
IMAGE_BAND = re.compile(r"_(?:B0?(\d{1,2}A?)|(SCL))(?:_(\d+)m)?$", re.IGNORECASE)  # ..._B04, ..._B04_10m, ..._SCL_20m
REFLECTANCE = 10_000.0  # what the reader takes reflectance 1 to be (the DNs' quantification value)
OFFSET_BASELINE = (4, 0)  # the processing baseline from which DNs carry an offset
BASELINE_OFFSET = -1000.0  # that offset, where the metadata does not list it
SENTINEL1_NAME = re.compile(r"^S1[A-D]_", re.IGNORECASE)  # S1A_IW_GRDH_1SDV_...
NAME_BASELINE = re.compile(r"_N(\d{2})(\d{2})_")  # S2B_MSIL1C_20200823T054639_N0209_R048_...
ITEM_BAND = re.compile(r"^B0?(\d{1,2}A?)$", re.IGNORECASE)
COMMON_NAMES = {"coastal": "1", "blue": "2", "green": "3", "red": "4", "rededge1": "5", "rededge2": "6", "rededge3": "7",
                "nir": "8", "nir08": "8A", "nir09": "9", "cirrus": "10", "swir16": "11", "swir22": "12"}
JP2_TYPE = "image/jp2"


@dataclass(frozen=True)
class BandSource:
    """A product's or an Item's rasters, as a band folder gives them to the reader."""

    files: dict[str, str]  # band ("4", "8A", "SCL") -> where GDAL opens it
    levels: dict[str, tuple[float, float]] = field(default_factory=dict)  # band -> (gain, offset): to reflectance x 10,000
    taken: datetime | None = None  # the sensing time
    env: dict = field(default_factory=dict)  # GDAL settings while it is read (remote assets)


def sentinel2_source(path: str | Path) -> BandSource | None:
    """The band files of the Sentinel-2 product or STAC Item at ``path``; None for anything else (a raster, a band
    folder). A Sentinel-1 product, or a .SAFE or .zip that holds no Sentinel-2 product, is a one-line error."""
    location = input_location(path)
    if is_stac_item(location):
        return item_source(location)
    path = Path(location)
    if path.suffix.lower() in (".safe", ".zip") and SENTINEL1_NAME.match(path.name):
        raise SarcolorError(f"the reference {path.name} is a Sentinel-1 product (radar), not an optical image")
    files = product_files(path)
    if files is None:
        return None
    try:
        return product_source(files)
    finally:
        files.close()


def product_files(path: Path) -> ProductFiles | None:
    """A Sentinel-2 product's files (a .SAFE folder, its metadata file, a .zip), or None when ``path`` is none."""
    if path.is_dir():
        if any((path / name).is_file() for name in METADATA):
            return FolderProduct(path)
        if path.suffix.lower() == ".safe":
            raise SarcolorError(f"the reference {path.name} is not a Sentinel-2 product: no {' or '.join(METADATA)} inside")
        return None
    if path.name in METADATA and path.is_file():
        return FolderProduct(path.parent)
    if path.suffix.lower() == ".zip" and path.is_file():
        return ZipProduct(path, METADATA, "Sentinel-2")
    return None


def local_name(element: ET.Element) -> str:
    return element.tag.rsplit("}", 1)[-1]


def elements(root: ET.Element, *names: str) -> list[ET.Element]:
    """The elements of ``root`` named one of ``names``, whatever their namespace."""
    return [e for e in root.iter() if local_name(e) in names]


def product_source(files: ProductFiles) -> BandSource:
    metadata = next(name for name in METADATA if files.exists(name))
    try:
        root = ET.fromstring(files.read(metadata))
    except ET.ParseError as exc:
        raise SarcolorError(f"{files.name}: unreadable {metadata} ({exc})") from None
    granules = {g.get("granuleIdentifier") for g in elements(root, "Granule")}
    if len(granules) > 1:
        raise SarcolorError(f"{files.name} holds {len(granules)} tiles (the multi-tile format of before December 2016): "
                            "export the tile of the place as a GeoTIFF to use it as the reference")
    images = listed_images(root)
    if not images:
        raise SarcolorError(f"{files.name}: its {metadata} lists no band images: not a complete product")
    absent = [relative for relative in images.values() if not files.exists(relative)]
    if absent:
        raise SarcolorError(f"{files.name}: {absent[0]} is missing: incomplete download? Download the product again")
    baseline = processing_baseline(root, files.name)
    try:
        quantification = next((e.text for e in elements(root, "QUANTIFICATION_VALUE", "BOA_QUANTIFICATION_VALUE") if e.text), REFLECTANCE)
        gain, listed = REFLECTANCE / float(quantification), listed_offsets(root)
    except (ValueError, ZeroDivisionError) as exc:
        raise SarcolorError(f"{files.name}: unreadable {metadata} (its quantification or offsets: {exc})") from None
    offsets = listed or dict.fromkeys(BAND_ORDER, BASELINE_OFFSET if baseline >= OFFSET_BASELINE else 0.0)
    log.info("%s: a Sentinel-2 %s product of processing baseline %02d.%02d", files.name, metadata[7:10], *baseline)
    return BandSource(
        {band: files.gdal_path(relative) for band, relative in images.items()},
        {band: (gain, gain * offsets.get(band, 0.0)) for band in images if band != "SCL"},
        name_time(files.name),
    )


def listed_images(root: ET.Element) -> dict[str, str]:
    """Band ("4", "SCL") -> its image's path inside the product, at the finest resolution listed."""
    found: dict[str, tuple[int, str]] = {}
    for image in elements(root, "IMAGE_FILE", "IMAGE_FILE_2A"):
        relative = (image.text or "").strip()
        match = IMAGE_BAND.search(relative)
        if match:
            band, metres = (match.group(1) or match.group(2)).upper(), int(match.group(3) or 0)
            if band not in found or metres < found[band][0]:
                found[band] = (metres, relative + ".jp2")
    return {band: relative for band, (_, relative) in found.items()}


def processing_baseline(root: ET.Element, name: str) -> tuple[int, int]:
    """The processing baseline (e.g. (4, 0)) from the metadata, else from the product's name (``_N0400_``)."""
    text = next((e.text.strip() for e in elements(root, "PROCESSING_BASELINE") if e.text), "")
    match = re.fullmatch(r"(\d+)\.(\d+)", text) or NAME_BASELINE.search(name)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def listed_offsets(root: ET.Element) -> dict[str, float]:
    """Band -> the offset the metadata lists for its DNs (``RADIO_ADD_OFFSET``, ``BOA_ADD_OFFSET``)."""
    physical = {e.get("bandId"): e.get("physicalBand", "").upper().removeprefix("B").lstrip("0")
                for e in elements(root, "Spectral_Information")}
    offsets = {}
    for element in elements(root, "RADIO_ADD_OFFSET", "BOA_ADD_OFFSET"):
        band_id = element.get("band_id", "")
        band = physical.get(band_id) or (BAND_ORDER[int(band_id)] if band_id.isdigit() and int(band_id) < len(BAND_ORDER) else None)
        if band:
            offsets[band] = float(element.text or "")
    return offsets


def item_source(location: str) -> BandSource:
    """The band assets of the Sentinel-2 STAC Item at ``location``."""
    item, _ = load_item(location)
    assets = band_assets(item)
    if not {"4", "3", "2"} & set(assets):
        listed = ", ".join(sorted(item.assets)) or "none"
        raise SarcolorError(f"{item.id}: no red, green or blue band asset (assets: {listed}): "
                            "a reference item needs Sentinel-2's B04, B03, B02")
    files = {band: asset.href.removeprefix("file://") for band, asset in assets.items()}
    remote = any(is_url(href) or "://" in href for href in files.values())
    try:
        levels = {band: asset_levels(item, asset) for band, asset in assets.items() if band != "SCL"}
    except (TypeError, ValueError) as exc:
        raise SarcolorError(f"{item.id}: unreadable raster:bands scale or offset ({exc})") from None
    return BandSource(files, levels, item_time(item)[0], REMOTE_ENV if remote else {})


def asset_band(key: str, asset) -> str | None:
    """The Sentinel-2 band ("4", "SCL") an asset holds, by its ``eo:bands`` (or STAC 1.1 ``bands``) or its key."""
    described = asset.extra_fields.get("eo:bands") or asset.extra_fields.get("bands") or [{}]
    if len(described) > 1:
        return None  # a true-colour composite (visual), not a band
    first = described[0] if isinstance(described[0], dict) else {}
    for name in (first.get("name"), key):
        if name and str(name).upper() == "SCL":
            return "SCL"
        match = ITEM_BAND.match(str(name or ""))
        if match:
            return match.group(1).upper()
    common = first.get("common_name") or first.get("eo:common_name")
    return COMMON_NAMES.get(str(common).lower()) if common else COMMON_NAMES.get(key.lower())


def band_assets(item) -> dict[str, ItemAsset]:
    """Band -> its raster asset; of two of one band (a COG and a JPEG2000), the COG."""
    found: dict[str, ItemAsset] = {}
    for key, asset in item.assets.items():
        jp2 = (asset.media_type or "").lower().startswith(JP2_TYPE) and (not asset.roles or "data" in asset.roles)
        band = asset_band(key, asset)
        if band and (is_raster_asset(asset) or jp2) and (band not in found or not jp2):
            found[band] = ItemAsset(key, asset.get_absolute_href() or asset.href, None, asset)
    return found


def asset_levels(item, asset: ItemAsset) -> tuple[float, float]:
    """(gain, offset) taking the asset's values to reflectance x 10,000: its ``raster:bands`` scale and offset; without
    them, the offset of processing baseline 04.00 and later unless the catalogue says it removed it."""
    band = asset.raster_band
    if "scale" in band or "offset" in band:
        return REFLECTANCE * float(band.get("scale", 1 / REFLECTANCE)), REFLECTANCE * float(band.get("offset", 0.0))
    baseline = re.fullmatch(r"(\d+)\.(\d+)", str(item.properties.get("s2:processing_baseline", "")))
    removed = item.properties.get("earthsearch:boa_offset_applied") is True
    late = baseline is not None and (int(baseline.group(1)), int(baseline.group(2))) >= OFFSET_BASELINE
    return 1.0, BASELINE_OFFSET if late and not removed else 0.0
