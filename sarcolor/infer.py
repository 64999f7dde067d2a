"""Colourise files and folders: SAR reader -> tiled model -> RGB writer, streamed window by window."""
from __future__ import annotations

import logging
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import rasterio

from sarcolor.confidence import calibrated_error, legend_tag
from sarcolor.errors import SarcolorError
from sarcolor.novelty import scene_centre
from sarcolor.io import (
    IMAGE_SUFFIXES, RasterWriter, check_distinct_outputs, check_free_space, check_output_path,
    check_outputs_apart_from_inputs, output_driver, writing_together,
)
from sarcolor.readers.raster import SarReader
from sarcolor.geometry import check_warp, warp_target
from sarcolor.readers import SarInput, open_input
from sarcolor.readers.polarisation import cross_pol_partner
from sarcolor.readers.safe import PRODUCT_SUFFIXES, is_product
from sarcolor.reference.apply import FitScene, check_reference_sar, fitted_reference, with_reference_detail
from sarcolor.reference.fill import GapFiller, check_fill
from sarcolor.reference.fit import MAX_TILES, HeadFit, fit_places, joined_places, scene_places
from sarcolor.reference.image import ReferenceImage
from sarcolor.stac import OutputDescription, ReferenceSource, StacItemWriter, check_describable, check_stac_output, stac_item_path
from sarcolor.tiling import TilePlan, blend_tiles, blend_to_array, plan_tiles

log = logging.getLogger(__name__)

# PNG/JPEG are assembled in memory at the end; beyond this size, GeoTIFF is the only sane output.
PLAIN_OUTPUT_MAX_PIXELS = 400_000_000
JPEG_MAX_SIDE = 65_500
GDAL_CACHE_BYTES = 128 * 2**20  # while the input is opened and measured
OUTPUT_BLOCK_ROWS = 256  # the block height of our GeoTIFF outputs (io.geotiff_profile)


@dataclass
class ColorizeOptions:
    tile: int = 512
    overlap: int = 32
    band: int | None = None  # None: the cross-polarisation band (VH), chosen from the input's names
    input_scale: str = "auto"
    db_range: tuple[float, float] | None = None  # the dB levels of an integer stretch's ends (--db-range)
    batch_size: int = 2  # tiles per model call: on a CPU 2 is as fast as 4 and holds half the activations
    overwrite: bool = False
    cog: bool = False  # Cloud Optimized GeoTIFF with overviews
    warp: str | None = None  # reproject the result to this CRS (e.g. "EPSG:4326")
    detail: float | None = None  # detail strength 0..1 for a model that has one; None: the model's own
    confidence: bool = False  # also write NAME_confidence.tif: the expected colour error per pixel
    allow_co_pol: bool = False  # colourise a VV or HH band (with a warning) when the input has no VH
    stac: bool = False  # also write NAME.json: the output's STAC Item
    model_name: str = "default"  # how the output's STAC Item names the model
    reference: Path | None = None  # an optical image of the same place: the colours are fitted on its clear pixels
    reference_bands: tuple[int, int, int] | None = None  # its red, green, blue bands; None: 1,2,3 of a 3- or 4-band image, else 4,3,2
    reference_sar: Path | None = None  # a SAR scene of the reference's date: the colours are fitted there, not on the input
    fill: bool = False  # keep the reference's clear pixels, the SAR's colours only in its gaps
    reference_fit: HeadFit | None = None  # a fit made already, shared by several scenes (shared_reference_fit)
    overviews: bool = True  # internal overviews in a GeoTIFF over io.OVERVIEW_MIN_SIDE px on a side


@dataclass
class ColorizeResult:
    input: Path
    output: Path
    height: int
    width: int
    input_scale: str
    tiles: int
    warning: str | None = None  # why the scene is unlike the model's training data, if it is


def to_uint8(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Model output in [0, 1] to 8 bits, black where invalid. Works in place: ``values`` is consumed."""
    np.clip(values, 0.0, 1.0, out=values)
    np.multiply(values, 255.0, out=values)
    np.rint(values, out=values)
    rgb = values.astype(np.uint8)
    rgb[:, ~valid] = 0
    return rgb


def _check_plain_output_size(path: Path, height: int, width: int) -> None:
    driver = output_driver(path)
    if driver == "GTiff":
        return
    if height * width > PLAIN_OUTPUT_MAX_PIXELS or (driver == "JPEG" and max(height, width) > JPEG_MAX_SIDE):
        raise SarcolorError(f"{width}x{height} px is too large for {driver} output: write a .tif instead")


def writing_cache_bytes(width: int, tile: int, confidence: bool) -> int:
    """GDAL's block cache while writing: one strip of every output and the row of blocks a strip leaves half written,
    at most GDAL_CACHE_BYTES. Smaller, a half-written block is flushed and then written again (2-6 % larger files);
    larger, it fills with written blocks and a wide scene's memory grows with it (128 MB was 70 MB more RSS at
    25,000 px wide). With --confidence a scene that wide would need more than the cap (a few blocks are written twice)."""
    bytes_per_pixel = 4 + 4 * confidence  # RGB and its mask; the confidence map's float32
    needed = (tile + OUTPUT_BLOCK_ROWS) * width * bytes_per_pixel + 32 * 2**20  # + the input's blocks
    return min(GDAL_CACHE_BYTES, max(64 * 2**20, needed))


def confidence_path(output_path: Path) -> Path:
    """Where ``--confidence`` writes the error map of ``output_path``: NAME_confidence.tif beside it."""
    return output_path.with_name(f"{output_path.stem}_confidence.tif")


def error_map_tags(model) -> dict[str, str]:
    """Band description and tags of a confidence map: its unit, from the model's calibration if it has one, and its
    legend (for viewers: the QGIS plugin styles the layer with it)."""
    if model.error_calibration and model.error_calibration.get("source") == "reference":
        unit = "expected CIEDE2000 colour difference (calibrated on clear places of the reference held out from the colour fit)"
    elif model.error_calibration:
        unit = "expected CIEDE2000 colour difference (calibrated on the model's validation scenes)"
    else:
        unit = "expected mean absolute error of R, G and B, in 8-bit levels"
    return {"description": "expected colour error", "unit": unit, "legend": legend_tag()}


def error_values(error: np.ndarray, valid: np.ndarray, calibration: dict | None) -> np.ndarray:
    """The model's error channel (mean absolute error in [0, 1] units) in the confidence map's unit; NaN where invalid."""
    values = error * np.float32(255.0)
    if calibration:
        values = calibrated_error(values, calibration).astype(np.float32)
    return np.where(valid, values, np.float32(np.nan))[None]


def planned_outputs(output_path: Path, confidence: bool) -> list[Path]:
    """Every file colourising into ``output_path`` writes: the image, and its confidence map when asked for."""
    return [output_path, confidence_path(output_path)] if confidence else [output_path]


def channels_needed(model, options: ColorizeOptions):
    """The model as the tiler should see it: without the error channel unless the confidence map is asked for
    (blending a fourth channel nobody writes costs a quarter more)."""
    if model.has_error and not options.confidence:
        return lambda batch: model(batch)[:, :3]
    return model


def far_notice(model, src) -> str | None:
    """A logged line when the scene lies far from every place the model learned (and it knows them), else None."""
    centre = scene_centre(src) if getattr(model, "training_places", None) else None
    notice = model.training_places.notice(*centre) if centre else None
    if notice:
        log.warning("%s: %s", Path(src.name).name, notice)
    return notice


def tile_plan(reader: SarReader, tile: int, overlap: int, model) -> TilePlan:
    """The tiles covering the reader's raster for ``model``, on its map grid; a tile or overlap it cannot take is
    a user error."""
    try:
        return plan_tiles(reader.height, reader.width, tile, overlap, model.multiple, reader.grid_origin)
    except ValueError as exc:
        raise SarcolorError(str(exc)) from None


def scene_to_fit_on(scene: SarInput, plan: TilePlan) -> FitScene:
    """The scene being coloured, as the one a reference's colours are fitted on."""
    return FitScene(scene.src, scene.reader.read, plan, Path(scene.src.name).name,
                    scene.provenance.start if scene.provenance else None)


def open_as_options_say(path: str | Path, model, options: ColorizeOptions):
    """``open_input`` with the reading choices of ``options`` (band, scale, dB range, co-polarisation)."""
    return open_input(path, options.band, options.input_scale, model.convention["quantile"], options.allow_co_pol,
                      options.db_range)


@contextmanager
def reference_date_scene(path: str | Path, model, options: ColorizeOptions) -> Iterator[FitScene]:
    """``--reference-sar``: a SAR scene of the reference's date, read as the input is read, for the reference's
    colours to be fitted on."""
    with open_as_options_say(path, model, options) as other:
        yield scene_to_fit_on(other, tile_plan(other.reader, options.tile, options.overlap, model))


def fit_scene_for(options: ColorizeOptions, model, own: FitScene, using: ExitStack) -> FitScene:
    """The scene a reference's colours are fitted on: ``--reference-sar``'s (kept open in ``using``), else ``own``,
    the scene being coloured."""
    if options.reference_sar:
        return using.enter_context(reference_date_scene(options.reference_sar, model, options))
    return own


def colorize_file(
    input_path: str | Path,
    output_path: str | Path,
    model,
    options: ColorizeOptions = ColorizeOptions(),
    on_start: Callable[[int], None] | None = None,
    on_tiles_done: Callable[[int], None] | None = None,
    on_open: Callable[[SarReader], None] | None = None,
) -> ColorizeResult:
    """Colourise one raster or Sentinel-1 product. ``on_start(total_tiles)`` and ``on_tiles_done(n)`` drive a progress bar;
    ``on_open(reader)`` sees the input's reader once it is open and checked (the web page's preview of the input)."""
    input_path = Path(input_path)
    output_path = Path(output_path)
    outputs = planned_outputs(output_path, options.confidence)
    described = outputs + ([stac_item_path(output_path)] if options.stac else [])
    check_outputs_apart_from_inputs(described, [input_path] + [Path(p) for p in (options.reference, options.reference_sar) if p])
    check_fill(options.fill, options.reference)
    check_reference_sar(options.reference_sar, options.reference)
    for path in outputs:
        check_output_path(path, options.overwrite)
    if options.stac:
        check_stac_output(output_path, options.overwrite)
    if options.cog and output_driver(output_path) != "GTiff":
        raise SarcolorError(f"--cog needs a .tif output, not {output_path.name}")
    check_warp(options.warp)
    if options.confidence:
        if not model.has_error:
            raise SarcolorError("--confidence needs a model with an error head (the bundled model has one)")
        if options.cog:
            raise SarcolorError("--confidence writes a plain GeoTIFF beside the image: leave out --cog")
    model = model.with_detail(options.detail) if options.detail is not None else with_reference_detail(model, None, options.reference)
    # GDAL's block cache defaults to 5 % of RAM and fills with written blocks of wide scenes: cap it so
    # memory stays flat as the scene grows (a strip of a 25,000 px wide scene needs about 40 MB).
    with (
        rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES),
        open_as_options_say(input_path, model, options) as scene,
        ExitStack() as using,
    ):
        reader, src = scene.reader, scene.src
        check_outputs_apart_from_inputs(described, scene.files)  # a VH file beside the input, a STAC item's asset
        if options.stac:
            check_describable(scene.provenance, src)
        warp = warp_target(options.warp, src, scene.default_warp, scene.pixel_spacing)
        _check_plain_output_size(output_path, reader.height, reader.width)
        check_free_space(output_path, reader.height, reader.width, bands=3 + 4 * options.confidence,  # float32 map
                         warped=warp is not None)
        plan = tile_plan(reader, options.tile, options.overlap, model)
        warning = reader.scene_warning(model.training_scenes)  # logged by the reader
        if not options.reference:
            warning = "; ".join(w for w in (warning, far_notice(model, src)) if w) or None
        reference = None
        if options.reference:
            fit_on = fit_scene_for(options, model, scene_to_fit_on(scene, plan), using)
            reference = using.enter_context(fitted_reference(options.reference, src, model, fit_on, options.reference_bands,
                                                                options.reference_fit))
            model = reference.model
            warning = "; ".join(w for w in (warning, reference.date_notice) if w) or None
        if on_open:
            on_open(reader)
        if on_start:
            on_start(plan.tile_count)
        log.debug(
            "%s: %dx%d px, input scale %s (reference amplitude %.4g), %d tiles of %dx%d",
            input_path.name, reader.width, reader.height, reader.scaling.scale, reader.scaling.reference,
            plan.tile_count, plan.rows.tile, plan.cols.tile,
        )
        writers = [RasterWriter(
            output_path, src, reader.may_have_invalid, options.cog, warp, overviews=options.overviews,
            tags={**scene.tags, **({"SARCOLOR_WARNING": warning} if warning else {}),
                  **(reference.tags(options.fill) if reference else {})},
        )]
        if options.confidence:
            writers.append(RasterWriter(
                outputs[1], src, reader.may_have_invalid, warp=warp, error_map=error_map_tags(model), overviews=options.overviews,
            ))
        if options.stac:
            writers.append(StacItemWriter(writers[0], OutputDescription(
                scene.provenance, options.model_name, options.detail, scene.tags["SARCOLOR_INPUT_SCALE"], options.cog,
                warning, outputs[1] if options.confidence else None,
                ReferenceSource(reference.image.path, reference.date, reference.image.clear_share) if reference else None,
            )))
        cache = writing_cache_bytes(reader.width, plan.rows.tile, options.confidence)
        with rasterio.Env(GDAL_CACHEMAX=cache), writing_together(*writers):
            writer, error_writer = writers[0], writers[1] if options.confidence else None

            def write(row: int, values: np.ndarray, valid: np.ndarray) -> None:
                if error_writer is not None:
                    error_writer.write(row, error_values(values[3], valid, model.error_calibration), valid)
                writer.write(row, to_uint8(values[:3], valid), valid)

            filler = GapFiller(reference.image, write, reader.width) if options.fill else None
            blend_tiles(channels_needed(model, options), reader.read, filler or write, plan,
                        batch_size=options.batch_size, on_tiles_done=on_tiles_done)
            if filler:
                filler.finish()
    return ColorizeResult(
        input_path, output_path, reader.height, reader.width, reader.scaling.scale, plan.tile_count, warning,
    )


def shared_reference_fit(scenes: list[Path], model, options: ColorizeOptions) -> HeadFit:
    """One fit of ``options.reference``'s colours for all ``scenes`` (a time series of one place), fitted on the clear
    places of all their tiles together (``MAX_TILES`` in all, shared out), so that the same kind of place gets the
    same colours on every date. A scene the reference cannot serve is left out (its own run says why)."""
    if options.detail is not None:
        model = model.with_detail(options.detail)
    parts = []
    for path in scenes:
        try:
            with (rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES),
                  open_as_options_say(path, model, options) as scene,
                  ReferenceImage.open(options.reference, scene.src, options.reference_bands) as image):
                plan = tile_plan(scene.reader, options.tile, options.overlap, model)
                limit = max(4, MAX_TILES // len(scenes))
                parts.append(scene_places(model, scene.reader.read, image, plan, plan.rows.overlap, limit))
        except SarcolorError as exc:
            log.warning("%s: left out of the shared reference fit: %s", path.name, exc)
    if not parts:
        raise SarcolorError(f"the reference {Path(options.reference).name} serves none of the {len(scenes)} scenes")
    return fit_places(model, joined_places(parts), Path(options.reference).name, len(parts))


def predict_raster(
    model, path: str | Path, tile: int = 512, overlap: int = 32, band: int | None = None, input_scale: str = "auto",
) -> np.ndarray:
    """The model's outputs (C, H, W) float32 for a whole raster, read and scaled exactly as colorize reads it,
    held in memory: how ``evaluate`` and the error calibration score the scenes of a pairs folder."""
    with open_input(path, band, input_scale, model.convention["quantile"]) as scene:
        return blend_to_array(model, scene.reader.read, tile_plan(scene.reader, tile, overlap, model))


def list_images(folder: str | Path, products: bool = False) -> list[Path]:
    """The images (.tif, .png, .jpg) of a folder, and with ``products`` its Sentinel-1 products (.SAFE folders, .zip)."""
    folder = Path(folder)
    # Hidden files (editor backups, ._* resource forks) are not scenes.
    images = sorted(
        p for p in folder.iterdir()
        if not p.name.startswith(".")
        and ((p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES) or (products and is_product(p) and p.suffix.lower() in PRODUCT_SUFFIXES))
    )
    if not images:
        kinds = "images (.tif, .png, .jpg) or Sentinel-1 products (.SAFE, .zip)" if products else "images (.tif, .png, .jpg)"
        raise SarcolorError(f"no {kinds} in folder {folder}")
    return images


def output_name(scene: Path) -> str:
    """The file name a scene's colours get in an output folder: its own, a product's name as a GeoTIFF."""
    return f"{scene.stem}.tif" if scene.suffix.lower() in PRODUCT_SUFFIXES else scene.name


def without_co_pol_partners(scenes: list[Path]) -> list[Path]:
    """``scenes`` less each co-pol file whose cross-pol partner is among them (that one is coloured instead)."""
    listed = set(scenes)
    kept = []
    for scene in scenes:
        partner = cross_pol_partner(scene) if scene.suffix.lower() in IMAGE_SUFFIXES else None
        if partner in listed:
            log.info("%s: taken as %s's co-pol partner; the scene is coloured once, from %s", scene.name, partner.name, partner.name)
        else:
            kept.append(scene)
    return kept


def folder_jobs(
    input_dir: str | Path, output_dir: str | Path, overwrite: bool, confidence: bool = False, band: int | None = None,
) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """(input, output) pairs to run and outputs that already exist (skipped unless overwrite).

    Without ``band``, a co-pol file beside its cross-pol partner (``X_VV.tif`` beside ``X_VH.tif``) is one scene
    with it: coloured once, from the cross-pol file, under that file's name (as every output is named after the
    file it is coloured from), not a second time under the co-pol name.

    Checked before any work: the output folder is not the input folder (nor inside it, nor around it), and
    no two scenes write the same file (a.tif's confidence map and a_confidence.tif's image, b.png and b.tif)."""
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise SarcolorError(f"output {output_dir} is a file; a folder input needs a folder output")
    check_outputs_apart_from_inputs([output_dir], [input_dir])
    scenes = list_images(input_dir, products=True)  # before the output folder is made: a folder of none leaves nothing behind
    if band is None:
        scenes = without_co_pol_partners(scenes)
    planned = {scene: planned_outputs(output_dir / output_name(scene), confidence) for scene in scenes}
    check_distinct_outputs([
        (path, f"{'the confidence map' if i else 'the image'} of {scene.name}")
        for scene, paths in planned.items() for i, path in enumerate(paths)
    ])
    output_dir.mkdir(parents=True, exist_ok=True)
    jobs, skipped = [], []
    for scene, paths in planned.items():
        existing = [path for path in paths if path.exists()]
        if existing and not overwrite:
            skipped.extend(existing)
        else:
            jobs.append((scene, paths[0]))
    return jobs, skipped
