"""How ``--input-scale auto`` reads what analysts hold beyond float rasters: 8-bit dB exports, dark amplitude
scenes, optical rasters, and the training convention itself. Each real scene is written in each variant to a
GeoTIFF and opened as ``sarcolor colorize`` opens it (``readers.open_input``); the table counts
per variant how many scenes were read right, refused in one line, and read wrong.

Variants of every s1s2-pairs scene (8-bit VH amplitude / the scene's 99 % quantile; the level of a dB
variant puts the scene's median at -18 dB, a typical VH land level) and of the real sigma0 scenes of
s1s2-world and BigEarthNet (dB as they ship):
- as shipped (8-bit amplitude PNG): must read "normalized";
- 8-bit dB stretches over [-25, 0] and [-30, 0] dB (Earth Engine, SEN1-2): "db" with that stretch (nothing
  says -30, so a -30..0 export is right only when refused or warned: read as -25..0 it is about 40 levels off);
- float amplitude and power with the median at -22, -26 and -30 dB: "amplitude" / "intensity";
- optical: a Sentinel-2 true-colour GeoTIFF (3 bands uint8), the red band as uint16 and as float reflectance:
  refused.

    python experiments/scale_8bit.py [--data ../shared/data] [--limit N]
"""
from __future__ import annotations

import argparse
import logging
import tarfile
import tempfile
from collections import defaultdict
from importlib import resources
from pathlib import Path

import numpy as np
import rasterio

from sarcolor.errors import SarcolorError
from sarcolor.readers import open_input

ROOT = Path(__file__).resolve().parents[1]


def pairs_scenes(data: Path, limit: int):
    for path in sorted((data / "s1s2-pairs" / "sar").glob("*.png"))[:limit]:
        with rasterio.open(path) as src:
            eight_bit = src.read(1)
        amplitude = eight_bit.astype(np.float64) / 255
        valid = amplitude > 0
        db = 20 * np.log10(np.where(valid, amplitude, 1e-6))
        yield "s1s2-pairs", eight_bit, db - np.median(db[valid]) - 18.0, valid


def world_scenes(data: Path):
    world = data / "s1s2-world"
    paths = [(p, 1) for p in sorted(world.glob("ssl4eo-punjab/s1/*/*/VH.tif"))]
    paths += [(p, 2) for p in sorted(world.glob("sen12ms-cr/s1/*.tif"))] + [(world / "sen1floods11" / "Spain_7370579_S1Hand.tif", 2)]
    with tempfile.TemporaryDirectory() as folder:
        import bigearthnet_common

        with resources.as_file(resources.files(bigearthnet_common) / "BigEarthNet-S1-Example.tar.bz2") as archive, tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data")
        paths += [(p, 1) for p in sorted(Path(folder).rglob("*_VH.tif"))]
        for path, band in paths:
            if path.exists():
                with rasterio.open(path) as src:
                    db = src.read(band).astype(np.float64)
                valid = np.isfinite(db)
                yield "s1s2-world + BigEarthNet", None, np.where(valid, db, -99), valid


def stretch(db: np.ndarray, low: float, high: float) -> np.ndarray:
    return np.rint((np.clip(db, low, high) - low) / (high - low) * 255).astype(np.uint8)


def variants(eight_bit, db, valid):
    """(variant, array, what a right reading is)."""
    if eight_bit is not None:
        yield "8-bit amplitude / q99 (as shipped)", eight_bit, "normalized"
    yield "8-bit dB stretch [-25, 0]", stretch(db, -25, 0), "db"
    yield "8-bit dB stretch [-30, 0]", stretch(db, -30, 0), "db[-30,0]"
    for level in (-22, -26, -30):
        shifted = db - np.median(db[valid]) + level
        yield f"float amplitude, median {level} dB", np.where(valid, 10 ** (shifted / 20), np.nan).astype(np.float32), "amplitude"
        yield f"float power, median {level} dB", np.where(valid, 10 ** (shifted / 10), np.nan).astype(np.float32), "intensity"


def optical_scenes(data: Path):
    world = data / "s1s2-world"
    for path in sorted(world.glob("sen12ms-cr/s2_*/*.tif")):
        with rasterio.open(path) as src:
            rgb = src.read([4, 3, 2]).astype(np.float64)
        q99 = np.quantile(rgb.reshape(3, -1), 0.99, axis=1)[:, None, None]
        yield "optical: true colour, 3 x uint8", np.rint(np.clip(rgb / q99, 0, 1) * 255).astype(np.uint8)
        yield "optical: red band, uint16", rgb[0].astype(np.uint16)
        yield "optical: red band, float reflectance", (rgb[0] / 10000).astype(np.float32)


def decide(array: np.ndarray) -> tuple[str | None, str | None, bool]:
    """(scale, the stretch's low end or None, whether a warning doubts it) as ``sarcolor colorize`` opens the
    array written as a GeoTIFF (band choice included); scale None: refused."""
    array = array if array.ndim == 3 else array[None]
    profile = dict(driver="GTiff", count=array.shape[0], height=array.shape[1], width=array.shape[2], dtype=str(array.dtype))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scene.tif"
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(array)
        try:
            with open_input(path) as scene:
                decision = scene.reader.scale_decision
        except SarcolorError:
            return None, None, False
    low = decision.stretch.offset if decision.stretch is not None else None
    return decision.scale, low, decision.warning is not None


def outcome(truth: str, decided: tuple[str | None, str | None, bool]) -> str:
    scale, low, warned = decided
    if scale is None:
        return "refused"
    right = scale == "db" and low == -30 if truth == "db[-30,0]" else scale == truth
    return ("right" if right else "wrong") + (", warned" if warned else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--limit", type=int, default=90)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    rows = defaultdict(lambda: defaultdict(int))
    for source, eight_bit, db, valid in [*pairs_scenes(args.data, args.limit), *world_scenes(args.data)]:
        for variant, array, truth in variants(eight_bit, db, valid):
            rows[(source, variant)][outcome(truth, decide(array))] += 1
    for variant, array in optical_scenes(args.data):
        rows[("SEN12MS-CR, Sen1Floods11 optical", variant)][outcome("refused", decide(array))] += 1
    columns = ("right", "right, warned", "refused", "wrong, warned", "wrong")
    print("| source | written as | scenes | " + " | ".join(columns) + " |")
    print("|---|---|---|" + "---|" * len(columns))
    for (source, variant), row in rows.items():
        print(f"| {source} | {variant} | {sum(row.values())} | " + " | ".join(str(row[c]) for c in columns) + " |")


if __name__ == "__main__":
    main()
