"""xarray in and out: a DataArray with rioxarray's CRS and transform (or a NumPy array) read as a one-band
scene, and the colours returned as a DataArray on the same grid.

xarray and rioxarray are the ``api`` extra: imported here only, when the Python API is called, so a plain
install (the CLI) runs without them.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from sarcolor.errors import SarcolorError
from sarcolor.readers.array import ArrayDataset

RGB_BANDS = ("red", "green", "blue")
# Attributes rioxarray reads from a raster that are not the raster's tags (sarcolor reads its tags for clues
# about the unit of the values, as it reads a file's).
NOT_TAGS = {"long_name", "units", "_FillValue", "scale_factor", "add_offset", "grid_mapping", "spatial_ref"}
UNNAMED = "the array"


def import_xarray():
    try:
        import rioxarray  # noqa: F401  (registers the .rio accessor)
        import xarray
    except ImportError:
        raise SarcolorError("sarcolor's Python API needs xarray and rioxarray: pip install 'sarcolor[api]'") from None
    return xarray


def is_dataarray(data) -> bool:
    return "xarray" in sys.modules and isinstance(data, sys.modules["xarray"].DataArray)


def is_dask(array) -> bool:
    return hasattr(array, "dask")


@dataclass(frozen=True)
class Grid:
    """The pixel grid the colours are returned on: the input's dimension names, coordinates and georeferencing."""

    dims: tuple[str, str] = ("y", "x")
    coords: dict = field(default_factory=dict)
    crs: CRS | None = None
    transform: Affine | None = None
    gcps: tuple[list, CRS | None] | None = None


def pick_band(array, band: int | None, dim: str = "band"):
    """One band of a (bands, rows, cols) array: the only one, or ``band`` (1-based)."""
    count = array.shape[0]
    if band is None:
        if count != 1:
            raise SarcolorError(
                f"the data has {count} bands along {dim!r}: pick the SAR band with band=N (1..{count}; "
                "the bundled models expect VH)"
            )
        band = 1
    if not 1 <= band <= count:
        raise SarcolorError(f"the data has {count} band(s) along {dim!r}; band={band} is out of range")
    return array[band - 1]


def check_plane(shape: tuple[int, ...], dims: tuple) -> None:
    if len(shape) != 2:
        raise SarcolorError(f"expected a (y, x) or (band, y, x) array, got dims {dims} of shape {shape}")
    if 0 in shape:
        raise SarcolorError(f"the data is empty (shape {shape})")


def numpy_dataset(array, band: int | None) -> tuple[ArrayDataset, Grid]:
    """A NumPy (or Dask) array as an un-georeferenced scene: (rows, cols), or (bands, rows, cols)."""
    if array.ndim == 3:
        array = pick_band(array, band, "axis 0")
    elif band not in (None, 1):
        raise SarcolorError(f"the data has one band; band={band} is out of range")
    check_plane(array.shape, tuple(f"axis {i}" for i in range(array.ndim)))
    return ArrayDataset.of(array, UNNAMED), Grid()


def spatial_dims(data) -> tuple[str, str]:
    from rioxarray.exceptions import MissingSpatialDimensionError

    try:
        dims = data.rio.y_dim, data.rio.x_dim
    except MissingSpatialDimensionError:
        raise SarcolorError(
            f"cannot tell the DataArray's y and x dimensions among {data.dims}: name them y and x "
            "(data.rename(...)) or set them with data.rio.set_spatial_dims(...)"
        ) from None
    if data.dims[-2:] != dims:
        raise SarcolorError(f"the DataArray's dims are {data.dims}: put {dims} last (data.transpose(..., {dims[0]!r}, {dims[1]!r}))")
    return dims


def file_values(data):
    """A DataArray opened with ``masked=True`` holds floats with NaN for nodata: its file's integers again, so it
    is scaled as the file is (an integer type says amplitude; its floats would not say which unit)."""
    file_dtype = data.encoding.get("rasterio_dtype")
    if not file_dtype or not np.issubdtype(data.dtype, np.floating) or not np.issubdtype(np.dtype(file_dtype), np.integer):
        return data, data.rio.nodata
    if data.attrs.get("scale_factor", 1.0) != 1.0 or data.attrs.get("add_offset", 0.0) != 0.0:
        return data, data.rio.nodata  # mask_and_scale: the floats are the values meant
    nodata = data.rio.encoded_nodata
    return (data if nodata is None else data.fillna(nodata)).astype(file_dtype), nodata


def band_attr(value, band: int):
    """A per-band attribute (rioxarray keeps one per band as a tuple) for ``band`` (0-based)."""
    return value[band] if isinstance(value, (tuple, list)) else value


def dataarray_dataset(data, band: int | None) -> tuple[ArrayDataset, Grid]:
    """A DataArray with rioxarray's georeferencing, (y, x) or (band, y, x), as a scene."""
    ydim, xdim = spatial_dims(data)
    band_index = 0
    if data.ndim == 3:
        data = pick_band(data, band, data.dims[0])
        band_index = band - 1 if band else 0
    elif band not in (None, 1):
        raise SarcolorError(f"the DataArray has one band; band={band} is out of range")
    check_plane(data.shape, data.dims)
    values, nodata = file_values(data)
    crs, transform = data.rio.crs, data.rio.transform()
    has_coords = ydim in data.coords and xdim in data.coords
    if crs is None and has_coords and not transform.is_identity:
        raise SarcolorError(
            "the DataArray has map coordinates but no CRS: set it with data.rio.write_crs('EPSG:...'), "
            "or pass data.values to colourise it as a plain array"
        )
    source = data.encoding.get("source")
    dataset = ArrayDataset.of(
        values.data, Path(source).name if source else str(data.name or UNNAMED), nodata=nodata, crs=crs, transform=transform,
        description=band_attr(data.attrs.get("long_name"), band_index), unit=band_attr(data.attrs.get("units"), band_index),
        metadata={str(k): str(v) for k, v in data.attrs.items() if k not in NOT_TAGS},
    )
    coords = {dim: data[dim].variable for dim in (ydim, xdim) if dim in data.coords}
    return dataset, Grid((ydim, xdim), coords, crs, transform)


def raster_grid(src) -> Grid:
    """The grid of a rasterio dataset: coordinates of pixel centres from its transform, or its GCPs."""
    from rioxarray.rioxarray import affine_to_coords

    gcps, gcp_crs = src.gcps
    if gcps:
        return Grid(gcps=(gcps, gcp_crs))
    return Grid(coords=affine_to_coords(src.transform, src.width, src.height), crs=src.crs, transform=src.transform)


def georeferenced(array, grid: Grid, nodata: float | None = None):
    """``array`` (a DataArray on ``grid``) with the grid's CRS, transform or GCPs, and ``nodata``."""
    if grid.gcps:
        array = array.rio.write_gcps(*grid.gcps)
    elif grid.crs is not None:
        array = array.rio.write_crs(grid.crs)
    if grid.transform is not None and not grid.gcps:
        array = array.rio.write_transform(grid.transform)
    return array.rio.write_nodata(nodata, encoded=False) if nodata is not None else array


def rgb_dataarray(rgb, grid: Grid, attrs: dict, valid=None):
    """(3, rows, cols) uint8 colours as a DataArray ``band: [red, green, blue]`` on ``grid``; ``valid`` (rows, cols):
    where the input has data, kept as a coordinate. No nodata value: 0 is also a colour (dark water's red)."""
    xarray = import_xarray()
    coords = {"band": list(RGB_BANDS), **grid.coords}
    if valid is not None:
        coords["valid"] = (grid.dims, valid)
    array = xarray.DataArray(rgb, dims=("band", *grid.dims), coords=coords, name="rgb", attrs={**attrs, "long_name": RGB_BANDS})
    return georeferenced(array, grid)


def confidence_dataarray(error, grid: Grid, tags: dict[str, str]):
    """(rows, cols) float32 expected colour error as a DataArray on ``grid``, NaN where there is no data."""
    xarray = import_xarray()
    array = xarray.DataArray(error, dims=grid.dims, coords=grid.coords, name="confidence",
                             attrs={"long_name": tags["description"], "units": tags["unit"]})
    return georeferenced(array, grid, np.nan)
