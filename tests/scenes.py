"""Larger scenes made from the real examples, for the tests and benchmarks/api_dask.py."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

ROOT = Path(__file__).resolve().parents[1]
COAST = ROOT / "examples" / "s1_vh_coast_california.tif"
FIELDS = ROOT / "examples" / "s1_vh_fields_california.tif"
NODATA_CORNER = (slice(0, 96), slice(0, 320))  # rows, cols left at 0: nodata in a uint16 raster without a nodata value


def example_mosaic() -> tuple[np.ndarray, rasterio.crs.CRS, rasterio.Affine]:
    """1024² of real SAR: the two examples and their mirror images, with the coast example's georeferencing."""
    with rasterio.open(COAST) as coast, rasterio.open(FIELDS) as fields:
        a, b = coast.read(1), fields.read(1)
        crs, transform = coast.crs, coast.transform
    return np.block([[a, b], [b[::-1], a[:, ::-1]]]), crs, transform


def write_amplitude_scene(path: Path, size: int, rows_per_write: int = 1024) -> Path:
    """A size² uint16 GeoTIFF of linear amplitude (no unit tag: the type says amplitude), tiled from the examples,
    whose brightness rises fourfold from left to right, so only a whole-scene 99 % quantile scales every part alike;
    its top-left corner is 0 (nodata)."""
    mosaic, crs, transform = example_mosaic()
    gain = np.linspace(20.0, 80.0, size, dtype=np.float32)
    profile = dict(driver="GTiff", width=size, height=size, count=1, dtype="uint16", crs=crs, transform=transform,
                   tiled=True, blockxsize=512, blockysize=512, compress="deflate", BIGTIFF="IF_SAFER")
    reps = -(-size // mosaic.shape[1])
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, size, rows_per_write):
            height = min(rows_per_write, size - row)
            lines = np.arange(row, row + height) % mosaic.shape[0]
            strip = np.tile(mosaic[lines], (1, reps))[:, :size]
            amplitude = np.rint((strip.astype(np.float32) + 1.0) * gain).astype(np.uint16)
            if row == 0:
                amplitude[NODATA_CORNER] = 0
            dst.write(amplitude[None], window=Window(0, row, size, height))
    return path
