"""``--stac``: the output's own STAC Item, written beside it (``NAME.json`` for ``NAME.tif``).

The Item describes the GeoTIFF as written: its footprint in EPSG:4326 (the image's outline through its
transform or GCPs, before any warp: a warped grid's rectangle also covers the masked corners around a rotated
swath), its projection, the acquisition time of the input (its STAC Item's, a product manifest's, or the time a
Sentinel-1 name carries), and where it came from: the input's absolute path or URL (a ``derived_from`` link
to an input Item), the optical reference image the colours were fitted on (a ``derived_from`` link, its sensing time
and clear share), the polarisation read, the model and sarcolor's version (the processing extension). It is
written with the rasters, through ``io.writing_together``: to a temporary file once they are finished, and
renamed with them, or not at all.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import GCPTransformer
from rasterio.warp import transform as transform_points

from sarcolor import __version__
from sarcolor.errors import SarcolorError, write_failure
from sarcolor.io import check_output_target, output_driver, remove_stale_temp_files, umask
from sarcolor.readers import Provenance
from sarcolor.readers.stac import import_pystac, input_location, is_url

log = logging.getLogger(__name__)

PROCESSING_EXTENSION = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
OUTLINE_POINTS = 16  # per edge: a warped or GCP-georeferenced outline is not straight in EPSG:4326
# Common metadata of the input Item that still describes the output (the SAR fields describe the input only).
KEPT_PROPERTIES = ("platform", "constellation", "mission", "instruments")


def stac_item_path(output_path: Path) -> Path:
    return output_path.with_suffix(".json")


def check_stac_output(output_path: Path, overwrite: bool) -> Path:
    """Before any work: the output is a GeoTIFF (PNG and JPEG carry no georeferencing to describe), pystac is
    installed, and the Item's path takes a write; a killed run's stale temporary Item goes, as the image's does."""
    if output_driver(output_path) != "GTiff":
        raise SarcolorError(f"--stac describes a georeferenced GeoTIFF: write a .tif, not {output_path.name}")
    import_pystac()
    item_path = check_output_target(stac_item_path(output_path), overwrite)
    remove_stale_temp_files(item_path)
    return item_path


def check_describable(provenance: Provenance | None, src: rasterio.DatasetReader) -> None:
    """Before any work: the input says when it was acquired, and where it lies."""
    if provenance is None or provenance.start is None:
        name = provenance.input if provenance else src.name
        raise SarcolorError(
            f"--stac: no acquisition time known for {name} (a STAC item's datetime, a product manifest's startTime, or a Sentinel-1 name's YYYYMMDDTHHMMSS)"
        )
    if src.crs is None and not src.gcps[0]:
        raise SarcolorError(f"--stac: {Path(src.name).name} has no CRS or GCPs, so its output has no footprint")


@dataclass(frozen=True)
class ReferenceSource:
    """The optical reference image, as a source of the output."""

    path: Path
    date: datetime | None  # its sensing time, where its name carries it
    clear_share: float  # the share of the SAR scene its clear pixels cover (0..1)


@dataclass(frozen=True)
class OutputDescription:
    """What the Item says about the output besides its footprint."""

    provenance: Provenance
    model: str  # the --model given (a bundled name or a file)
    detail: float | None
    input_scale: str  # the scale read and why
    cog: bool
    warning: str | None = None
    confidence: Path | None = None  # the confidence map written beside, if any
    reference: ReferenceSource | None = None  # the optical image the colours were fitted on, if any


def outline(src: rasterio.DatasetReader) -> tuple[np.ndarray, np.ndarray]:
    """The image's outline (closed, counter-clockwise on a north-up map) in EPSG:4326: (longitudes, latitudes)."""
    steps = np.linspace(0.0, 1.0, OUTLINE_POINTS, endpoint=False)
    h, w = src.height, src.width
    rows = np.r_[steps * h, np.full(OUTLINE_POINTS, h), (1 - steps) * h, np.zeros(OUTLINE_POINTS), 0.0]
    cols = np.r_[np.zeros(OUTLINE_POINTS), steps * w, np.full(OUTLINE_POINTS, w), (1 - steps) * w, 0.0]
    gcps, gcp_crs = src.gcps
    if src.crs is None and gcps:
        with GCPTransformer(gcps, tps=True) as to_map:
            xs, ys = to_map.xy(rows, cols, offset="ul")
        crs = gcp_crs
    else:
        xs, ys = rasterio.transform.xy(src.transform, rows, cols, offset="ul")
        crs = src.crs
    lons, lats = transform_points(crs, "EPSG:4326", np.asarray(xs, float), np.asarray(ys, float))
    return np.asarray(lons), np.asarray(lats)


def footprint(src: rasterio.DatasetReader) -> tuple[dict, list[float]]:
    """(GeoJSON polygon, bbox) of a raster in EPSG:4326."""
    lons, lats = outline(src)
    ring = [[round(float(x), 7), round(float(y), 7)] for x, y in zip(lons, lats)]
    bbox = [round(float(v), 7) for v in (lons.min(), lats.min(), lons.max(), lats.max())]
    return {"type": "Polygon", "coordinates": [ring]}, bbox


def absolute(location: str) -> str:
    """A URL as given, a path made absolute: an Item is read from anywhere, not from where the command ran."""
    return location if is_url(location) or "://" in location else str(Path(location).resolve())


def lineage(description: OutputDescription) -> str:
    p = description.provenance
    pol = f"the {p.polarisation} band" if p.polarisation else "band"
    detail = f" at detail {description.detail:g}" if description.detail is not None else ""
    read, given = absolute(p.read), absolute(p.input)
    source = read if read == given else f"{read} (given {given})"
    return (f"Optical-like RGB colourised by sarcolor {__version__} (model {description.model}{detail}) from {pol} of "
            f"{source}; input scale {description.input_scale}")


def build_item(image: Path, written: Path, description: OutputDescription, unwarped: Path | None = None):
    """The pystac Item of the GeoTIFF ``written`` (a finished temporary file) that will be at ``image``; its
    footprint is the outline of ``unwarped`` (the same pixels before a warp), where given."""
    pystac = import_pystac()
    from pystac.extensions.projection import ProjectionExtension

    p = description.provenance
    with rasterio.open(unwarped or written) as src:
        geometry, bbox = footprint(src)
    with rasterio.open(written) as src:
        crs, transform, shape = src.crs, src.transform, [src.height, src.width]
    start, end = p.start, p.end or p.start
    item = pystac.Item(
        id=image.stem, geometry=geometry, bbox=bbox, datetime=start if start == end else None,
        start_datetime=None if start == end else start, end_datetime=None if start == end else end,
        properties={}, stac_extensions=[PROCESSING_EXTENSION],
    )
    source = getattr(p.item, "properties", {}) or {}
    item.properties.update({key: source[key] for key in KEPT_PROPERTIES if key in source})
    item.properties.update({
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "processing:lineage": lineage(description),
        "processing:software": {"sarcolor": __version__},
        "sarcolor:model": description.model,
        "sarcolor:input": absolute(p.input),
        "sarcolor:polarisation": p.polarisation,
        "sarcolor:input_scale": description.input_scale,
    })
    if description.detail is not None:
        item.properties["sarcolor:detail"] = description.detail
    if description.warning:
        item.properties["sarcolor:warning"] = description.warning
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    proj.shape = shape
    if crs is not None:
        proj.code = f"EPSG:{crs.to_epsg()}" if crs.to_epsg() else None
        proj.wkt2 = None if crs.to_epsg() else crs.to_wkt()
        proj.transform = list(transform)[:6]
    media = pystac.MediaType.COG if description.cog else pystac.MediaType.GEOTIFF
    item.add_asset("image", pystac.Asset(
        href=f"./{image.name}", media_type=media, roles=["data", "visual"],
        title=f"Optical-like RGB colourised from Sentinel-1 {p.polarisation or 'SAR'}",
    ))
    if description.confidence is not None:
        item.add_asset("confidence", pystac.Asset(
            href=f"./{description.confidence.name}", media_type=pystac.MediaType.GEOTIFF, roles=["data", "quality"],
            title="Expected colour error per pixel (float32, NaN where there is no data)",
        ))
    if p.item is not None:
        href = p.item_href or absolute(p.input)
        item.add_link(pystac.Link("derived_from", href, media_type=pystac.MediaType.GEOJSON, title=f"Sentinel-1 item {p.item.id}"))
    if description.reference is not None:
        add_reference(item, description.reference)
    return item


def add_reference(item, reference: ReferenceSource) -> None:
    """The optical reference image as a source of ``item``: a ``derived_from`` link and its fields."""
    pystac = import_pystac()
    href = absolute(input_location(str(reference.path)))  # a URL whose // a Path collapsed, restored
    item.add_link(pystac.Link("derived_from", href, title=f"optical reference image {reference.path.name}"))
    item.properties["sarcolor:reference"] = href
    if reference.date is not None:
        item.properties["sarcolor:reference_date"] = reference.date.strftime("%Y-%m-%dT%H:%M:%SZ")
    item.properties["sarcolor:reference_clear_share"] = round(reference.clear_share, 4)


class StacItemWriter:
    """The output's Item as one more output of ``io.writing_together``: ``finish`` writes it to a temporary file
    beside the target once the image before it is finished, and the rename puts it in place with the image."""

    def __init__(self, image_writer, description: OutputDescription) -> None:
        self.image_writer = image_writer
        self.description = description
        self.path = stac_item_path(image_writer.path)
        self._tmp: Path | None = None

    def open(self) -> "StacItemWriter":
        return self

    def close(self) -> None:
        pass

    def finish(self) -> Path:
        writer = self.image_writer
        item = build_item(writer.path, writer.finished, self.description, writer.unwarped)
        text = json.dumps(item.to_dict(include_self_link=False, transform_hrefs=False), indent=2)
        try:
            fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".probe", dir=self.path.parent)
            self._tmp = Path(name)
            with os.fdopen(fd, "w") as out:
                out.write(text + "\n")
            os.chmod(self._tmp, 0o666 & ~umask())
        except OSError as exc:
            raise write_failure(self.path, exc) from None
        log.info("STAC item: %s", self.path.name)
        return self._tmp

    def discard(self) -> None:
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
