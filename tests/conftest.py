from __future__ import annotations

import gc
import io
import logging
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import traceback
import warnings
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import IO, Iterator

import numpy as np
import pytest
import rasterio

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
COAST = EXAMPLES / "s1_vh_coast_california.tif"
FIELDS = EXAMPLES / "s1_vh_fields_california.tif"
PAIRS = EXAMPLES / "pairs"
SHARED_PAIRS = Path(os.environ.get("SARCOLOR_DATA", ROOT.parent / "shared" / "data" / "s1s2-pairs"))


CLI_ENVIRONMENT = {"COLUMNS": "200"}
# The warning filters of a fresh interpreter (Python's own defaults), not pytest's, which record warnings instead
# of printing them: a stray RuntimeWarning must show on the CLI's stderr as it would for a user.
PYTHON_DEFAULT_WARNINGS = (
    ("default", DeprecationWarning, "__main__"), ("ignore", DeprecationWarning, ""),
    ("ignore", PendingDeprecationWarning, ""), ("ignore", ImportWarning, ""), ("ignore", ResourceWarning, ""),
)


def run_cli_process(*args: str | Path, check: bool = False, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m sarcolor ARGS`` in a process of its own: for what only a real process shows (its start,
    its imports, worker processes it starts)."""
    result = subprocess.run(
        [sys.executable, "-m", "sarcolor", *map(str, args)], capture_output=True, text=True,
        env={**os.environ, **CLI_ENVIRONMENT}, cwd=cwd,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def run_cli(*args: str | Path, check: bool = False, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``sarcolor ARGS`` run in this process as ``python -m sarcolor`` runs it, without the interpreter's start
    and imports (about 1.5 s a run): its exit code, and everything written to file descriptors 1 and 2 (GDAL's
    and libtiff's own lines included) in the order written, with Python's default warning filters and the
    console width of run_cli_process. The process-wide state the CLI sets is put back afterwards."""
    argv = [str(arg) for arg in args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        with cli_process_state(cwd), descriptors_to(out, err):
            returncode = invoke_cli(argv)
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(
            ["sarcolor", *argv], returncode,
            out.read().decode("utf-8", "backslashreplace"), err.read().decode("utf-8", "backslashreplace"),
        )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def invoke_cli(argv: list[str]) -> int:
    """The exit code ``sarcolor ARGV`` ends with; an uncaught exception is printed as the interpreter does."""
    from sarcolor.cli import app

    try:
        app(args=argv, prog_name="sarcolor", standalone_mode=True)
    except SystemExit as exit:
        if exit.code is None or isinstance(exit.code, int):
            return exit.code or 0
        print(exit.code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


@contextmanager
def descriptors_to(out: IO[bytes], err: IO[bytes]) -> Iterator[None]:
    """File descriptors 1 and 2 (and sys.stdout, sys.stderr, unbuffered on them) point at ``out`` and ``err``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    streams = sys.stdout, sys.stderr
    try:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        sys.stdout, sys.stderr = (
            io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding="utf-8", errors="backslashreplace", write_through=True)
            for fd in (1, 2)
        )
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = streams
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)


@contextmanager
def cli_process_state(cwd: Path | None) -> Iterator[None]:
    """What a fresh process would start with (environment, warning filters, the CLI's console), and afterwards
    what this one had: environment, working folder, logging, the SIGTERM handler, torch's thread count."""
    import sarcolor.cli

    from rich.console import Console

    environment, folder, console = dict(os.environ), os.getcwd(), sarcolor.cli.stderr
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logger.level for name, logger in logging.Logger.manager.loggerDict.items() if isinstance(logger, logging.Logger)}
    sigterm = signal.getsignal(signal.SIGTERM)
    torch_threads = sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None
    try:
        os.environ.update(CLI_ENVIRONMENT)
        sarcolor.cli.stderr = Console(stderr=True)
        if cwd is not None:
            os.chdir(cwd)
        with warnings.catch_warnings():
            warnings.resetwarnings()
            for action, category, module in reversed(PYTHON_DEFAULT_WARNINGS):
                warnings.filterwarnings(action, category=category, module=module)
            warnings.showwarning = show_warning
            yield
    finally:
        os.chdir(folder)
        os.environ.clear()
        os.environ.update(environment)
        sarcolor.cli.stderr = console
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, logger in logging.Logger.manager.loggerDict.items():
            if isinstance(logger, logging.Logger) and logger.level != levels.get(name, logging.NOTSET):
                logger.setLevel(levels.get(name, logging.NOTSET))
        signal.signal(signal.SIGTERM, sigterm)
        if torch_threads is not None and sys.modules["torch"].get_num_threads() != torch_threads:
            sys.modules["torch"].set_num_threads(torch_threads)


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Python's own way of showing a warning, on the stderr of the moment (pytest's would record it)."""
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def read_all(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as src:
        return src.read(), src.profile


@pytest.fixture(scope="session")
def model():
    from sarcolor.backends import load_model

    return load_model(None, "cpu")


@pytest.fixture(scope="session")
def coast_rgb(tmp_path_factory) -> Path:
    """``sarcolor colorize`` of the coast example with the default options, alone in its folder: the output that
    tests of georeferencing, formats and other faces compare with (read it, never write beside it)."""
    out = tmp_path_factory.mktemp("coast_rgb") / "coast_rgb.tif"
    run_cli("colorize", COAST, "-o", out, check=True)
    return out


@pytest.fixture(scope="session")
def shared_pairs() -> Path:
    if not (SHARED_PAIRS / "split.json").is_file():
        pytest.skip(f"full data set not found at {SHARED_PAIRS} (set SARCOLOR_DATA to the s1s2-pairs folder)")
    return SHARED_PAIRS


@contextmanager
def mounted_tmpfs(mount_point: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (e.g. 1200k) at ``mount_point``, to fill; skips the test where it cannot mount (needs root)."""
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        # A run_cli that failed may leave a file open through its exception's reference cycle, which a process
        # of its own would have closed on exit: collect it, or the tmpfs is busy.
        gc.collect()
        subprocess.run(["umount", str(mount_point)], check=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 1.2 MB tmpfs: room for one 512² output, not for a 1024² one."""
    with mounted_tmpfs(tmp_path / "small", "1200k") as mount_point:
        yield mount_point


@pytest.fixture(scope="session")
def bigearthnet_pair(tmp_path_factory) -> tuple[Path, Path]:
    """One real BigEarthNet Sentinel-1 patch as bigearthnet-common ships it: (VV path, VH path), float32 sigma0 in
    dB, 120 x 120 px in UTM 33N, the two files side by side as ..._VV.tif and ..._VH.tif."""
    package = pytest.importorskip("bigearthnet_common", reason="bigearthnet-common (test extra) is not installed")
    folder = tmp_path_factory.mktemp("bigearthnet")
    with resources.as_file(resources.files(package) / "BigEarthNet-S1-Example.tar.bz2") as path, tarfile.open(path) as tar:
        tar.extractall(folder, filter="data")
    vh = sorted(folder.rglob("*_VH.tif"))[0]
    return vh.with_name(vh.name.replace("_VH", "_VV")), vh
