"""Issue 25: `sarcolor finetune` as shipped, and variants of its recipe, over several seeds, each run on its own
two CPU cores (the laptop the --minutes budget is for), scored on the held-out BigEarthNet patches.

A variant is the finetune run config with some fields replaced ("train.seed=1", "data.gain_jitter=0.2"); the
runs go side by side, `--jobs` at a time, each pinned with taskset to `--cores` cores. Each prints one JSON line
(PSNR, ΔE00 and the confidence map's Spearman on held-out, as experiments/data_amount.py scores them); the
table at the end gives each variant's mean and spread.

    python experiments/finetune_sweep.py --adapt adapt --heldout heldout --work /tmp/sweep --minutes 5 \\
        --variant recipe= --variant jitter02=data.gain_jitter=0.2 --seeds 0 1 2 --jobs 8 --cores 2
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from data_amount import score
from sarcolor.config import with_overrides
from sarcolor.data import load_split
from sarcolor.finetune import plan_finetune, run_finetune


def parsed(assignments: list[str]) -> dict:
    """{"section.field": value} of "section.field=value" assignments (the value parsed as JSON, else a string)."""
    overrides = {}
    for assignment in assignments:
        key, value = assignment.split("=", 1)
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return overrides


def run_one(args) -> None:
    """One fine-tune (this process): plan as `sarcolor finetune` does, apply the variant, train, score."""
    logging.basicConfig(level=logging.WARNING)
    model = args.work / f"{args.name}.onnx"
    config = plan_finetune(args.adapt, model, minutes=args.minutes, overwrite=True)
    config = with_overrides(config, parsed(args.set))
    run_finetune(config, model)
    print(json.dumps({"name": args.name, "set": args.set, **score(model, load_split(args.heldout, "val"))}), flush=True)


def launch(args, name: str, assignments: list[str], cores: list[int]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": str(len(cores)), "MKL_NUM_THREADS": str(len(cores))}
    command = ["taskset", "-c", ",".join(map(str, cores)), sys.executable, __file__, "--one", name,
               "--adapt", str(args.adapt), "--heldout", str(args.heldout), "--work", str(args.work),
               "--minutes", str(args.minutes), *[f"--set={a}" for a in assignments]]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)


def sweep(args) -> None:
    runs = []
    for variant in args.variant:
        label, _, rest = variant.partition("=")
        assignments = [a for a in rest.split(";") if a]
        runs += [(f"{label}_s{seed}", label, [*assignments, f"train.seed={seed}"]) for seed in args.seeds]
    results = []
    for start in range(0, len(runs), args.jobs):
        batch = runs[start : start + args.jobs]
        procs = [launch(args, name, sets, list(range(i * args.cores, (i + 1) * args.cores))) for i, (name, _, sets) in enumerate(batch)]
        for (name, label, _), proc in zip(batch, procs):
            out, _ = proc.communicate()
            line = out.strip().splitlines()[-1] if proc.returncode == 0 and out.strip() else "{}"
            print(line, flush=True)
            results.append((label, json.loads(line)))
    print("| variant | runs | held-out PSNR (mean ± sd) | min–max | ΔE00 | Spearman (mean, min–max) |")
    print("|---|---|---|---|---|---|")
    for label in dict.fromkeys(label for label, _ in results):
        rows = [r for lab, r in results if lab == label and r]
        if not rows:
            print(f"| {label} | 0 (failed) | | | | |")
            continue
        psnr, de, rho = (np.array([r[k] for r in rows]) for k in ("psnr", "delta_e00", "spearman"))
        print(f"| {label} | {len(rows)} | {psnr.mean():.2f} ± {psnr.std():.2f} | {psnr.min():.2f}–{psnr.max():.2f} | "
              f"{de.mean():.1f} | {rho.mean():.2f} ({rho.min():.2f}–{rho.max():.2f}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapt", type=Path, required=True, help="the region's pairs folder (sarcolor pairs)")
    parser.add_argument("--heldout", type=Path, required=True, help="held-out pairs folder (all in val)")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--variant", action="append", default=[], help="LABEL=section.field=value;... (LABEL= for the recipe)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--one", dest="name", help=argparse.SUPPRESS)
    parser.add_argument("--set", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    run_one(args) if args.name else sweep(args)


if __name__ == "__main__":
    main()
