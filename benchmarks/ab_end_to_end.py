"""End-to-end colourisation time of two source trees of sarcolor on one scene, in fresh processes, alternating.

For a before/after figure on a noisy machine: ``--before`` is another checkout (e.g. ``git worktree add /tmp/head
HEAD``), ``--after`` this one; each round runs every model case once with each tree, one after the other, so both
see the same load. Prints each run and a table of the best and median seconds and the peak RSS.

    python benchmarks/ab_end_to_end.py --before /tmp/head --size 25000x2048 --rounds 3 --models default default+confidence
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from colorize_speed import make_scene, parse_size  # noqa: E402


def run_child(tree: Path, model: str, scene: Path, out: Path, tile: int, overlap: int) -> dict:
    """One colorize run of ``tree``'s sarcolor (first on PYTHONPATH) through its own colorize_speed.py child."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    result = subprocess.run(
        [sys.executable, str(tree / "benchmarks" / "colorize_speed.py"), "--child", model, str(scene), str(out), str(tile), str(overlap)],
        capture_output=True, text=True, check=True, env=env,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the other source tree (a checkout)")
    parser.add_argument("--after", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--size", type=parse_size, default=parse_size("25000x2048"), help="N or WxH")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["default", "default+confidence"])
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=32)
    args = parser.parse_args()
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    runs: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        scene = Path(tmp) / "scene.tif"
        make_scene(*args.size, scene, dtype="uint16")
        for _ in range(args.rounds):
            for model in args.models:
                for name, tree in trees.items():
                    result = run_child(tree, model, scene, Path(tmp) / "out.tif", args.tile, args.overlap)
                    runs.setdefault((model, name), []).append(result)
                    print(f"{name} {model}: {result['seconds']:.2f} s, {result['peak_rss_mb']:.0f} MB, "
                          f"load {os.getloadavg()[0]:.1f}", flush=True)
    print("\n| case | tree | best (s) | median (s) | peak RSS (MB) |\n|---|---|---|---|---|")
    for (model, name), results in runs.items():
        seconds = [r["seconds"] for r in results]
        print(f"| {model} | {name} | {min(seconds):.1f} | {statistics.median(seconds):.1f} "
              f"| {max(r['peak_rss_mb'] for r in results):.0f} |")


if __name__ == "__main__":
    main()
