"""A full-size Sentinel-1 GRD product against the same scene as a plain GeoTIFF: time and peak memory.

The product is the real S1A IW GRDH 1SDV product of ../shared/data/s1-products (real manifest, annotation,
calibration and noise tables) with its VH measurement written in full (25931 x 16854 px, uncompressed
uint16 as ESA ships it), every pixel real SAR texture (the coast example tiled, as sigma0 with its median
at -18 dB) turned into DNs through the product's own tables; the VV measurement is empty. The plain
GeoTIFF is that measurement file on its own, with the annotation's GCPs. Each case runs in a fresh
process (`sarcolor colorize`), one after the other; peak RSS is the process's.

    python benchmarks/product_speed.py [--work DIR] [--cases plain plain-utm product zip]
"""
from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

ROOT = Path(__file__).resolve().parents[1]


sys.path.insert(0, str(ROOT / "scripts"))
import make_grd_fixture as FIXTURE  # noqa: E402  (the script that builds the miniature product)


def texture_block() -> np.ndarray:
    """The coast example's sigma0, mirrored into a 1024 px block that tiles without seams."""
    tile = FIXTURE.example_sigma0()
    return np.block([[tile, tile[:, ::-1]], [tile[::-1], tile[::-1, ::-1]]])


def full_product(work: Path) -> Path:
    """The real product with a full VH measurement (uncompressed, strip by strip) and an empty VV one."""
    safe = FIXTURE.extract_product(FIXTURE.REAL_PRODUCT, work)
    manifest = FIXTURE.Manifest.parse((safe / "manifest.safe").read_bytes(), str(safe))
    height, width = FIXTURE.product_size(safe, manifest.files[("annotation", "VH")])
    calibration = FIXTURE.calibration_of(safe, manifest, "VH")
    block = texture_block()
    reps = -(-width // block.shape[1])
    path = safe / manifest.files[("measurement", "VH")]
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(driver="GTiff", width=width, height=height, count=1, dtype="uint16", BIGTIFF="IF_SAFER")
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, height, block.shape[0]):
            h = min(block.shape[0], height - row)
            sigma0 = np.tile(block[:h], (1, reps))[:, :width]
            dst.write(FIXTURE.dn_from_sigma0(calibration, sigma0, row, 0), 1, window=Window(0, row, width, h))
    FIXTURE.write_measurement(safe, "VV")
    return safe


def plain_geotiff(safe: Path, path: Path) -> Path:
    """The VH measurement on its own, georeferenced by the annotation's GCPs (as GDAL reads the product)."""
    manifest = FIXTURE.Manifest.parse((safe / "manifest.safe").read_bytes(), str(safe))
    shutil.copy(safe / manifest.files[("measurement", "VH")], path)
    with rasterio.open(safe) as product:
        gcps = product.gcps
    with rasterio.open(path, "r+") as dst:
        dst.gcps = gcps
    return path


def zipped(safe: Path, path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for item in sorted(safe.rglob("*")):
            if item.is_file():
                archive.write(item, f"{safe.name}/{item.relative_to(safe).as_posix()}")
    return path


def run(args: list[str]) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of one ``sarcolor`` process."""
    start = time.perf_counter()
    code = (
        "import resource, sys; from sarcolor.cli import run; sys.argv = ['sarcolor'] + sys.argv[1:]\n"
        "try:\n    run()\nexcept SystemExit as e:\n    code = e.code\nelse:\n    code = 0\n"
        "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(code)"
    )
    result = subprocess.run([sys.executable, "-c", code, "-q", *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode:
        raise RuntimeError(result.stderr)
    peak = next(line for line in result.stderr.splitlines() if line.startswith("PEAK"))
    return seconds, int(peak.split()[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="folder for the product and outputs (default: a temporary one)")
    parser.add_argument("--cases", nargs="+", default=["plain", "plain-utm", "product", "zip"])
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="product_speed_"))
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    safe = full_product(work / "product")
    plain = plain_geotiff(safe, work / "vh_measurement_gcps.tif")
    inputs = {"plain": (plain, []), "plain-utm": (plain, ["--warp", "utm"]), "product": (safe, [])}
    if "zip" in args.cases:
        inputs["zip"] = (zipped(safe, work / f"{safe.stem}.zip"), [])
    print(f"inputs made in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    rows = []
    for case in args.cases:
        source, extra = inputs[case]
        out = work / f"{case}_rgb.tif"
        seconds, peak = run(["colorize", str(source), "-o", str(out), "--overwrite", *extra])
        with rasterio.open(out) as dst:
            grid = f"{dst.width}x{dst.height} {dst.crs.to_string() if dst.crs else 'GCPs'}"
        rows.append((case, seconds, peak, grid))
        print(f"{case}: {seconds:.0f} s, {peak:.0f} MB", file=sys.stderr, flush=True)
    print(f"machine: {platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores; input 25931x16854 px (437 MP)\n")
    print("| input | seconds | MP/s (input) | peak RSS (MB) | output | vs plain GeoTIFF |")
    print("|---|---|---|---|---|---|")
    base = rows[0][1]
    for case, seconds, peak, grid in rows:
        print(f"| {case} | {seconds:.0f} | {437.0 / seconds:.2f} | {peak:.0f} | {grid} | {seconds / base:.2f}x |")


if __name__ == "__main__":
    main()
