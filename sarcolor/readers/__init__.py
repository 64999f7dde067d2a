"""Readers: every input inference takes, behind one interface, chosen once where a path comes in.

``open_input(path)`` gives a ``SarInput``: a window reader scaled to the model convention (``SarReader``),
the dataset the output copies its georeferencing from, provenance for the output's metadata, and where
the output lands by default. A plain raster (GeoTIFF, PNG, JPEG) is read as it is; a Sentinel-1 GRD
product (``.SAFE`` folder, ``manifest.safe`` or ``.zip``) by ``readers.safe``, calibrated.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import rasterio

from sarcolor.errors import SarcolorError
from sarcolor.geometry import WARP_UTM
from sarcolor.io import SarReader, open_raster
from sarcolor.readers.safe import is_product, open_grd, product_files
from sarcolor.scale import RasterMetadata


@dataclass
class SarInput:
    reader: SarReader
    tags: dict[str, str] = field(default_factory=dict)  # provenance, written into the output's metadata
    default_warp: str | None = None  # what a left-out --warp means: None keeps the input's georeferencing
    pixel_spacing: float | None = None  # ground pixel size in metres (the pixel size of --warp utm)

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


@contextlib.contextmanager
def open_input(path: str | Path, band: int = 1, input_scale: str = "auto", quantile: float = 0.99) -> Iterator[SarInput]:
    """Open a raster or a Sentinel-1 GRD product for colourising; every failure is a one-line SarcolorError."""
    path = Path(path)
    files = product_files(path) if path.exists() else None
    if files is None:
        with open_raster(path) as src:
            reader = SarReader(src, band, input_scale, quantile)
            yield SarInput(reader, scale_tag(reader), None, metric_pixel_size(src))
        return
    try:
        if band != 1:
            raise SarcolorError(f"--band is for rasters: {files.name}'s cross-polarisation band is chosen from its manifest")
        if input_scale != "auto":
            raise SarcolorError(f"--input-scale {input_scale}: a GRD product is calibrated from its own tables; leave it out")
        product = open_grd(path, files)
    except BaseException:
        files.close()
        raise
    try:
        metadata = RasterMetadata(name=files.name, description=product.polarisation)
        reader = SarReader(product.dataset, 1, "auto", quantile, calibration=product.calibration, metadata=metadata)
        yield SarInput(reader, {**product.tags(), **scale_tag(reader)}, WARP_UTM, product.pixel_spacing)
    finally:
        product.close()
