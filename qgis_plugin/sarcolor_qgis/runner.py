"""How the plugin reaches sarcolor: the library in QGIS's own Python, or the ``sarcolor`` command of another
environment, run as a subprocess. Either way it only maps a request onto sarcolor's calls or options.

No QGIS import here: ``feedback`` is anything with ``setProgress(percent)``, ``isCanceled()`` and
``pushInfo(text)`` (a ``QgsProcessingFeedback``), so this runs and is tested outside QGIS too.
"""
from __future__ import annotations

import json
import logging
import os
import queue
import shlex
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

# Mirrors of sarcolor's choices (backends.BUNDLED_MODELS, io.INPUT_SCALES): the dialog needs them before it
# knows where sarcolor is; the tests check they match the library.
BUNDLED_MODELS = ("default", "smooth")
INPUT_SCALES = ("auto", "normalized", "amplitude", "intensity", "db")
EXECUTABLE_VARIABLE = "SARCOLOR_EXECUTABLE"
OPTION_NAMES_VARIABLE = "SARCOLOR_OPTION_NAMES"  # sarcolor.option_names.ENVIRONMENT_VARIABLE
POLL_SECONDS = 0.2
STOP_SECONDS = 30


class RunError(Exception):
    """sarcolor's one-line message for a run that failed."""


class Cancelled(Exception):
    """The user cancelled; no output was left."""


@dataclass
class Request:
    input: str
    output: str
    band: int | None = None  # None: sarcolor's own choice (the VH band where the input names its bands, else 1)
    model: str = "default"  # a bundled model's name or a model file
    detail: float | None = None  # None: the model's own
    confidence: bool = False
    input_scale: str = "auto"
    db_range: str | None = None  # "LO,HI": the dB levels of an 8-bit dB export's 0 and 255
    allow_co_pol: bool = False  # colourise a VV (HH) band, with a warning, where the input has no VH (HV)
    reference: str | None = None  # an optical image of the same place: the colours are fitted on its clear pixels
    fill: bool = False  # keep the reference's clear pixels, the SAR's colours only in its gaps (clouds, nodata)
    reference_sar: str | None = None  # a SAR scene of the reference's date: the colours are fitted there
    option_names: str = ""  # sarcolor.option_names.OptionNames as JSON: errors name the options as the dialog does


def confidence_output(output: str | Path) -> Path:
    """Where sarcolor writes the confidence map of ``output``: NAME_confidence.tif beside it (``--confidence``)."""
    output = Path(output)
    return output.with_name(f"{output.stem}_confidence.tif")


def library_importable() -> bool:
    """Whether QGIS's Python has sarcolor with what colourising needs (rasterio, onnxruntime...)."""
    try:
        import sarcolor.infer  # noqa: F401
        return True
    except ImportError:
        return False


def colorize(request: Request, feedback, executable: str = "") -> str:
    """Colourise ``request``; returns how sarcolor was reached. A configured executable (the provider's setting,
    else $SARCOLOR_EXECUTABLE) is used as told; without one, the library if importable, else ``sarcolor``."""
    executable = executable or os.environ.get(EXECUTABLE_VARIABLE, "")
    if not executable and library_importable():
        colorize_in_process(request, feedback)
        return "the sarcolor library in QGIS's Python"
    colorize_in_subprocess(request, feedback, executable or "sarcolor")
    return executable or "sarcolor"


# -- in QGIS's Python ------------------------------------------------------------------------------


class FeedbackLogHandler(logging.Handler):
    """sarcolor's log (warnings about the scene or its scale among it) into the Processing log."""

    def __init__(self, feedback):
        super().__init__(logging.INFO)
        self.feedback = feedback

    def emit(self, record: logging.LogRecord) -> None:
        self.feedback.pushInfo(self.format(record))


class TileProgress:
    """sarcolor's tile callbacks as Processing progress; a cancel stops at the next batch of tiles."""

    def __init__(self, feedback):
        self.feedback, self.total, self.done = feedback, 0, 0

    def start(self, total: int) -> None:
        self.total = total
        self.check_cancelled()

    def advance(self, tiles: int) -> None:
        self.done += tiles
        self.feedback.setProgress(100.0 * self.done / max(self.total, 1))
        self.check_cancelled()

    def check_cancelled(self) -> None:
        if self.feedback.isCanceled():
            raise Cancelled()


def colorize_in_process(request: Request, feedback) -> None:
    """The calls ``sarcolor colorize`` makes; its outputs are written whole or not at all, so a cancel (an
    exception out of the progress callback) leaves nothing behind."""
    from sarcolor.backends import load_model
    from sarcolor.errors import SarcolorError, first_line
    from sarcolor.infer import ColorizeOptions, colorize_file
    from sarcolor.option_names import OptionNames
    from sarcolor.scale import parse_db_range

    progress = TileProgress(feedback)
    handler = FeedbackLogHandler(feedback)
    logger = logging.getLogger("sarcolor")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        progress.check_cancelled()
        options = ColorizeOptions(band=request.band, input_scale=request.input_scale, db_range=parse_db_range(request.db_range),
                                  overwrite=True, confidence=request.confidence, allow_co_pol=request.allow_co_pol,
                                  reference=Path(request.reference) if request.reference else None, fill=request.fill,
                                  reference_sar=Path(request.reference_sar) if request.reference_sar else None)
        net = load_model(request.model, detail=request.detail)
        colorize_file(request.input, request.output, net, options, on_start=progress.start, on_tiles_done=progress.advance)
    except SarcolorError as exc:
        raise RunError(OptionNames.from_json(request.option_names or "{}").render(str(exc))) from None
    except Cancelled:
        raise
    except Exception as exc:  # a bug, not a user error: still one line, as the CLI reports it
        raise RunError(f"unexpected {type(exc).__name__}: {first_line(exc)}") from None
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


# -- as a subprocess -------------------------------------------------------------------------------


def cli_arguments(request: Request) -> list[str]:
    """``sarcolor colorize`` options for ``request``: quiet but for warnings, errors and JSON progress lines."""
    args = ["-q", "colorize", request.input, "--output", request.output, "--overwrite", "--progress-json",
            "--model", request.model, "--input-scale", request.input_scale]
    if request.band:
        args += ["--band", str(request.band)]
    if request.db_range:
        args.append(f"--db-range={request.db_range}")  # "=": a range starting with "-" is not an option
    if request.detail is not None:
        args += ["--detail", repr(float(request.detail))]
    if request.confidence:
        args.append("--confidence")
    if request.allow_co_pol:
        args.append("--allow-co-pol")
    if request.reference:
        args += ["--reference", request.reference]
    if request.fill:
        args.append("--fill")
    if request.reference_sar:
        args += ["--reference-sar", request.reference_sar]
    return args


def executable_command(executable: str) -> list[str]:
    """The setting as a command: a program as it is (a Windows path keeps its backslashes), else split like a
    shell line (e.g. ``/opt/sarcolor/bin/python -m sarcolor``)."""
    return [executable] if shutil.which(executable) else shlex.split(executable)


def start_process(executable: str, args: list[str], option_names: str = "") -> subprocess.Popen:
    # Wide COLUMNS: rich would wrap warnings at 80 characters when stderr is not a terminal.
    env = {**os.environ, "COLUMNS": "10000", **({OPTION_NAMES_VARIABLE: option_names} if option_names else {})}
    try:
        return subprocess.Popen(executable_command(executable) + args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, env=env,
                                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))  # no console window on Windows
    except OSError as exc:
        raise RunError(
            f"cannot run {executable!r} ({exc.strerror or exc}): install sarcolor in QGIS's Python, or set the sarcolor "
            f"executable (Processing options > Providers > sarcolor, or ${EXECUTABLE_VARIABLE})"
        ) from None


def stderr_lines(process: subprocess.Popen) -> queue.Queue:
    """The process's stderr, line by line, then None at its end: read in a thread so a cancel is not kept
    waiting for the next line."""
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        with process.stderr:
            for line in process.stderr:
                lines.put(line.rstrip())
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def stop(process: subprocess.Popen) -> None:
    """SIGTERM unwinds sarcolor like Ctrl-C: its temporary outputs go, finished ones were never there."""
    process.terminate()
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class CliReport:
    """What the CLI says on stderr: JSON progress lines, its one ``error:`` line, the rest as log."""

    def __init__(self, feedback):
        self.feedback, self.error, self.other = feedback, None, []

    def take(self, line: str) -> None:
        if line.startswith("{"):
            try:
                step = json.loads(line)
                self.feedback.setProgress(100.0 * step["completed"] / max(step["total"] or 1, 1))
                return
            except (ValueError, KeyError, TypeError):
                pass
        if line.startswith("error:"):
            self.error = line[len("error:"):].strip()
        elif line.strip():
            self.other.append(line.strip())
            self.feedback.pushInfo(line.strip())

    def failure(self, returncode: int) -> str:
        return self.error or (self.other[-1] if self.other else f"sarcolor exited with code {returncode}")


def colorize_in_subprocess(request: Request, feedback, executable: str) -> None:
    process = start_process(executable, cli_arguments(request), request.option_names)
    report, lines = CliReport(feedback), stderr_lines(process)
    while True:
        if feedback.isCanceled():
            stop(process)
            raise Cancelled()
        try:
            line = lines.get(timeout=POLL_SECONDS)
        except queue.Empty:
            continue
        if line is None:
            break
        report.take(line)
    returncode = process.wait()
    if returncode:
        raise RunError(report.failure(returncode))
