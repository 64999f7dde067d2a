"""An array in memory (NumPy) or out of it (Dask) read as a one-band raster, so ``SarReader`` checks, scales and
reads it exactly as it reads a file: the same scale decision, the same 99 % quantile from the same decimated
pixels, the same validity and the same mirroring at the scene's edges.

A Dask block is read through a copy that holds only the block and its halo (``holding``): the scene's size and
georeferencing stay, so windows are still counted in scene pixels and mirrored at the scene's edges only.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import MaskFlags
from rasterio.windows import Window

from sarcolor.readers.raster import decimated_positions

VALID, INVALID = np.uint8(255), np.uint8(0)  # GDAL's mask values


@dataclasses.dataclass(frozen=True, eq=False)
class ArrayDataset:
    """The part of ``rasterio.DatasetReader`` that ``SarReader`` reads, over a 2-D array.

    ``data`` covers rows and columns [offset, offset + data.shape) of a (height, width) scene; None in a
    copy sent to Dask workers, which get their block through ``holding``.
    """

    data: object  # numpy.ndarray or dask.array.Array, (rows, cols)
    name: str
    dtype: str
    height: int
    width: int
    nodata: float | None = None
    crs: CRS | None = None
    transform: Affine = Affine.identity()
    description: str | None = None
    unit: str | None = None
    metadata: dict = dataclasses.field(default_factory=dict)  # the dataset's tags
    offset: tuple[int, int] = (0, 0)
    _decimated_reads: dict = dataclasses.field(default_factory=dict, init=False, repr=False)

    driver = "MEM"
    count = 1

    @classmethod
    def of(cls, data, name: str, **georeferencing) -> ArrayDataset:
        return cls(data, name, str(data.dtype), data.shape[0], data.shape[1], **georeferencing)

    @property
    def dtypes(self) -> tuple[str]:
        return (self.dtype,)

    @property
    def nodatavals(self) -> tuple[float | None]:
        return (self.nodata,)

    @property
    def descriptions(self) -> tuple[str | None]:
        return (self.description,)

    @property
    def scales(self) -> tuple[float]:
        return (1.0,)

    @property
    def offsets(self) -> tuple[float]:
        return (0.0,)

    @property
    def units(self) -> tuple[str | None]:
        return (self.unit,)

    @property
    def mask_flag_enums(self) -> tuple[list[MaskFlags]]:
        return ([MaskFlags.all_valid] if self.nodata is None else [MaskFlags.nodata],)

    @property
    def gcps(self) -> tuple[list, None]:
        return [], None

    def tags(self, bidx: int = 0) -> dict[str, str]:
        return dict(self.metadata) if bidx == 0 else {}

    def without_data(self) -> ArrayDataset:
        return dataclasses.replace(self, data=None)

    def holding(self, block: np.ndarray, offset: tuple[int, int]) -> ArrayDataset:
        """This scene, of which only ``block`` (its pixels from row, col ``offset`` on) can be read."""
        return dataclasses.replace(self, data=block, offset=offset)

    def read(self, indexes=1, window: Window | None = None, out_shape=None, resampling=None) -> np.ndarray:
        del indexes, resampling  # one band; a decimated read takes the nearest pixel, as GDAL's nearest does
        if out_shape is not None:
            return self._decimated(tuple(out_shape))
        return np.asarray(self.data[self._slices(window)])

    def read_masks(self, indexes=1, window: Window | None = None, out_shape=None, resampling=None) -> np.ndarray:
        return self._mask(self.read(indexes, window, out_shape, resampling))

    def _slices(self, window: Window | None) -> tuple[slice, slice]:
        if window is None:
            window = Window(0, 0, self.width, self.height)
        rows, cols = window.toslices()
        (row0, col0), (held_rows, held_cols) = self.offset, self.data.shape
        if rows.start < row0 or cols.start < col0 or rows.stop > row0 + held_rows or cols.stop > col0 + held_cols:
            raise ValueError(f"window {window} reaches outside the held part of the array (a halo too narrow)")
        return slice(rows.start - row0, rows.stop - row0), slice(cols.start - col0, cols.stop - col0)

    def _decimated(self, out_shape: tuple[int, int]) -> np.ndarray:
        """The whole scene decimated to ``out_shape``: one pass over a Dask array, kept for the mask's read."""
        if out_shape not in self._decimated_reads:
            if self.offset != (0, 0) or self.data.shape != (self.height, self.width):
                raise ValueError("a decimated read needs the whole scene")
            rows, cols = (decimated_positions(length, n) for length, n in zip((self.height, self.width), out_shape))
            picked = self.data[rows][:, cols]
            self._decimated_reads[out_shape] = np.asarray(picked.compute() if hasattr(picked, "compute") else picked)
        return self._decimated_reads[out_shape]

    def _mask(self, raw: np.ndarray) -> np.ndarray:
        if self.nodata is None:
            return np.full(raw.shape, VALID)
        invalid = np.isnan(raw) if np.isnan(self.nodata) else raw == self.nodata
        return np.where(invalid, INVALID, VALID)
