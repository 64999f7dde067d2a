"""Colourisation throughput (MP/s) and peak memory: sarcolor's bundled models beside the pix2pix reference.

Both run through the same path (onnxruntime, tiled reader -> model -> GeoTIFF writer) on the same
inputs: GeoTIFF scenes made by tiling real val SAR (1024^2, 4096^2, 16384^2, a full 25000x17000
Sentinel-1 IW scene). Each case runs in a fresh process so its peak RSS is its own. pix2pix runs
only up to --pix2pix-max pixels (about 20 min for a full scene here); beyond, its time is
extrapolated from its largest measured throughput and marked so. Each case runs --repeat times, the
runs of all models interleaved, and the fastest is kept (with the largest peak RSS): a short scene's one
run varies by a third on this machine. Prints a markdown table.

    python benchmarks/colorize_speed.py [--sizes 1024 4096 16384 25000x17000] [--pix2pix-max 16777216] [--models default smooth] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "s1_vh_fields_california.tif"
PIX2PIX = "pix2pix U-Net-256"


def parse_size(text: str) -> tuple[int, int]:
    """'4096' -> (4096, 4096); '25000x17000' -> (25000, 17000) as (width, height)."""
    width, _, height = text.partition("x")
    return int(width), int(height or width)


# uint16 scenes hold GRD-like digital numbers: the example's amplitude times this, never 0 (a GRD's no-data fill).
DN_PER_UNIT_AMPLITUDE = 1000


def make_scene(width: int, height: int, path: Path, dtype: str = "uint8") -> None:
    """A width x height GeoTIFF tiled from the real example (mirrored so tiles join smoothly): uint8 as the example
    is, or uint16 amplitude DNs as in a Sentinel-1 GRD."""
    with rasterio.open(EXAMPLE) as src:
        tile = src.read(1)
        crs, transform = src.crs, src.transform
    if dtype == "uint16":
        tile = np.maximum(np.rint(tile * (DN_PER_UNIT_AMPLITUDE / 255)), 1).astype(np.uint16)
    block = np.block([[tile, tile[:, ::-1]], [tile[::-1], tile[::-1, ::-1]]])
    profile = dict(driver="GTiff", width=width, height=height, count=1, dtype=dtype, crs=crs, tiled=True,
                   blockxsize=512, blockysize=512, compress="deflate", BIGTIFF="IF_SAFER",
                   transform=from_origin(transform.c, transform.f, transform.a, -transform.e))
    reps = -(-width // block.shape[1])
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, height, block.shape[0]):
            h = min(block.shape[0], height - row)
            strip = np.tile(block[:h], (1, reps))[:, :width]
            dst.write(strip[None], window=rasterio.windows.Window(0, row, width, h))


def export_pix2pix(path: Path) -> None:
    import torch

    from sarcolor.backends import CONVENTION_KEY, MULTIPLE_KEY
    from sarcolor.checkpoint import SAR_CONVENTION, write_onnx
    from sarcolor.models.pix2pix import Pix2PixUNet

    metadata = {CONVENTION_KEY: json.dumps(SAR_CONVENTION), MULTIPLE_KEY: "256"}
    write_onnx(Pix2PixUNet().eval(), (torch.zeros(1, 1, 256, 256),), ["sar"], metadata, Path(path))


def run_case(model: str, scene: str, out: str, tile: int, overlap: int) -> None:
    """Child process: colourise one scene, print seconds and peak RSS as JSON."""
    from sarcolor.backends import load_model
    from sarcolor.infer import ColorizeOptions, colorize_file

    model, _, extra = model.partition("+")  # "default+confidence": also write the confidence map
    net = load_model(model, "cpu")
    start = time.perf_counter()
    colorize_file(scene, out, net, ColorizeOptions(tile=tile, overlap=overlap, overwrite=True, confidence=extra == "confidence"))
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: after fork+exec Linux keeps the parent's ru_maxrss."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(model: str, scene: Path, out: Path, tile: int, overlap: int) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", model, str(scene), str(out), str(tile), str(overlap)],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure_repeated(cases: dict[str, tuple[str, Path]], scene: Path, tile: int, overlap: int, repeat: int) -> dict[str, dict]:
    """Each case (name -> (model, output path)) ``repeat`` times, interleaved: the fastest run's seconds and the largest peak RSS."""
    runs: dict[str, list[dict]] = {name: [] for name in cases}
    for _ in range(repeat):
        for name, (model, out) in cases.items():
            runs[name].append(measure(model, scene, out, tile, overlap))
    return {name: {"seconds": min(r["seconds"] for r in results), "peak_rss_mb": max(r["peak_rss_mb"] for r in results)}
            for name, results in runs.items()}


def machine() -> str:
    import os

    import onnxruntime

    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = "not installed"
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {mem_gb:.0f} GiB; "
            f"Python {platform.python_version()}, onnxruntime {onnxruntime.__version__}, torch {torch_version}")


def tile_sweep(tiles: list[int], overlap: int, repeat: int, size: int = 4096) -> None:
    """Throughput and memory of our model by tile size, at one overlap (each the fastest of ``repeat`` runs)."""
    print("| tile | overlap | seconds | MP/s | peak RSS (MB) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        scene = Path(tmp) / "scene.tif"
        make_scene(size, size, scene)
        for tile in tiles:
            result = measure_repeated({"default": ("default", Path(tmp) / "out.tif")}, scene, tile, overlap, repeat)["default"]
            print(f"| {tile} | {overlap} | {result['seconds']:.1f} | {size * size / 1e6 / result['seconds']:.2f} | {result['peak_rss_mb']:.0f} |")
            sys.stdout.flush()
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=parse_size, nargs="+", default=[parse_size("1024"), parse_size("4096")],
                        help="scene sizes: N (square) or WxH")
    parser.add_argument("--pix2pix-max", type=float, default=4096**2, help="largest scene (pixels) also run with pix2pix")
    parser.add_argument("--models", nargs="+", default=["default", "default+confidence", "smooth"],
                        help="bundled model names or model files; NAME+confidence also writes the confidence map")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (fresh processes); the fastest is reported")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--tile-sweep", type=int, nargs="*", default=[],
                        help="also time our model on a 4096^2 scene at these tile sizes (with --overlap)")
    args = parser.parse_args()
    print(f"machine: {machine()}\n")
    if args.tile_sweep:
        tile_sweep(args.tile_sweep, args.overlap, max(1, args.repeat))
    print("| model | scene (px) | seconds | MP/s | peak RSS (MB) | speed vs pix2pix |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pix2pix = tmp / "pix2pix.onnx"
        export_pix2pix(pix2pix)
        ref_rate = None  # pix2pix MP/s at its largest measured scene
        for width, height in args.sizes:
            scene = tmp / f"scene_{width}x{height}.tif"
            make_scene(width, height, scene)
            mp = width * height / 1e6
            name = f"{width}x{height}"
            cases = {model: (model, tmp / "ours.tif") for model in args.models}
            with_ref = width * height <= args.pix2pix_max
            if with_ref:
                cases[PIX2PIX] = (str(pix2pix), tmp / "ref.tif")
            results = measure_repeated(cases, scene, args.tile, args.overlap, max(1, args.repeat))
            if with_ref:
                ref = results.pop(PIX2PIX)
                ref_rate = mp / ref["seconds"]
                ref_row = f"| pix2pix U-Net-256 | {name} | {ref['seconds']:.1f} | {ref_rate:.2f} | {ref['peak_rss_mb']:.0f} | 1.0x |"
            elif ref_rate:
                ref_row = f"| pix2pix U-Net-256 (extrapolated) | {name} | ~{mp / ref_rate:.0f} | ({ref_rate:.2f}) | n/a | 1.0x |"
            else:
                ref_row = None
            for model, result in results.items():
                ratio = "n/a"
                if ref_row:
                    ratio = f"{'~' if 'extrapolated' in ref_row else ''}{mp / ref_rate / result['seconds']:.1f}x"
                print(f"| sarcolor ({model}) | {name} | {result['seconds']:.1f} | {mp / result['seconds']:.2f} "
                      f"| {result['peak_rss_mb']:.0f} | {ratio} |")
            if ref_row:
                print(ref_row)
            sys.stdout.flush()
            scene.unlink()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        run_case(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    else:
        main()
