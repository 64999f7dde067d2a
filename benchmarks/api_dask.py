"""The Python API on a Dask cluster against the CLI: one large scene, time, peak memory per worker, pixel difference.

For each size, a uint16 amplitude GeoTIFF tiled from the real examples (tests/scenes.py: brightness rising
fourfold across the scene, a nodata corner) is coloured twice:
- by ``sarcolor colorize`` (one process, streamed strip by strip), and
- by ``sarcolor.colorize`` on a rioxarray DataArray opened with Dask chunks, on a ``LocalCluster`` of
  --workers processes of one thread each (the model on one onnxruntime thread per worker), written with
  ``rio.to_raster`` under a distributed lock.
Peak memory is each process's VmHWM (peak resident set): the CLI's, every worker's, and the client's. The
difference is over the whole scene, in 8-bit levels. Prints a markdown table.

    python benchmarks/api_dask.py [--sizes 4096 16384] [--chunk 4096] [--workers 2] [--folder DIR]
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from scenes import write_amplitude_scene  # the tests' scene maker, at benchmark size

from sarcolor.backends import bundled_model_path

log = logging.getLogger("api_dask")


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def run_cli(scene: Path, out: Path, model: Path) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of ``sarcolor colorize`` in its own process."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "sarcolor", "-q", "colorize", scene, "-o", out, "--overwrite", "-m", model]
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)  # this child's own peak, not that of every child so far
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"sarcolor colorize {scene} failed")
    return seconds, usage.ru_maxrss / 1024


def run_api(scene: Path, out: Path, model: Path, chunk: int, workers: int, memory_limit: str) -> dict:
    """Seconds of the API on a fresh LocalCluster, and the peak RSS (MB) of each worker and of the client."""
    import rioxarray
    from dask.distributed import Client, LocalCluster, Lock

    import sarcolor

    logging.getLogger("distributed").setLevel(logging.WARNING)  # importing distributed set it to INFO
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, memory_limit=memory_limit) as cluster, \
            Client(cluster) as client:
        start = time.perf_counter()
        sar = rioxarray.open_rasterio(scene, chunks={"x": chunk, "y": chunk}, lock=False)
        rgb = sarcolor.colorize(sar, sarcolor.load_model(model, threads=1))
        rgb.rio.to_raster(out, tiled=True, compress="deflate", zlevel=1, lock=Lock("rio"))
        seconds = time.perf_counter() - start
        workers_peak = sorted(client.run(peak_rss_mb).values())
    return {"seconds": seconds, "workers_mb": workers_peak, "client_mb": peak_rss_mb()}


def difference(a: Path, b: Path, rows: int = 1024) -> tuple[float, int, float]:
    """Mean and largest absolute difference of two RGB rasters (8-bit levels), and the share of values that differ."""
    total, largest, differing, count = 0.0, 0, 0, 0
    with rasterio.open(a) as first, rasterio.open(b) as second:
        for row in range(0, first.height, rows):
            window = Window(0, row, first.width, min(rows, first.height - row))
            diff = np.abs(first.read(window=window).astype(np.int16) - second.read(window=window))
            total, largest = total + float(diff.sum()), max(largest, int(diff.max()))
            differing, count = differing + int(np.count_nonzero(diff)), count + diff.size
    return total / count, largest, differing / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 16384])
    parser.add_argument("--chunk", type=int, default=4096)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="4GiB", help="Dask's per-worker limit (it pauses a worker near it)")
    parser.add_argument("--folder", type=Path, help="where scenes and outputs go (default: a temporary folder)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        # Both runs use one copy of the bundled model: a model file replaced meanwhile would make them differ.
        model = Path(shutil.copy(bundled_model_path(), folder / "model.onnx"))
        for size in args.sizes:
            scene = folder / f"amplitude_{size}.tif"
            if not scene.exists():
                write_amplitude_scene(scene, size)
            log.info("%d²: CLI", size)
            cli_seconds, cli_mb = run_cli(scene, folder / f"cli_{size}.tif", model)
            log.info("%d²: API on %d Dask workers", size, args.workers)
            api = run_api(scene, folder / f"api_{size}.tif", model, args.chunk, args.workers, args.memory_limit)
            mean, largest, share = difference(folder / f"cli_{size}.tif", folder / f"api_{size}.tif")
            rows.append(
                f"| {size}x{size} | {args.chunk} | {cli_seconds:.1f} | {cli_mb:.0f} | {api['seconds']:.1f} | "
                f"{' / '.join(f'{mb:.0f}' for mb in api['workers_mb'])} | {api['client_mb']:.0f} | "
                f"{mean:.4f} ({mean / 255:.1e}) | {largest} | {share:.2%} |"
            )
    print(f"machine: {platform.machine()}, {platform.python_version()}; {args.workers} workers x 1 thread, "
          f"Dask memory limit {args.memory_limit} each\n")
    print("| scene (px) | chunk (px) | CLI s | CLI peak RSS (MB) | API on Dask s | peak RSS per worker (MB) "
          "| client peak RSS (MB) | mean diff vs CLI, levels (/255) | max diff | values differing |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
