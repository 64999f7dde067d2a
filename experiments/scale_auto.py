"""How ``--input-scale auto`` decides on real Sentinel-1 scenes written in every unit (issue 21).

Each real scene is written as linear amplitude and as linear power, calibrated (its real sigma0, where
the source has it) and uncalibrated (times a digital-number-like constant), and as dB; the values
alone (no metadata) must give back the unit it was written in. Prints, per source and variant, how
many scenes were read right, refused (ambiguous) and read wrong, and the smallest winning margin.

Sources: the s1s2-pairs VH scenes (amplitude / scene 99 % quantile, so not calibrated), the 52 real
BigEarthNet VH and VV patches (sigma0 in dB, from the bigearthnet-common wheel), the pyroSAR VV scene
of ../shared/data/s1-products (sigma0 in dB) and the bundled examples.

    python experiments/scale_auto.py [--data ../shared/data]
"""
from __future__ import annotations

import argparse
import tarfile
import tempfile
from collections import defaultdict
from importlib import resources
from pathlib import Path

import numpy as np
import rasterio

from sarcolor.errors import SarcolorError
from sarcolor.scale import DECISIVE_MARGIN, ValueStatistics, reading_scores, values_scale

ROOT = Path(__file__).resolve().parents[1]
DN_GAIN = 500.0  # about a GRD's calibration constant: amplitude DN = sqrt(sigma0) * 500


def pairs_scenes(data: Path):
    for path in sorted((data / "s1s2-pairs" / "sar").glob("*.png")):
        with rasterio.open(path) as src:
            amplitude = src.read(1).astype(np.float64) / 255
        yield "s1s2-pairs (relative)", amplitude[amplitude > 0] ** 2, False, "VH"


def bigearthnet_scenes():
    import bigearthnet_common

    with tempfile.TemporaryDirectory() as folder:
        with resources.as_file(resources.files(bigearthnet_common) / "BigEarthNet-S1-Example.tar.bz2") as archive:
            with tarfile.open(archive) as tar:
                tar.extractall(folder, filter="data")
        for path in sorted(Path(folder).rglob("*.tif")):
            with rasterio.open(path) as src:
                db = src.read(1).astype(np.float64)
            yield "BigEarthNet (sigma0)", 10 ** (db[np.isfinite(db)] / 10), True, path.stem[-2:]


def pyrosar_scene(data: Path):
    path = data / "s1-products" / "S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif"
    if path.exists():
        with rasterio.open(path) as src:
            db = src.read(1, masked=True).compressed().astype(np.float64)
        yield "pyroSAR (sigma0)", 10 ** (db / 10), True, "VV"


def example_scenes():
    for path in sorted((ROOT / "examples").glob("*.tif")):
        with rasterio.open(path) as src:
            amplitude = src.read(1).astype(np.float64) / 255
        yield "examples (relative)", amplitude[amplitude > 0] ** 2, False, "VH"


def variants(power: np.ndarray, calibrated: bool):
    """(variant name, values, the unit they are in)."""
    amplitude = np.sqrt(power)
    if calibrated:
        yield "power", power.astype(np.float32), "intensity"
        yield "amplitude", amplitude.astype(np.float32), "amplitude"
        yield "dB", (10 * np.log10(power)).astype(np.float32), "db"
    else:
        yield "relative amplitude", amplitude.astype(np.float32), "amplitude"
    yield "amplitude x500", (amplitude * DN_GAIN).astype(np.float32), "amplitude"
    yield "power x500^2", (power * DN_GAIN**2).astype(np.float32), "intensity"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    outcomes = defaultdict(lambda: {"right": 0, "refused": 0, "wrong": 0, "margins": []})
    scenes = [*pairs_scenes(args.data), *bigearthnet_scenes(), *pyrosar_scene(args.data), *example_scenes()]
    for source, power, calibrated, scene_pol in scenes:
        for variant, values, truth in variants(power, calibrated):
            for pol in (scene_pol, None):
                row = outcomes[(source, scene_pol, "named" if pol else "unknown", variant)]
                try:
                    decided = values_scale("float32", values, pol=pol).scale
                except SarcolorError:
                    decided = None
                right = decided == truth or (variant == "relative amplitude" and decided == "normalized")
                row["right" if right else "refused" if decided is None else "wrong"] += 1
                if truth in ("amplitude", "intensity"):
                    scores = reading_scores(ValueStatistics.of(values), pol)
                    other = "intensity" if truth == "amplitude" else "amplitude"
                    row["margins"].append(scores[other] - scores[truth])
    print(f"Decisive margin: {DECISIVE_MARGIN}\n")
    print("| source | polarisation | written as | scenes | read right | refused | read wrong | smallest margin for the truth |")
    print("|---|---|---|---|---|---|---|---|")
    for (source, scene_pol, named, variant), row in sorted(outcomes.items(), key=lambda item: item[0]):
        total = row["right"] + row["refused"] + row["wrong"]
        margin = f"{min(row['margins']):.1f}" if row["margins"] else "-"
        print(f"| {source} | {scene_pol}, {named} | {variant} | {total} | {row['right']} | {row['refused']} | {row['wrong']} | {margin} |")


if __name__ == "__main__":
    main()
