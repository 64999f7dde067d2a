"""``sarcolor serve``: a Gradio page to colourise an uploaded SAR image and download the result.

The page holds no model code: it loads models through :mod:`sarcolor.backends` at start-up (a
missing or broken model stops the server before it listens, it never falls back to random
weights) and colourises through :func:`sarcolor.infer.colorize_file`, exactly as the CLI does.
Each request works in a folder of its own, removed once the page has its files, by an age limit
when no page asks (API clients, closed tabs), and with the whole work root at shutdown.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import gradio as gr
import numpy as np

from sarcolor.backends import BUNDLED_MODELS
from sarcolor.confidence import LEGEND_TOP, legend_rgb
from sarcolor.errors import SarcolorError
from sarcolor.infer import PLAIN_OUTPUT_MAX_PIXELS, ColorizeOptions, colorize_file, confidence_path
from sarcolor.readers import open_input
from sarcolor.io import IMAGE_SUFFIXES, write_plain_copy
from sarcolor.option_names import OptionNames, named_for
from sarcolor.readers.raster import open_raster, read_preview, read_rgb_preview
from sarcolor.scale import INPUT_SCALES

log = logging.getLogger(__name__)
T = TypeVar("T")

PREVIEW_SIDE = 1024
EXAMPLE_THUMB_SIDE = 192
# An upload larger than this runs only when no other large one is running: the other slot stays
# free for small images (a 100,000 px square header once filled both slots for 46 min each).
LARGE_JOB_PIXELS = 16_000_000
# A request's folder not removed by the page (API clients, closed tabs) goes after this long; the
# page has copies of the files in Gradio's own cache by then.
WORK_DIR_MAX_AGE_S = 600


def bundled_model_label(name: str) -> str:
    """How the page lists a bundled model: 'default (photo-like)'."""
    return f"{name} ({BUNDLED_MODELS[name]})"


DEFAULT_MODEL = bundled_model_label("default")


@dataclass
class ServeOptions:
    models: dict[str, object]  # display name -> loaded model (a backends callable)
    max_upload_mb: int = 200
    examples: list[Path] = field(default_factory=list)
    tile: int = 512
    overlap: int = 32
    max_pixels: int = 64_000_000  # larger images are refused from their header, before any work
    large_job: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(1))


class Cancelled(SarcolorError):
    """The user pressed Cancel: the run stops at its next batch of tiles."""


class WorkFolders:
    """Per-request folders under one root; folders of finished requests are swept by age."""

    def __init__(self, root: Path, max_age_s: float = WORK_DIR_MAX_AGE_S) -> None:
        self.root = root
        self.max_age_s = max_age_s
        self._active: set[Path] = set()
        self._lock = threading.Lock()

    def new(self) -> Path:
        self.sweep()
        folder = self.root / uuid.uuid4().hex
        folder.mkdir()
        with self._lock:
            self._active.add(folder)
        return folder

    def finished(self, folder: Path) -> None:
        with self._lock:
            self._active.discard(folder)

    def remove(self, folder: str | Path | None) -> None:
        """Remove one request's folder (the page's clean-up step); anything outside the root is ignored."""
        if folder and Path(folder).parent == self.root:
            self.finished(Path(folder))
            shutil.rmtree(folder, ignore_errors=True)

    def sweep(self) -> None:
        """Remove folders of finished requests older than the age limit."""
        now = time.time()
        with self._lock:
            active = set(self._active)
        for folder in self.root.iterdir():
            try:
                old = folder.is_dir() and now - folder.stat().st_mtime > self.max_age_s
            except OSError:
                continue
            if folder not in active and old:
                shutil.rmtree(folder, ignore_errors=True)

    def sweep_every(self, seconds: float, stop: threading.Event) -> threading.Thread:
        def loop() -> None:
            while not stop.wait(seconds):
                self.sweep()

        thread = threading.Thread(target=loop, name="sarcolor-sweep", daemon=True)
        thread.start()
        return thread


@dataclass
class PageResult:
    previews: tuple[np.ndarray, np.ndarray]  # SAR (grey as RGB), colourised
    files: list[str]  # GeoTIFF, PNG when the scene is small enough for one, the confidence map's GeoTIFF
    summary: str
    work_dir: str
    confidence: np.ndarray | None = None  # the expected colour error as a colour-mapped RGB preview


def example_files(folder: Path | None) -> list[Path]:
    if folder is None or not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def sar_preview(path: Path, band: int | None, input_scale: str, quantile: float, max_side: int = PREVIEW_SIDE) -> tuple[np.ndarray, int]:
    """The SAR as the model sees it (scaled), grey RGB uint8, at most ``max_side`` px on a side, and the band read
    (``band`` None: the one colorize chooses)."""
    with open_input(path, band, input_scale, quantile) as scene:
        return reader_preview(scene.reader, max_side)


def reader_preview(reader, max_side: int = PREVIEW_SIDE) -> tuple[np.ndarray, int]:
    """``sar_preview`` of an open reader."""
    return np.repeat(reader.preview(max_side)[..., None], 3, axis=-1), reader.band


def error_preview(path: Path, max_side: int) -> np.ndarray:
    """A confidence map as an RGB picture in the legend's colours (``confidence.LEGEND_COLOURS``); no data black."""
    (error,), valid = read_preview(path, [1], max_side)
    return legend_rgb(np.where(valid, error, np.float32(np.nan)))


def markdown_text(text: str) -> str:
    """``text`` shown literally in Markdown: a file name like ``[x](javascript:...)`` or ``<img>`` stays text."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~])", r"\\\1", text)


def public_message(message: str, upload: str | None, work_root: Path) -> str:
    """An error message for the page and API clients: the user's file and the server's work files by
    their names only, never a path on the server."""
    if upload:
        message = message.replace(str(upload), Path(upload).name)
    return re.sub(re.escape(str(work_root)) + r"/[0-9a-f]+/", "", message)


def check_upload(path: str | None, options: ServeOptions) -> tuple[Path, int]:
    """The upload's path and pixel count, after the checks that need no work: type, bytes, pixels."""
    if not path:
        raise SarcolorError("upload a SAR image first (GeoTIFF, PNG or JPEG)")
    upload = check_upload_file(Path(path), options)
    with open_raster(upload) as src:  # the header only: a small file can claim a huge image
        width, height = src.width, src.height
    if width * height > options.max_pixels:
        raise SarcolorError(
            f"{upload.name} is {width} × {height} px; this server takes images up to "
            f"{options.max_pixels / 1e6:g} megapixels (sarcolor serve --max-megapixels)"
        )
    return upload, width * height


def check_upload_file(upload: Path, options: ServeOptions) -> Path:
    """An uploaded file's type and bytes."""
    if upload.suffix.lower() not in IMAGE_SUFFIXES:
        raise SarcolorError(f"{upload.name}: not a supported image type (use .tif, .png or .jpg)")
    size_mb = upload.stat().st_size / 2**20
    if size_mb > options.max_upload_mb:
        raise SarcolorError(f"{upload.name} is {size_mb:.0f} MB; the upload limit is {options.max_upload_mb} MB")
    return upload


@contextlib.contextmanager
def job_slot(options: ServeOptions, pixels: int, name: str) -> Iterator[None]:
    """Large images run one at a time, refused (not queued) while another runs, so small ones get through."""
    if pixels <= LARGE_JOB_PIXELS:
        yield
        return
    if not options.large_job.acquire(blocking=False):
        raise SarcolorError(f"the server is busy with another large image; send {name} again in a few minutes")
    try:
        yield
    finally:
        options.large_job.release()


def model_detail(options: ServeOptions, model_name: str) -> float:
    """The detail strength a model starts at on the page (its own; 1 for a model without the control)."""
    model = options.models.get(model_name)
    return float(model.detail) if model is not None and model.has_detail else 1.0


# The CLI's options, as messages name them, as this page's controls.
OPTION_NAMES = OptionNames({
    "--band": "'Band'", "--model": "'Model'", "--input-scale": "'Input scale'", "--detail": "'Detail'",
    "--reference": "'Optical reference'", "--fill": "'Fill cloud gaps' ticked",
}, style="label")


@named_for(OPTION_NAMES)
def colorize_upload(
    options: ServeOptions, work: WorkFolders, path: str | None, model_name: str, band: float, input_scale: str,
    detail: float | None = None, on_progress=None, reference: str | None = None, fill: bool = False,
) -> PageResult:
    """Colourise one upload into a fresh folder of ``work``: GeoTIFF, PNG and two previews.

    ``detail`` sets the model's detail strength (ignored by a model without one); None keeps its own.
    ``reference``: an uploaded optical image of the same place, whose colours are fitted (``--reference``);
    ``fill``: its clear pixels kept, the SAR's colours only in its gaps (``--fill``).
    ``on_progress(done, total)`` may raise (e.g. Cancelled) to stop the run; nothing is left behind.
    """
    upload, pixels = check_upload(path, options)
    reference_path = check_upload_file(Path(reference), options) if reference else None
    if model_name not in options.models:
        raise SarcolorError(f"unknown model {model_name!r}")
    model = options.models[model_name]
    if detail is not None and model.has_detail:
        model = model.with_detail(float(detail))
    with job_slot(options, pixels, upload.name):
        return _colorize_in_work_folder(options, work, upload, model, model_name, band, input_scale, on_progress,
                                        reference_path, fill)


def _colorize_in_work_folder(options, work, upload, model, model_name, band, input_scale, on_progress,
                             reference: Path | None, fill: bool) -> PageResult:
    work_dir = work.new()
    try:
        tiff = work_dir / f"{upload.stem}_sarcolor.tif"
        total: list[int] = []
        done = [0]

        def advance(n: int) -> None:
            done[0] += n
            if on_progress:
                on_progress(done[0], total[0])

        band = int(band) if band else None  # 0 or empty: the cross-polarisation band where the file names it
        colorize_options = ColorizeOptions(options.tile, options.overlap, band, input_scale, confidence=model.has_error,
                                           reference=reference, fill=fill)
        seen: list[tuple[np.ndarray, int]] = []  # the input's preview and band, from colorize's own reader
        result = colorize_file(upload, tiff, model, colorize_options, on_start=total.append, on_tiles_done=advance,
                               on_open=lambda reader: seen.append(reader_preview(reader)))
        files = [str(tiff)]
        if result.height * result.width <= PLAIN_OUTPUT_MAX_PIXELS:
            png = tiff.with_suffix(".png")
            write_plain_copy(tiff, png, "PNG")
            files.append(str(png))
        sar, band = seen[0]
        fitted = reference_summary(tiff) if reference else ""
        previews = (sar, read_rgb_preview(tiff, PREVIEW_SIDE))
        confidence = None
        if model.has_error:
            files.append(str(confidence_path(tiff)))
            confidence = error_preview(confidence_path(tiff), PREVIEW_SIDE)
    except BaseException:
        work.remove(work_dir)
        raise
    finally:
        work.finished(work_dir)
    strength = f", detail {model.detail:.2f}" if model.has_detail else ""
    summary = (
        f"**{markdown_text(upload.name)}**: {result.width} × {result.height} px, band {band}, "
        f"input scale {result.input_scale}, {result.tiles} tile(s), model *{model_name}*{strength}."
    )
    summary += fitted
    if result.warning:
        summary += f"\n\n⚠ {markdown_text(result.warning)}"
    if model.has_error and model.error_uncalibrated:
        summary += (f"\n\nConfidence map **uncalibrated** ({markdown_text(model.error_uncalibrated)}): expected mean "
                    "absolute error in 8-bit levels, not CIEDE2000.")
    return PageResult(previews, files, summary, str(work_dir), confidence)


def reference_summary(tiff: Path) -> str:
    """What the summary says of a reference: its name, clear share and fit, from the output's tags."""
    with open_raster(tiff) as src:
        tags = src.tags()
    filled = " Its clear pixels are kept as they are, the SAR's colours fill its gaps." if tags.get(
        "SARCOLOR_REFERENCE_FILL", "no") != "no" else ""
    return (f"\n\nColours fitted on the reference **{markdown_text(tags['SARCOLOR_REFERENCE'])}** "
            f"({markdown_text(tags['SARCOLOR_REFERENCE_CLEAR'])} of the scene clear): "
            f"{markdown_text(tags['SARCOLOR_REFERENCE_FIT'])}.{filled}")


def example_gallery(options: ServeOptions) -> "gr.Gallery":
    """Thumbnails of the example scenes' SAR (as the model sees it), captioned with their file names."""
    quantile = next(iter(options.models.values())).convention["quantile"]
    thumbs = [(sar_preview(p, None, "auto", quantile, EXAMPLE_THUMB_SIDE)[0], p.name) for p in options.examples]
    return gr.Gallery(
        thumbs, label="Examples: click one to colourise it", columns=2, height=230,
        allow_preview=False, object_fit="contain", elem_id="examples",
    )


async def run_until_stopped(work: Callable[[], T], stop: threading.Event, gone: Callable[[], bool], poll_s: float = 0.5) -> T:
    """Run blocking ``work`` in a thread. Gradio cancels a run (the page's Cancel button, an API client's
    ``Job.cancel()``) by cancelling this coroutine, which a thread cannot notice: ``stop`` tells it, and is
    also set when ``gone()`` says the client has disconnected. The work then raises at its next check and
    removes what it wrote."""
    task = asyncio.ensure_future(asyncio.to_thread(work))
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=poll_s)
            if not task.done() and gone():
                log.info("the client went away: stopping its run")
                stop.set()
        return task.result()
    except asyncio.CancelledError:
        stop.set()
        raise


def client_gone(app, session: str | None) -> bool:
    """Whether Gradio has marked this session's running job dead (its client disconnected).
    Reads Gradio's queue, which has no public call for it; a Gradio without that state reads as never gone."""
    jobs = getattr(getattr(app, "_queue", None), "active_jobs", None) or []
    return any(
        getattr(event, "session_hash", None) == session and not getattr(event, "alive", True)
        for job_set in jobs if job_set for event in job_set
    )


def build_app(options: ServeOptions, work: WorkFolders):
    names = list(options.models)

    async def on_colorize(path, model_name, band, input_scale, detail, reference=None, fill=False,
                          request: gr.Request = None, progress=gr.Progress()):
        session = request.session_hash if request is not None else None
        stop = threading.Event()  # set when the run's client cancels or goes away: the run stops at its next batch

        def report(done: int, total: int) -> None:
            if stop.is_set():
                raise Cancelled("cancelled")
            progress((done, total), desc="colourising tiles", unit="tiles")

        try:
            result = await run_until_stopped(
                lambda: colorize_upload(options, work, path, model_name, band, input_scale, detail, report, reference,
                                        bool(fill)),
                stop, lambda: client_gone(app, session),
            )
        except SarcolorError as exc:
            message = public_message(public_message(str(exc), path, work.root), reference, work.root)
            raise gr.Error(message, print_exception=False) from None
        except Exception as exc:  # a bug: the page says so, the log has the traceback, the server goes on
            log.exception("colourising %s failed", path)
            message = public_message(f"unexpected {type(exc).__name__}: {exc}", path, work.root)
            raise gr.Error(message, print_exception=False) from None
        return result.previews, result.confidence, result.files, result.summary, result.work_dir

    with gr.Blocks(title="sarcolor", delete_cache=(600, 3600)) as app:
        gr.Markdown(
            "# sarcolor\nTurn a Sentinel-1 SAR image into a natural-colour, optical-like picture. "
            "Upload a GeoTIFF, PNG or JPEG (one band of SAR amplitude, σ0 or dB); download a GeoTIFF "
            "that keeps the input's georeferencing."
        )
        work_dir = gr.State()
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label="SAR image", file_types=list(IMAGE_SUFFIXES), type="filepath", elem_id="upload")
                model = gr.Dropdown(names, value=names[0], label="Model", elem_id="model")
                band = gr.Number(
                    0, precision=0, minimum=0, elem_id="band",
                    label="Band (0: the VH band where the file names its bands, else band 1; the models expect VH)",
                )
                scale = gr.Dropdown(list(INPUT_SCALES), value="auto", label="Input scale", elem_id="scale")
                detail = gr.Slider(
                    0.0, 1.0, value=model_detail(options, names[0]), step=0.05, elem_id="detail",
                    label="Detail: 0 smooth colour only, 1 the full SAR detail",
                )
                model.change(lambda name: model_detail(options, name), model, detail, api_name=False)
                reference = gr.File(
                    label="Optical reference of the same place (optional; any date, clouds allowed): its colours are "
                          "fitted, right where the model alone only guesses",
                    file_types=list(IMAGE_SUFFIXES), type="filepath", elem_id="reference",
                )
                fill = gr.Checkbox(
                    False, elem_id="fill",
                    label="Fill cloud gaps: keep the reference's clear pixels as they are, the SAR's colours only under "
                          "its clouds",
                )
                with gr.Row():
                    button = gr.Button("Colourise", variant="primary", elem_id="colorize")
                    cancel = gr.Button("Cancel", elem_id="cancel")
                gr.Markdown(f"Uploads up to {options.max_upload_mb} MB and {options.max_pixels / 1e6:g} megapixels.")
                examples = example_gallery(options) if options.examples else None
            with gr.Column(scale=2):
                slider = gr.ImageSlider(label="SAR | colourised", type="numpy", elem_id="result")
                summary = gr.Markdown(elem_id="summary")
                with gr.Accordion("How sure is the model? (confidence map)", open=False):
                    confidence = gr.Image(
                        label=f"Expected colour error: dark = sure, bright = a guess (CIEDE2000, brightest at {LEGEND_TOP:g} or more)",
                        type="numpy", elem_id="confidence", interactive=False,
                    )
                downloads = gr.File(label="Downloads (GeoTIFF, PNG, confidence GeoTIFF)", file_count="multiple", elem_id="downloads")
        inputs = [upload, model, band, scale, detail, reference, fill]
        outputs = [slider, confidence, downloads, summary, work_dir]
        # One named API endpoint (/colorize), whatever the Python names; the chained events stay out of the API.
        runs = [button.click(on_colorize, inputs, outputs, api_name="colorize")]
        if examples is not None:

            def pick_example(selected: gr.SelectData) -> str:
                return str(options.examples[selected.index])

            picked = examples.select(pick_example, None, upload, api_name=False)
            runs.append(picked.then(on_colorize, inputs, outputs, api_name=False))
        for run in runs:
            run.then(work.remove, work_dir, None, api_name=False)
        cancel.click(None, None, None, queue=False, cancels=runs, api_name=False)
    return app


def serve(options: ServeOptions, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Start the page and block until interrupted (Ctrl-C or SIGTERM); the work folders go with it."""
    stop = threading.Event()
    with tempfile.TemporaryDirectory(prefix="sarcolor-serve-") as tmp:
        work = WorkFolders(Path(tmp))
        work.sweep_every(60, stop)
        app = build_app(options, work)
        app.queue(default_concurrency_limit=2)
        log.info("serving on http://%s:%d", host, port)
        try:
            app.launch(
                server_name=host, server_port=port, max_file_size=f"{options.max_upload_mb}mb",
                # The example files themselves, not their folder: nothing else there is served.
                allowed_paths=[str(p) for p in options.examples], show_error=True, footer_links=[],
            )
        finally:
            stop.set()
            app.close()
