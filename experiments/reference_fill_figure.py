"""The cloud-gap filling figure of docs/evaluation/reference.md and its numbers: real clouds (s1s2-world).

Rows: the SEN12MS-CR Jiangsu and Aachen triplets (S1, cloudy L1C, cloud-free L1C of another date) and Punjab (S1 of
2020-09-03, the L1C of 2020-08-23 with cumulus, the clear L2A of 2020-08-13). Columns: SAR, the cloudy reference
(stretched as --reference stretches it), its gaps as found (white), the --reference --fill output, a clear image.
Numbers per scene: the gaps' share, the cloud-white share (all of R, G, B above 225) of the reference, of the output
(and the part of it whose reflectance is bluish, blue at least red: cloud; the rest is bright soil clipped by the
stretch) and of the output's gaps, the RMS difference in reflectance (x 1,000; B4, B3, B2) between the reference's kept pixels and the clear image
(haze left in raises it; the dates differ, so it is never 0), and the seam: the mean colour step between neighbouring pixels across a gap's edge over the
mean step between all neighbouring pixels of the output (1: no seam).

    python experiments/reference_fill_figure.py --out /tmp/fill [--figure docs/evaluation/reference_fill.jpg]
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.windows import Window

from sarcolor.backends import load_model
from sarcolor.infer import ColorizeOptions, colorize_file
from sarcolor.reference.image import ReferenceImage

WORLD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "s1s2-world"
PUNJAB = WORLD / "ssl4eo-punjab"
SCENES = {  # name: (SAR, cloudy reference, clear image, its bands)
    "Jiangsu": ("sen12ms-cr/s1/ROIs1970_fall_139_p839.tif", "sen12ms-cr/s2_cloudy/ROIs1970_fall_139_p839.tif",
                "sen12ms-cr/s2_cloudfree/ROIs1970_fall_139_p839.tif"),
    "Aachen": ("sen12ms-cr/s1/ROIs2017_winter_112_p797.tif", "sen12ms-cr/s2_cloudy/ROIs2017_winter_112_p797.tif",
               "sen12ms-cr/s2_cloudfree/ROIs2017_winter_112_p797.tif"),
    "Punjab": ("ssl4eo-punjab/s1/0000200/S1A_IW_GRDH_1SDV_20200903T131212_20200903T131237_034195_03F8F5_AC1C/VH.tif",
               "ssl4eo-punjab/s2c/0000200/20200823T054639_20200823T055618_T43RCP",
               "ssl4eo-punjab/s2a/0000200/20200813T054639_20200813T054952_T43RCP"),
}
SIDE = 256  # each panel's side in the figure
WHITE = 225


def on_sar_grid(reference: Path, sar: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A reference's stretched RGB (h, w, 3) in [0, 1] on the SAR grid, its usable pixels, and its reflectance."""
    with rasterio.open(sar) as src, ReferenceImage.open(reference, src) as image:
        rgb, usable = image.read(Window(0, 0, src.width, src.height))
        reflectance = np.moveaxis(image._raw(Window(0, 0, src.width, src.height))[0] / 10_000, 0, -1)
    return np.moveaxis(rgb, 0, -1), usable, reflectance


def sar_picture(sar: Path) -> np.ndarray:
    with rasterio.open(sar) as src:
        db = src.read(src.count if src.count == 2 else 1).astype(np.float32)  # VH: band 2 of SEN12MS-CR's S1
    return np.clip((db + 25) / 25, 0, 1)[..., None].repeat(3, -1)


def seam(rgb: np.ndarray, gaps: np.ndarray) -> float:
    """Mean colour step across the gaps' edges over the mean step between all neighbouring pixels."""
    steps, edge_steps = [], []
    for axis in (0, 1):
        step = np.abs(np.diff(rgb, axis=axis)).sum(-1)
        edge = np.diff(gaps.astype(np.int8), axis=axis) != 0
        steps.append(step.ravel())
        edge_steps.append(step[edge])
    edge_steps = np.concatenate(edge_steps)
    return float(edge_steps.mean() / np.concatenate(steps).mean()) if edge_steps.size else float("nan")


def panel(image: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8)).resize((SIDE, SIDE)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/reference_fill"))
    parser.add_argument("--figure", type=Path, help="write the figure here (JPEG)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    model = load_model("default")
    rows = []
    for name, (sar, cloudy, clear) in SCENES.items():
        sar, cloudy, clear = WORLD / sar, WORLD / cloudy, WORLD / clear
        out = args.out / f"{name}_fill.tif"
        band = 2 if sar.parent.name == "s1" and "sen12ms" in str(sar) else None  # SEN12MS-CR's S1: VV, VH unnamed
        colorize_file(sar, out, model, ColorizeOptions(overwrite=True, reference=cloudy, fill=True, band=band))
        with rasterio.open(out) as src:
            filled = np.moveaxis(src.read([1, 2, 3]), 0, -1)
        reference, usable, reference_reflectance = on_sar_grid(cloudy, sar)
        truth, _, truth_reflectance = on_sar_grid(clear, sar)
        gaps = ~usable
        white = lambda rgb8: (rgb8 > WHITE).all(-1)  # noqa: E731
        reference8 = (reference * 255).round()
        kept = float(np.sqrt(((reference_reflectance - truth_reflectance)[usable] ** 2).mean()) * 1000)
        bluish = reference_reflectance[..., 2] >= reference_reflectance[..., 0]
        logging.info("%s: gaps %.1f %%, cloud-white: reference %.2f %%, output %.2f %% (bluish %.2f %%), output's gaps "
                     "%.2f %%, kept pixels vs clear image %.1f / 1000 reflectance, seam %.2f", name, 100 * gaps.mean(),
                     100 * white(reference8).mean(), 100 * white(filled).mean(), 100 * (white(filled) & bluish).mean(),
                     100 * white(filled)[gaps].mean() if gaps.any() else 0.0, kept, seam(filled / 255.0, gaps))
        rows.append(np.concatenate([panel(sar_picture(sar)), panel(reference), panel(gaps[..., None].repeat(3, -1)),
                                    panel(filled / 255.0), panel(truth)], 1))
    figure = Image.fromarray(np.concatenate(rows, 0))
    figure.save(args.out / "reference_fill.png")
    if args.figure:
        figure.save(args.figure, quality=88)


if __name__ == "__main__":
    main()
