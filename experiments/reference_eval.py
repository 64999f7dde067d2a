"""Colour from an optical reference (``colorize --reference``), measured where the reference is hidden.

1. The 8 val scenes of the s1s2-pairs folder: each scene's own optical with a real cloud shape cut out of it (the
   s2cloudless masks of ../s1s2-world/cloud-masks covering 30-80 %, upsampled to the scene and painted in near-white
   with soft edges, as a cloud), given as the reference. Scored on the clouded pixels only: PSNR, SSIM (the SSIM
   map's mean there) and CIEDE2000, for the default and smooth models, the mean colour of the clear reference pixels
   (a flat image), and --reference (the default and smooth detail, and --fill).
2. Punjab (s1s2-world): the SAR of 2020-09-03 with the clear L1C of 2020-06-04 as reference (the kharif crops grew
   in between), scored against the L1C of 2020-08-23 (its clear pixels, by the same cloud test; each channel / its
   99 % quantile there, as pairs stretches optical), and against the clear L2A of 2020-08-13.

    python experiments/reference_eval.py --out /tmp/reference_eval [--json results.json]
"""
from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.windows import Window
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity

from sarcolor.backends import load_model
from sarcolor.infer import ColorizeOptions, colorize_file
from sarcolor.reference.clouds import painted_cloud
from sarcolor.reference.image import ReferenceImage

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PUNJAB = "ssl4eo-punjab"
PUNJAB_SAR = "s1/0000200/S1A_IW_GRDH_1SDV_20200903T131212_20200903T131237_034195_03F8F5_AC1C/VH.tif"
PUNJAB_JUNE = "s2c/0000200/20200604T054639_20200604T054831_T43RCP"
PUNJAB_JUNE_SAR = "s1/0000200/S1A_IW_GRDH_1SDV_20200607T010800_20200607T010825_032904_03CFBA_D457/VH.tif"
PUNJAB_AUGUST = {"L1C 2020-08-23": "s2c/0000200/20200823T054639_20200823T055618_T43RCP",
                 "L2A 2020-08-13": "s2a/0000200/20200813T054639_20200813T054952_T43RCP"}


def scores(pred: np.ndarray, real: np.ndarray, where: np.ndarray) -> dict[str, float]:
    """PSNR, SSIM and CIEDE2000 of (H, W, 3) images in [0, 1] on the pixels ``where``."""
    mse = ((pred[where] - real[where]) ** 2).mean()
    _, ssim_map = structural_similarity(real, pred, data_range=1.0, channel_axis=-1, full=True)
    de = deltaE_ciede2000(rgb2lab(real), rgb2lab(pred))
    return {"psnr": float(10 * np.log10(1 / mse)), "ssim": float(ssim_map.mean(-1)[where].mean()), "de00": float(de[where].mean())}


def cloud_masks(world: Path) -> list[np.ndarray]:
    """The real cloud masks covering 30-80 % of their frame."""
    masks = np.load(world / "cloud-masks" / "CLM.npy")[..., 0].astype(np.float32)
    return [m for m in masks if 0.3 <= m.mean() <= 0.8]


def read_rgb(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return np.moveaxis(src.read([1, 2, 3]), 0, -1).astype(np.float64) / 255.0


def colorize(model, sar: Path, out: Path, **options) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    colorize_file(sar, out, model, ColorizeOptions(overwrite=True, **options))
    return read_rgb(out), time.perf_counter() - start


def clear_mean(reference: Path, sar: Path, bands=None) -> np.ndarray:
    """The mean colour of the reference's usable pixels on the SAR grid, stretched as --reference stretches it."""
    with rasterio.open(sar) as src, ReferenceImage.open(reference, src, bands) as image:
        rgb, usable = image.read(Window(0, 0, src.width, src.height))
    return rgb[:, usable].mean(1)


METHODS = {  # name: colorize options (None: the flat clear-pixel mean colour)
    "default": {"detail": 1.0},
    "smooth": {"detail": 0.0},
    "clear-pixel mean colour": None,
    "--reference": {"detail": 1.0, "reference": True},
    "--reference --detail 0": {"detail": 0.0, "reference": True},
    "--reference --fill": {"detail": 1.0, "reference": True, "fill": True},
    # Where the reference's date has a SAR scene of its own (Punjab: the S1 of 2020-06-07): fitted there.
    "--reference --reference-sar": {"detail": 1.0, "reference": True, "reference_sar": True},
    "--reference --reference-sar --detail 0": {"detail": 0.0, "reference": True, "reference_sar": True},
}


SELECTED: list[str] = []  # --methods


def run_methods(model, sar: Path, reference: Path, out: Path, truth: np.ndarray, where: np.ndarray, bands=None,
                reference_sar: Path | None = None) -> dict:
    results = {}
    for name, options in METHODS.items():
        if (SELECTED and name not in SELECTED) or (options or {}).get("reference_sar") and reference_sar is None:
            continue
        if options is None:
            pred = np.broadcast_to(clear_mean(reference, sar, bands), truth.shape).copy()
            seconds = 0.0
        else:
            options = dict(options)
            if options.pop("reference", False):
                options.update(reference=reference, reference_bands=bands)
            if options.pop("reference_sar", False):
                options.update(reference_sar=reference_sar)
            pred, seconds = colorize(model, sar, out / f"{name.strip('-').replace(' ', '_')}.tif", **options)
        results[name] = {**scores(pred, truth, where), "seconds": round(seconds, 2)}
    return results


def val_scenes(model, pairs: Path, world: Path, out: Path) -> dict:
    val = json.loads((pairs / "split.json").read_text())["val"]
    masks = cloud_masks(world)
    results = {}
    for i, scene in enumerate(val):
        optical = np.asarray(Image.open(pairs / "opt" / f"{scene}.png").convert("RGB"))
        mask = np.rot90(masks[i % len(masks)], i // len(masks))
        cloudy, hidden = painted_cloud(optical, mask)
        reference = out / f"{scene}_cloudy.png"
        Image.fromarray(cloudy).save(reference)
        scene_results = run_methods(model, pairs / "sar" / f"{scene}.png", reference, out, optical / 255.0, hidden)
        results[scene] = {"hidden": round(float(hidden.mean()), 3), **scene_results}
        logging.info("%s: %s", scene, {k: round(v["psnr"], 2) for k, v in scene_results.items() if isinstance(v, dict)})
    return results


def punjab(model, world: Path, out: Path) -> dict:
    root = world / PUNJAB
    sar = root / PUNJAB_SAR
    results = {}
    with rasterio.open(sar) as src:
        for name, folder in PUNJAB_AUGUST.items():
            with ReferenceImage.open(root / folder, src) as truth_image:
                rgb, usable = truth_image.read(Window(0, 0, src.width, src.height))
            truth = np.moveaxis(rgb, 0, -1).astype(np.float64)
            results[name] = {"clear": round(float(usable.mean()), 3),
                             **run_methods(model, sar, root / PUNJAB_JUNE, out, truth, usable, reference_sar=root / PUNJAB_JUNE_SAR)}
            logging.info("Punjab vs %s: %s", name, {k: round(v["psnr"], 2) for k, v in results[name].items() if isinstance(v, dict)})
    return results


def markdown(results: dict) -> str:
    methods = [m for m in METHODS if m in next(iter(results.values()))]
    lines = ["| scene | hidden | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for scene, r in results.items():
        cells = [f"{r[m]['psnr']:.2f} / {r[m]['ssim']:.3f} / {r[m]['de00']:.1f}" for m in methods]
        share = r.get("hidden", r.get("clear"))
        lines.append(f"| {scene} | {share:.2f} | " + " | ".join(cells) + " |")
    means = [np.mean([r[m]["psnr"] for r in results.values()]) for m in methods]
    lines.append("| mean PSNR | | " + " | ".join(f"{v:.2f}" for v in means) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, default=SHARED / "s1s2-pairs")
    parser.add_argument("--world", type=Path, default=SHARED / "s1s2-world")
    parser.add_argument("--out", type=Path, default=None, help="folder for the references and outputs (default: a temporary one)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--only", choices=("val", "punjab"), default=None)
    parser.add_argument("--methods", default=None, help="comma-separated names of METHODS to run (default: all)")
    args = parser.parse_args()
    SELECTED.extend(args.methods.split(",") if args.methods else [])
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("sarcolor").setLevel(logging.WARNING)
    logging.getLogger("sarcolor.reference.fit").setLevel(logging.INFO)
    model = load_model()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        results = {}
        if args.only in (None, "val"):
            results["val"] = val_scenes(model, args.pairs, args.world, out)
            print("Val scenes, clouded pixels only: PSNR / SSIM / CIEDE2000\n" + markdown(results["val"]))
        if args.only in (None, "punjab"):
            results["punjab"] = punjab(model, args.world, out)
            print("\nPunjab, SAR 2020-09-03, June reference, clear pixels of August\n" + markdown(results["punjab"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
