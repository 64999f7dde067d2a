"""A full scene coloured plain, with an optical reference, and with the reference's gaps filled: time and peak memory.

The SAR is a uint16 GeoTIFF of GRD-like DNs tiled from the real example (``colorize_speed.make_scene``; default a
full 25,000 x 17,000 Sentinel-1 IW scene). The reference is an 8-bit RGB GeoTIFF of real optical texture covering
the whole scene: a val scene's optical (``../shared/data/s1s2-pairs``) mirrored into a seamless block and tiled,
on a grid shifted by half a pixel from the SAR's (as a Sentinel-2 grid is), with the real cloud shapes of
``s1s2-world/cloud-masks`` painted in (one mask per 1024 px block, about 40 % of the scene). Each case runs in a
fresh process (``colorize_file``), the cases interleaved ``--repeat`` times; the fastest run and the largest peak
RSS are kept. The ratio to the plain run is what to read: the machine is shared.

    nice python benchmarks/reference_speed.py [--size 25000x17000] [--repeat 1]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.transform import Affine
from rasterio.windows import Window

sys.path.insert(0, str(Path(__file__).resolve().parent))
from colorize_speed import machine, make_scene, parse_size, peak_rss_mb  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
OPTICAL = SHARED / "s1s2-pairs" / "opt" / "253.png"
CLOUDS = SHARED / "s1s2-world" / "cloud-masks" / "CLM.npy"
CASES = {"plain": {}, "--reference": {"reference": True}, "--reference --fill": {"reference": True, "fill": True}}


def make_reference(sar: Path, path: Path) -> float:
    """The clouded 8-bit reference over ``sar``'s footprint; returns its cloud share."""
    from sarcolor.reference.clouds import painted_cloud

    optical = np.asarray(Image.open(OPTICAL).convert("RGB"))
    top = np.concatenate([optical, optical[:, ::-1]], 1)
    block = np.concatenate([top, top[::-1]], 0)  # 2048 px, seamless when tiled
    masks = np.load(CLOUDS)[..., 0]
    masks = [m for m in masks if 0.2 <= m.mean() <= 0.7]
    with rasterio.open(sar) as src:
        width, height, crs, t = src.width, src.height, src.crs, src.transform
    transform = Affine(t.a, t.b, t.c + t.a / 2, t.d, t.e, t.f + t.e / 2)  # half a pixel off, as S2 sits on S1
    profile = dict(driver="GTiff", width=width, height=height, count=3, dtype="uint8", crs=crs, transform=transform,
                   tiled=True, blockxsize=512, blockysize=512, compress="deflate", BIGTIFF="IF_SAFER")
    side, hidden, k = block.shape[0] // 2, 0, 0
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, height, side):
            h = min(side, height - row)
            reps = -(-width // block.shape[1])
            strip = np.tile(block[(row % block.shape[0]) : (row % block.shape[0]) + h], (1, reps, 1))[:, :width]
            for col in range(0, width, side):
                w = min(side, width - col)
                part, cloud = painted_cloud(np.ascontiguousarray(strip[:, col : col + side]), masks[k % len(masks)])
                strip[:, col : col + w], hidden, k = part[:, :w], hidden + cloud[:, :w].sum(), k + 1
            dst.write(np.moveaxis(strip, -1, 0), window=Window(0, row, width, h))
    return hidden / (width * height)


def run_case(scene: str, reference: str, out: str, case: str) -> None:
    """Child process: colourise once, print seconds and peak RSS as JSON."""
    from sarcolor.backends import load_model
    from sarcolor.infer import ColorizeOptions, colorize_file

    options = dict(CASES[case])
    if options.pop("reference", False):
        options["reference"] = Path(reference)
    net = load_model("default", "cpu")
    start = time.perf_counter()
    colorize_file(scene, out, net, ColorizeOptions(overwrite=True, **options))
    print(json.dumps({"seconds": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb()}))


def measure(scene: Path, reference: Path, out: Path, case: str) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", str(scene), str(reference), str(out), case],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("25000x17000"))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--work", type=Path, default=None, help="folder for the scene, reference and outputs (kept)")
    args = parser.parse_args()
    print(f"machine: {machine()}\n")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        width, height = args.size
        scene, reference = work / f"scene_{width}x{height}.tif", work / f"reference_{width}x{height}.tif"
        if not scene.exists():
            make_scene(width, height, scene, "uint16")
        if not reference.exists():
            print(f"reference: {100 * make_reference(scene, reference):.0f} % clouded")
        runs: dict[str, list[dict]] = {case: [] for case in CASES}
        for _ in range(max(1, args.repeat)):
            for case in CASES:
                runs[case].append(measure(scene, reference, work / "out.tif", case))
                print(case, runs[case][-1], flush=True)
    plain = min(r["seconds"] for r in runs["plain"])
    print(f"\n| case ({width} x {height}) | seconds | vs plain | peak RSS (MB) |\n|---|---|---|---|")
    for case, results in runs.items():
        seconds = min(r["seconds"] for r in results)
        print(f"| {case} | {seconds:.1f} | {seconds / plain:.2f}x | {max(r['peak_rss_mb'] for r in results):.0f} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        run_case(*sys.argv[2:6])
    else:
        main()
