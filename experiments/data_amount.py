"""Issue 25: how much a region's data buys. `sarcolor pairs` + `sarcolor finetune` on 1, 2, 5 and all of the
BigEarthNet "adapt" patches (scripts/bigearthnet_rasters.py), each adapted model scored on the held-out patches.

The patches are taken evenly spread over the sorted file list. One patch alone cannot give a train and a val split
by whole files, so it is cut into 60 px tiles (`--tile 60 --block-tiles 1`: 3 train, 1 val); more patches go in
as a folder (`--tile 120`, whole files to val).

    python experiments/data_amount.py DIR --heldout heldout --work /tmp/amount [--minutes 5] [--counts 1 2 5 33]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from sarcolor.backends import load_model
from sarcolor.confidence import ErrorBlocks
from sarcolor.data import load_split
from sarcolor.evaluate import evaluate, model_predictor


def sarcolor(*args) -> None:
    subprocess.run([sys.executable, "-m", "sarcolor", "-q", *map(str, args)], check=True)


def region_pairs(rasters: Path, count: int, work: Path) -> Path:
    """A pairs folder of ``count`` adapt patches, evenly spread over the sorted list."""
    names = sorted(p.name for p in (rasters / "s1").glob("*.tif"))
    chosen = [names[i] for i in np.linspace(0, len(names) - 1, count).round().astype(int)]
    out = work / f"pairs_{count}"
    if count == 1:
        sarcolor("pairs", rasters / "s1" / chosen[0], rasters / "s2" / chosen[0], "-o", out, "--tile", 60, "--block-tiles", 1)
        return out
    for sub in ("s1", "s2"):
        (work / f"subset_{count}" / sub).mkdir(parents=True, exist_ok=True)
        for name in chosen:
            link = work / f"subset_{count}" / sub / name
            if not link.exists():
                link.symlink_to((rasters / sub / name).resolve())
    sarcolor("pairs", work / f"subset_{count}" / "s1", work / f"subset_{count}" / "s2", "-o", out, "--tile", 120)
    return out


def score(model_path, heldout: list) -> dict:
    model = load_model(model_path, "cpu")
    blocks = ErrorBlocks()
    result = evaluate({"m": blocks.recording(model_predictor(model))}, heldout, "val")
    means = result.means()["m"]
    return {"psnr": means["psnr"], "delta_e00": means["delta_e00"], "spearman": blocks.spearman(),
            "calibrated": bool(model.error_calibration)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rasters", type=Path, help="the folder scripts/bigearthnet_rasters.py wrote (with adapt/)")
    parser.add_argument("--heldout", type=Path, required=True, help="the held-out pairs folder")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 2, 5, 33])
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    heldout = load_split(args.heldout, "val")
    rows = {"shipped": score("default", heldout)}
    print(json.dumps({"shipped": rows["shipped"]}), flush=True)
    for count in args.counts:
        pairs = region_pairs(args.rasters / "adapt", count, args.work)
        model = args.work / f"adapted_{count}.onnx"
        sarcolor("finetune", "--data", pairs, "-o", model, "--minutes", args.minutes, "--overwrite")
        split = json.loads((pairs / "split.json").read_text())
        rows[count] = {"train": len(split["train"]), "val": len(split["val"]), **score(model, heldout)}
        print(json.dumps({count: rows[count]}), flush=True)
    print("| pairs | train / val tiles | PSNR (dB) | vs shipped | ΔE00 | confidence map (Spearman on held-out) |")
    print("|---|---|---|---|---|---|")
    shipped = rows.pop("shipped")
    for count, row in rows.items():
        state = "calibrated" if row["calibrated"] else "uncalibrated"
        print(f"| {count} | {row['train']} / {row['val']} | {row['psnr']:.2f} | {row['psnr'] - shipped['psnr']:+.2f} | "
              f"{row['delta_e00']:.1f} | {state}, {row['spearman']:.2f} |")
    print(f"| shipped | | {shipped['psnr']:.2f} | | {shipped['delta_e00']:.1f} | home calibration, {shipped['spearman']:.2f} |")


if __name__ == "__main__":
    main()
