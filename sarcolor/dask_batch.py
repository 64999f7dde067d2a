"""Many scenes on a Dask distributed cluster: one task per scene, each written atomically by its worker.

The cluster is Dask's (an existing scheduler, or a ``LocalCluster`` started here); sarcolor only
submits one :func:`colorize_scene` per input and collects results as they finish. A scene that
fails is reported and the others go on; a rerun skips outputs that already exist (see
:func:`sarcolor.infer.folder_jobs`) because every output appears only when complete.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from sarcolor.backends import load_model, resolve_model_path
from sarcolor.errors import SarcolorError
from sarcolor.infer import ColorizeOptions, colorize_file


@dataclass
class SceneOutcome:
    input: Path
    output: Path
    error: str | None = None


@functools.lru_cache(maxsize=4)
def _worker_model(path: str, device: str, threads: int):
    """One loaded model per worker process and model, reused by every scene that worker runs."""
    return load_model(path, device, threads)


def colorize_scene(source: str, target: str, model_path: str, device: str, threads: int, options: ColorizeOptions) -> str | None:
    """Runs on a worker: colourise one scene. Returns None, or the one-line error a user can act on."""
    try:
        colorize_file(source, target, _worker_model(model_path, device, threads), options)
    except SarcolorError as exc:
        return str(exc)
    return None


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int) -> Iterator[tuple[object, int]]:
    """A client of the scheduler at ``scheduler``, or of a new local cluster of ``workers`` processes.

    Yields the client and the model threads each task should use (0: the backend's default).
    """
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise SarcolorError("--scheduler/--workers need Dask: pip install 'sarcolor[dask]'") from None
    # Importing distributed sets its loggers to INFO, and cluster shutdown logs closed connections
    # with tracebacks there: routine, not the user's concern. Warnings and errors still show.
    for name in ("distributed", "tornado"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise SarcolorError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        with client:
            yield client, 0
        return
    if workers < 1:
        raise SarcolorError("--workers must be at least 1")
    threads = max(1, (os.cpu_count() or 1) // workers)
    with LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
    ) as cluster:
        with Client(cluster) as client:
            yield client, threads


def colorize_on_dask(
    jobs: list[tuple[Path, Path]],
    model_path: str | Path | None,
    device: str,
    options: ColorizeOptions,
    scheduler: str | None = None,
    workers: int = 0,
    on_done: Callable[[SceneOutcome], None] | None = None,
) -> list[SceneOutcome]:
    """Colourise every (input, output) job on the cluster; returns one outcome per job, in finishing order."""
    from dask.distributed import as_completed

    # Workers may run elsewhere and in another folder: send them the absolute file, bundled names resolved.
    model = str(resolve_model_path(model_path))
    outcomes = []
    with dask_client(scheduler, workers) as (client, threads):
        futures = {
            client.submit(colorize_scene, str(src.resolve()), str(dst.resolve()), model, device, threads, options, pure=False): (src, dst)
            for src, dst in jobs
        }
        for future in as_completed(futures):
            src, dst = futures[future]
            try:
                outcome = SceneOutcome(src, dst, future.result())
            except Exception as exc:  # a worker crash or a bug: reported for this scene, the rest go on
                outcome = SceneOutcome(src, dst, f"{type(exc).__name__}: {exc}")
            outcomes.append(outcome)
            if on_done:
                on_done(outcome)
    return outcomes
