"""Colourisation on a CUDA GPU: the same tiled pipeline as colorize_speed.py (reader -> model -> blend -> GeoTIFF
writer, ``colorize_file``), with the model in torch on the GPU instead of onnxruntime on the CPU.

Cases, on one scene made by colorize_speed.make_scene from the real example (default: a full 25,000 x 17,000
Sentinel-1 IW scene): the bundled model's torch weights (sarcolor/weights/default.pt) on the GPU, with and
without the confidence map, at batch sizes --batches; the pix2pix U-Net-256 reference on the GPU (random
weights: speed only, as in colorize_speed.py); the bundled ONNX on the CPU as the reference run in the
same process. Each case runs --repeat times and the fastest is kept. Nothing in sarcolor needs a GPU; this
only measures what one buys. Prints a markdown table (and writes it to --json if given).

    python benchmarks/gpu_speed.py [--size 25000x17000] [--batches 4 16] [--repeat 2] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from colorize_speed import machine, make_scene, parse_size, peak_rss_mb  # noqa: E402

PIX2PIX = "pix2pix U-Net-256"


def pix2pix_checkpoint(path: Path) -> Path:
    """A training checkpoint of the pix2pix U-Net-256 with random weights, loadable by ``load_model``."""
    import torch

    from sarcolor.checkpoint import SAR_CONVENTION
    from sarcolor.config import RunConfig, config_to_dict
    from sarcolor.models.pix2pix import Pix2PixUNet

    config = RunConfig()
    config.model.arch = "pix2pix"
    weights = Pix2PixUNet().state_dict()
    torch.save({"config": config_to_dict(config), "ema": weights, "sar_convention": SAR_CONVENTION}, path)
    return path


def time_case(model_path: str, device: str, scene: Path, out: Path, batch: int, tile: int, confidence: bool, repeat: int) -> float:
    from sarcolor.backends import load_model
    from sarcolor.infer import ColorizeOptions, colorize_file

    net = load_model(model_path, device)
    options = ColorizeOptions(tile=tile, overlap=64, batch_size=batch, overwrite=True, confidence=confidence)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        colorize_file(scene, out, net, options)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("25000x17000"))
    parser.add_argument("--batches", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        sys.exit("no CUDA device: this benchmark measures a GPU")
    weights = Path(__file__).resolve().parents[1] / "sarcolor" / "weights"
    width, height = args.size
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        scene, out = tmp / "scene.tif", tmp / "out.tif"
        make_scene(width, height, scene)
        pix2pix = str(pix2pix_checkpoint(tmp / "pix2pix.pt"))
        cases = [("default, onnxruntime CPU", str(weights / "default.onnx"), "cpu", 4, 512, False)]
        for batch in args.batches:
            cases += [
                (f"default, torch GPU, batch {batch}", str(weights / "default.pt"), "cuda", batch, 512, False),
                (f"default + confidence, torch GPU, batch {batch}", str(weights / "default.pt"), "cuda", batch, 512, True),
                (f"{PIX2PIX}, torch GPU, batch {batch}", pix2pix, "cuda", batch, 512, False),
            ]
        for name, model, device, batch, tile, confidence in cases:
            seconds = time_case(model, device, scene, out, batch, tile, confidence, args.repeat)
            rows.append({"case": name, "seconds": seconds, "mp_per_s": width * height / seconds / 1e6})
            print(f"{name}: {seconds:.1f} s", file=sys.stderr, flush=True)
    print(f"{width} x {height} px; {machine()}; GPU {torch.cuda.get_device_name()}; peak RSS {peak_rss_mb():.0f} MB\n")
    print("| case | seconds | MP/s |\n|---|---|---|")
    for row in rows:
        print(f"| {row['case']} | {row['seconds']:.1f} | {row['mp_per_s']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
