"""Render the picture at the top of the README: a real val scene as SAR | sarcolor's colours | the optical image.

The scene is one of the pairs data set's val scenes (never trained on), coloured by the bundled model; the optical
image is not used, only shown. The SAR is shown as analysts view it (and as the web page shows it): its dB from the
2 % quantile (black) to the 98 % one (white).

    python scripts/render_readme_figure.py --data ../shared/data/s1s2-pairs   # -> docs/img/before_after.png
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

import sarcolor

ROOT = Path(__file__).resolve().parents[1]
SCENE = "015"
PANEL = 340
LABELS = ("Sentinel-1 radar (VH)", "sarcolor", "Sentinel-2 optical (not used)")

log = logging.getLogger("render_readme_figure")


def analyst_view(sar: np.ndarray) -> np.ndarray:
    db = 20 * np.log10(np.maximum(sar.astype(np.float32), 1.0))
    low, high = np.percentile(db, [2, 98])
    return np.round(255 * np.clip((db - low) / (high - low), 0, 1)).astype(np.uint8)


def panels(data: Path, scene: str) -> list[np.ndarray]:
    sar = np.asarray(Image.open(data / "sar" / f"{scene}.png").convert("L"))
    rgb = sarcolor.colorize(sar).transpose("y", "x", "band").values
    optical = np.asarray(Image.open(data / "opt" / f"{scene}.png").convert("RGB"))
    return [analyst_view(sar), rgb, optical]


def figure(images: list[np.ndarray]) -> Image.Image:
    gap, label_height = 6, 22
    canvas = Image.new("RGB", (len(images) * PANEL + (len(images) - 1) * gap, PANEL + label_height), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (image, label) in enumerate(zip(images, LABELS)):
        x = i * (PANEL + gap)
        canvas.paste(Image.fromarray(image).resize((PANEL, PANEL), Image.LANCZOS), (x, label_height))
        draw.text((x + 4, 5), label, fill="black")
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="The s1s2-pairs folder.")
    parser.add_argument("--scene", default=SCENE, help=f"A val scene's id (default: {SCENE}).")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "before_after.png")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # A 256-colour palette keeps the PNG small; the panels are photographs, dithering hides the steps.
    figure(panels(args.data, args.scene)).quantize(256, dither=Image.Dither.FLOYDSTEINBERG).save(args.out, optimize=True)
    log.info("wrote %s (%d KB)", args.out, args.out.stat().st_size // 1024)


if __name__ == "__main__":
    main()
