"""Readers: every input inference takes, behind one interface, chosen once where a path comes in.

``open_input(path)`` gives a ``SarInput``: a window reader scaled to the model convention (``SarReader``),
the dataset the output copies its georeferencing from, provenance for the output's metadata, and where
the output lands by default. A plain raster (GeoTIFF, PNG, JPEG) is read as it is, its VH band or file chosen
by ``readers.polarisation``; a Sentinel-1 GRD product (``.SAFE`` folder, ``manifest.safe`` or ``.zip``) by
``readers.safe``, calibrated; a STAC Item (a local .json or a URL) by ``readers.stac``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import rasterio

from sarcolor.errors import SarcolorError
from sarcolor.geometry import WARP_UTM
from sarcolor.readers.raster import SarReader, open_raster, raster_metadata
from sarcolor.readers.polarisation import choose_band, log_choice
from sarcolor.readers.safe import is_product, open_grd, product_files
from sarcolor.readers.stac import REMOTE_ENV, input_location, is_stac_item, is_url, item_time, open_item
from sarcolor.scale import RasterMetadata

# Sentinel-1 names carry the acquisition start: S1A_IW_GRDH_1SDV_20210119T031653_..., ASF's S1A_IW_20180128T161201_...
NAME_TIME = re.compile(r"(?<!\d)(\d{8}T\d{6})(?!\d)")


@dataclass(frozen=True)
class Provenance:
    """Where an output's pixels came from, for its STAC Item (``sarcolor.stac``)."""

    input: str  # the path or URL given
    read: str  # the file or asset href read
    polarisation: str | None
    start: datetime | None = None  # acquisition time, when the input says it
    end: datetime | None = None
    item: object | None = None  # the input's pystac.Item
    item_href: str | None = None  # where that Item itself is: its file or URL, or its place in a search's results


@dataclass
class SarInput:
    reader: SarReader
    tags: dict[str, str] = field(default_factory=dict)  # provenance, written into the output's metadata
    default_warp: str | None = None  # what a left-out --warp means: None keeps the input's georeferencing
    pixel_spacing: float | None = None  # ground pixel size in metres (the pixel size of --warp utm)
    provenance: Provenance | None = None
    files: list[Path] = field(default_factory=list)  # local files read, which outputs must never touch

    @property
    def src(self) -> rasterio.DatasetReader:
        """The dataset whose georeferencing (CRS and transform, or GCPs) the output copies."""
        return self.reader.src


def scale_tag(reader: SarReader) -> dict[str, str]:
    decision = reader.scale_decision
    return {"SARCOLOR_INPUT_SCALE": f"{decision.scale}: {decision.reason}"}


def metric_pixel_size(src: rasterio.DatasetReader) -> float | None:
    if src.crs and src.crs.is_projected and src.crs.linear_units_factor[1] == 1.0:
        return float(src.res[0])
    return None


def is_scene_folder(path: Path) -> bool:
    """Whether ``path`` is a folder of scenes to colourise one by one (not a product's .SAFE folder)."""
    return Path(path).is_dir() and not is_product(Path(path))


def add_warning(reader: SarReader, warning: str | None) -> None:
    """Add ``warning`` (already logged) to what the output's SARCOLOR_WARNING tag says."""
    if warning:
        joined = "; ".join(w for w in (warning, reader.scale_decision.warning) if w)
        reader.scale_decision = dataclasses.replace(reader.scale_decision, warning=joined)


def name_time(*names: str) -> datetime | None:
    """The acquisition start a Sentinel-1 file or product name carries (UTC), or None."""
    for name in names:
        match = NAME_TIME.search(name)
        if match:
            return datetime.strptime(match.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
    return None


@contextlib.contextmanager
def open_input(
    path: str | Path, band: int | None = None, input_scale: str = "auto", quantile: float = 0.99, allow_co_pol: bool = False,
    db_range: tuple[float, float] | str | None = None,
) -> Iterator[SarInput]:
    """Open a raster, a Sentinel-1 GRD product or a STAC Item for colourising; every failure is a one-line
    SarcolorError. ``band`` None chooses the cross-polarisation band; a co-polarisation one needs ``allow_co_pol``.
    ``db_range``: the dB levels an integer stretch's lowest and highest values stand for (8-bit dB exports)."""
    location = input_location(path)
    if is_stac_item(location):
        with open_stac_item(location, band, input_scale, quantile, allow_co_pol, db_range) as scene:
            yield scene
        return
    path = Path(location)
    files = product_files(path) if path.exists() else None
    if files is None:
        with open_plain_raster(path, band, input_scale, quantile, allow_co_pol, db_range) as scene:
            yield scene
        return
    try:
        if band is not None:
            raise SarcolorError(f"--band is for rasters: {files.name}'s cross-polarisation band is chosen from its manifest")
        if input_scale != "auto" or db_range is not None:
            given = f"--input-scale {input_scale}" if input_scale != "auto" else "--db-range"
            raise SarcolorError(f"{given}: a GRD product is calibrated from its own tables; leave it out")
        product = open_grd(path, files, allow_co_pol)
    except BaseException:
        files.close()
        raise
    try:
        metadata = RasterMetadata(name=files.name, description=product.polarisation, polarisation=product.polarisation)
        reader = SarReader(product.dataset, 1, "auto", quantile, calibration=product.calibration, metadata=metadata)
        add_warning(reader, product.warning)
        start = product.manifest.start or name_time(files.name)
        provenance = Provenance(str(path), str(path), product.polarisation, start, product.manifest.stop or start)
        yield SarInput(reader, {**product.tags(), **scale_tag(reader)}, WARP_UTM, product.pixel_spacing, provenance, [path])
    finally:
        product.close()


@contextlib.contextmanager
def open_plain_raster(path: Path, band: int | None, input_scale: str, quantile: float, allow_co_pol: bool,
                      db_range: tuple[float, float] | str | None = None) -> Iterator[SarInput]:
    """A GeoTIFF, PNG or JPEG: the band given, or the cross-pol band of a stack, or the cross-pol file beside it."""
    choice = choose_band(path, band, allow_co_pol)
    log_choice(choice)
    with open_raster(choice.path) as src:
        metadata = raster_metadata(src, choice.band)
        if choice.polarisation:
            metadata = dataclasses.replace(metadata, polarisation=choice.polarisation)
        reader = SarReader(src, choice.band, input_scale, quantile, metadata=metadata, db_range=db_range)
        tags = scale_tag(reader)
        if choice.path != path or choice.polarisation:
            tags.update(SARCOLOR_INPUT=choice.path.name, SARCOLOR_POLARISATION=choice.polarisation or "unknown")
        add_warning(reader, choice.warning)
        start = name_time(choice.path.stem, path.stem, *src.tags().values(), 
                          choice.path.resolve().parent.name)  # a product named in a tag (the examples) or its folder
        provenance = Provenance(str(path), str(choice.path.resolve()), choice.polarisation, start, start)
        yield SarInput(reader, tags, None, metric_pixel_size(src), provenance, [path, choice.path])


@contextlib.contextmanager
def open_stac_item(location: str, band: int | None, input_scale: str, quantile: float, allow_co_pol: bool,
                   db_range: tuple[float, float] | str | None = None) -> Iterator[SarInput]:
    """The cross-pol asset of a STAC Item, read in place (remote COGs through GDAL's /vsicurl/)."""
    if band is not None:
        raise SarcolorError("--band is for rasters: a STAC item's cross-polarisation asset is chosen from the item")
    with rasterio.Env(**REMOTE_ENV):
        opened = open_item(location, allow_co_pol)
        try:
            calibrated = opened.calibration is not None and opened.calibration.decision is not None
            if calibrated and input_scale != "auto":
                raise SarcolorError(f"--input-scale {input_scale}: a GRD item is calibrated from its own tables; leave it out")
            reader = SarReader(opened.dataset, 1, input_scale, quantile, calibration=opened.calibration, metadata=opened.metadata,
                               db_range=db_range)
            add_warning(reader, opened.warning)
            start, end = item_time(opened.item)
            provenance = Provenance(location, opened.asset.href, opened.asset.polarisation, start, end, opened.item, opened.reference)
            files = [Path(href) for href in (location, opened.asset.href) if not is_url(href) and "://" not in href]
            yield SarInput(reader, {**opened.tags(), **scale_tag(reader)}, WARP_UTM if opened.has_gcps_only else None,
                           opened.pixel_spacing or metric_pixel_size(opened.dataset), provenance, files)
        finally:
            opened.close()
