"""``sarcolor pairs``: a pairs folder (the training data's layout) from a user's own SAR and optical rasters.

Both images are brought to the model's convention: the SAR through the same reader and scaling as
``colorize`` (amplitude / the scene's 99 % quantile, clipped), the optical's red, green and blue each
divided by its own 99 % quantile and clipped, as in the bundled training data. A georeferenced
optical raster is reprojected onto the SAR's grid (any CRS and pixel size, bilinear, through a
rasterio WarpedVRT, window by window); rasters without georeferencing must already be co-registered
and of equal size. The SAR grid is cut into tiles; tiles with too much nodata or cloud-white optical
are dropped; whole blocks of tiles (or whole files, for a folder of pairs) go to the val split, so
train and val never share ground.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import rasterio
from rasterio._err import CPLE_BaseError
from rasterio.enums import Resampling
from rasterio.windows import Window

from sarcolor.errors import SarcolorError, first_line, write_failure
from sarcolor.geometry import on_grid_of
from sarcolor.infer import list_images
from sarcolor.io import check_output_target, check_outputs_apart_from_inputs, umask
from sarcolor.readers.raster import STATS_MAX_SIDE, SarReader, decimated_shape, open_raster

log = logging.getLogger(__name__)


@dataclass
class PairsOptions:
    tile: int = 256  # tile side in pixels of the SAR grid
    band: int = 1  # SAR band (VH for the bundled model)
    input_scale: str = "auto"
    rgb_bands: tuple[int, int, int] | None = None  # optical bands for red, green, blue (1-based); None: 1, 2, 3
    val_fraction: float = 0.2  # share of blocks (or files) that go to val; 1: all (a folder to evaluate on)
    block_tiles: int = 4  # a block is block_tiles x block_tiles tiles
    max_nodata: float = 0.1  # drop tiles with more invalid pixels than this share
    max_cloud: float = 0.2  # drop tiles with more cloud-white optical pixels than this share
    overwrite: bool = False
    db_range: tuple[float, float] | None = None  # the dB levels of an integer stretch's ends (--db-range)


@dataclass
class PairsSummary:
    folder: Path
    train: list[str] = field(default_factory=list)
    val: list[str] = field(default_factory=list)
    dropped_nodata: int = 0
    dropped_cloud: int = 0


def rgb_band_indexes(src: rasterio.DatasetReader, rgb_bands: tuple[int, int, int] | None) -> list[int]:
    if rgb_bands is None:
        if src.count not in (3, 4):
            raise SarcolorError(
                f"{src.name} has {src.count} bands: say which are red, green and blue with --rgb-bands "
                "(e.g. 4,3,2 for Sentinel-2 bands stored in order B1, B2, ...)"
            )
        return [1, 2, 3]
    if len(rgb_bands) != 3 or not all(1 <= b <= src.count for b in rgb_bands):
        raise SarcolorError(f"--rgb-bands {','.join(map(str, rgb_bands))}: need three bands of 1..{src.count} in {src.name}")
    return list(rgb_bands)


class OpticalOnSarGrid:
    """The optical raster's RGB on the SAR's pixel grid, each channel / its 99 % quantile, clipped to [0, 1]."""

    def __init__(self, optical: rasterio.DatasetReader, sar: rasterio.DatasetReader, rgb_bands) -> None:
        self.bands = rgb_band_indexes(optical, rgb_bands)
        self.source = on_grid_of(optical, sar)
        self.scale = self._channel_quantiles()

    def _channel_quantiles(self) -> np.ndarray:
        shape = decimated_shape(self.source.height, self.source.width, STATS_MAX_SIDE)
        rgb = self.source.read(self.bands, out_shape=(3, *shape), resampling=Resampling.nearest).astype(np.float64)
        valid = self.source.dataset_mask(out_shape=shape, resampling=Resampling.nearest) > 0
        valid &= np.isfinite(rgb).all(0)
        if not valid.any():
            raise SarcolorError("the SAR and optical rasters do not overlap (no valid optical pixel on the SAR grid)")
        scale = np.array([np.quantile(channel[valid], 0.99) for channel in rgb])
        if not (np.isfinite(scale).all() and (scale > 0).all()):
            raise SarcolorError(f"the optical raster's 99 % quantiles are {scale.round(3).tolist()}: no usable red, green, blue")
        return scale

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """RGB (3, h, w) in [0, 1] and validity (h, w) of one window of the SAR grid."""
        rgb = self.source.read(self.bands, window=window).astype(np.float64)
        valid = (self.source.dataset_mask(window=window) > 0) & np.isfinite(rgb).all(0)
        return np.clip(np.nan_to_num(rgb) / self.scale[:, None, None], 0, 1), valid


def tile_windows(height: int, width: int, tile: int) -> list[Window]:
    """Full tiles of the grid, row by row (the ragged right and bottom edges are left out)."""
    return [Window(col, row, tile, tile) for row in range(0, height - tile + 1, tile) for col in range(0, width - tile + 1, tile)]


def spread_val(groups: list, val_fraction: float) -> set:
    """The groups (blocks or files) that go to val: a share of them, spread evenly over the list (all for 1)."""
    if val_fraction >= 1:
        return set(groups)
    if len(groups) < 2:
        return set()
    count = min(len(groups) - 1, max(1, round(len(groups) * val_fraction)))
    picks = np.linspace(0, len(groups) - 1, count + 2)[1:-1].round().astype(int)
    return {groups[i] for i in picks}


def _write_png(path: Path, image: np.ndarray) -> None:
    bands = image if image.ndim == 3 else image[None]
    try:
        with rasterio.open(path, "w", driver="PNG", width=bands.shape[2], height=bands.shape[1], count=bands.shape[0], dtype="uint8") as dst:
            dst.write(bands)
    except (rasterio.errors.RasterioError, CPLE_BaseError) as exc:  # libpng's write errors (a full disk) come as CPLE_*
        raise OSError(first_line(exc)) from None


def cut_tiles(sar_path: Path, optical_path: Path, prefix: str, folder: Path, options: PairsOptions, summary: PairsSummary,
              block_of: Callable[[Window], object]) -> dict[str, object]:
    """Write the usable tiles of one raster pair into ``folder``; returns tile id -> its split group."""
    groups: dict[str, object] = {}
    with open_raster(sar_path) as sar_src, open_raster(optical_path) as optical_src:
        reader = SarReader(sar_src, options.band, options.input_scale, db_range=options.db_range)
        try:
            optical = OpticalOnSarGrid(optical_src, sar_src, options.rgb_bands)
        except rasterio.errors.RasterioError as exc:
            raise SarcolorError(f"cannot read {optical_path} onto the SAR grid: {first_line(exc)}") from None
        for window in tile_windows(reader.height, reader.width, options.tile):
            sar, sar_valid = reader.read(window)
            rgb, rgb_valid = optical.read(window)
            if 1 - (sar_valid & rgb_valid).mean() > options.max_nodata:
                summary.dropped_nodata += 1
                continue
            if (rgb.min(0) >= 0.95).mean() > options.max_cloud:
                summary.dropped_cloud += 1
                continue
            tile_id = f"{prefix}r{int(window.row_off)}_c{int(window.col_off)}"
            _write_png(folder / "sar" / f"{tile_id}.png", np.rint(sar * 255).astype(np.uint8))
            _write_png(folder / "opt" / f"{tile_id}.png", np.rint(rgb * 255).astype(np.uint8))
            groups[tile_id] = block_of(window)
    return groups


def images_by_stem(folder: Path) -> dict[str, Path]:
    """A folder's images by name stem; two images of one stem (b.png and b.tif) cannot be paired: refused."""
    images: dict[str, Path] = {}
    for path in list_images(folder):
        if path.stem in images:
            raise SarcolorError(f"{images[path.stem].name} and {path.name} in {folder} share a name: keep one of them")
        images[path.stem] = path
    return images


def matched_files(sar_dir: Path, optical_dir: Path) -> list[tuple[Path, Path]]:
    """Pairs of images with the same name stem in the two folders."""
    sars, opticals = images_by_stem(sar_dir), images_by_stem(optical_dir)
    common = sorted(set(sars) & set(opticals))
    if not common:
        raise SarcolorError(f"no images with the same name in {sar_dir} and {optical_dir}")
    for stem in sorted(set(sars) ^ set(opticals)):
        log.warning("skipped %s: no image of that name in the other folder", stem)
    return [(sars[stem], opticals[stem]) for stem in common]


def check_pairs_options(options: PairsOptions) -> None:
    if options.tile < 32 or options.block_tiles < 1 or not 0 < options.val_fraction <= 1:
        raise SarcolorError(
            "need --tile >= 32, --block-tiles >= 1 and 0 < --val-fraction <= 1 (1: every tile to val, a folder to evaluate on)"
        )


def check_pairs_target(out: Path, overwrite: bool) -> None:
    """Only a pairs folder (or an empty one) may be replaced: --overwrite never deletes a file or another folder."""
    check_output_target(out, overwrite)
    if out.exists() and not out.is_dir():
        raise SarcolorError(f"output {out} is a file: pairs writes a folder, choose another output")
    if out.is_dir() and any(out.iterdir()) and not (out / "split.json").is_file():
        raise SarcolorError(f"output {out} is a folder that is not a pairs folder (no split.json): it is not replaced, choose another output")


def build_pairs(sar: Path, optical: Path, out: Path, options: PairsOptions = PairsOptions()) -> PairsSummary:
    """Build the pairs folder ``out`` (sar/, opt/, split.json, metadata.json) in a temporary folder, then rename."""
    check_pairs_options(options)
    if sar.is_dir() != optical.is_dir():
        raise SarcolorError("give two images (SAR, optical) or two folders of images with matching names")
    check_outputs_apart_from_inputs([out], [sar, optical])
    check_pairs_target(out, options.overwrite)
    jobs = matched_files(sar, optical) if sar.is_dir() else [(sar, optical)]
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        summary = _fill(tmp, jobs, options, folder_mode=sar.is_dir())
        for folder in (tmp, tmp / "sar", tmp / "opt"):
            os.chmod(folder, 0o777 & ~umask())  # mkdtemp makes 0700 folders; outputs get the usual mode
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except OSError as exc:
        error = write_failure(out, exc)
        shutil.rmtree(tmp, ignore_errors=True)
        raise error from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    summary.folder = out
    return summary


def _fill(folder: Path, jobs: list[tuple[Path, Path]], options: PairsOptions, folder_mode: bool) -> PairsSummary:
    (folder / "sar").mkdir()
    (folder / "opt").mkdir()
    summary = PairsSummary(folder)
    groups: dict[str, object] = {}
    metadata = {}
    for sar_path, optical_path in jobs:
        prefix = f"{sar_path.stem}_" if folder_mode else ""
        block_side = options.tile * options.block_tiles

        def block_of(window: Window, stem=sar_path.stem) -> object:
            return stem if folder_mode else (int(window.row_off) // block_side, int(window.col_off) // block_side)

        found = cut_tiles(sar_path, optical_path, prefix, folder, options, summary, block_of)
        groups.update(found)
        metadata.update({tile_id: {"sar": str(sar_path), "optical": str(optical_path)} for tile_id in found})
    distinct = sorted(set(groups.values()), key=str)
    val_groups = spread_val(distinct, options.val_fraction)
    summary.train = sorted(t for t, g in groups.items() if g not in val_groups)
    summary.val = sorted(t for t, g in groups.items() if g in val_groups)
    if not summary.val or (not summary.train and options.val_fraction < 1):
        raise SarcolorError(
            f"too few usable tiles: {len(groups)} tile(s) of {options.tile} px in {len(distinct)} block(s) "
            f"({summary.dropped_nodata} dropped for nodata, {summary.dropped_cloud} for cloud); a train and a val "
            "split need at least two blocks: use a smaller --tile or --block-tiles, or larger rasters"
        )
    (folder / "split.json").write_text(json.dumps({"train": summary.train, "val": summary.val}, indent=1))
    (folder / "metadata.json").write_text(json.dumps({"tile": options.tile, "tiles": metadata}, indent=1))
    return summary
