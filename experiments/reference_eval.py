"""Colour from an optical reference (``colorize --reference``), measured where the reference is hidden.

1. The 8 val scenes of the s1s2-pairs folder: each scene's own optical with a real cloud shape cut out of it (the
   s2cloudless masks of ../s1s2-world/cloud-masks covering 30-80 %, upsampled to the scene and painted in near-white
   with soft edges, as a cloud), given as the reference. Scored on the clouded pixels only: PSNR, SSIM (the SSIM
   map's mean there) and CIEDE2000, for the default and smooth models, the mean colour of the clear reference pixels
   (a flat image), and --reference (the default and smooth detail, and --fill). The confidence map's rank
   correlation with the real CIEDE2000 on the same pixels (16 px blocks at least three quarters scored): the map a
   reference calibrates, and the model's own (the run without a reference at the same detail).
2. Punjab (s1s2-world): the SAR of 2020-09-03 with the clear L1C of 2020-06-04 as reference (the kharif crops grew
   in between), scored against the L1C of 2020-08-23 (its clear pixels, by the same cloud test; each channel / its
   99 % quantile there, as pairs stretches optical), and against the clear L2A of 2020-08-13.
3. A time series (``--only series``): the Punjab SAR of 2020-06-07 and of 2020-09-03 as one folder, with the June
   L1C as the one reference: coloured with a fit per scene and with one fit shared by both dates
   (``shared_reference_fit``, what a folder input does), and with the fit of the June date alone (the reference's
   weeks) for both. Measured: the CIEDE2000 between the two dates' outputs where their SAR did not change (VH within
   1 dB of each other, 7 px mean), also where the optical images agree too (June L1C and August L2A within 8), and
   each date against its optical (June: the reference itself; September: the August L2A).

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
from scipy import ndimage
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity

from sarcolor.backends import load_model
from sarcolor.infer import ColorizeOptions, colorize_file, confidence_path, shared_reference_fit
from sarcolor.reference.apply import REFERENCE_DETAIL
from sarcolor.reference.clouds import painted_cloud
from sarcolor.reference.image import ReferenceImage

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PUNJAB = "ssl4eo-punjab"
PUNJAB_SAR = "s1/0000200/S1A_IW_GRDH_1SDV_20200903T131212_20200903T131237_034195_03F8F5_AC1C/VH.tif"
UNCHANGED_DB = 1.0  # SAR within this many dB between the dates (a 7 px mean): the same kind of place on both
UNCHANGED_DE00 = 8.0  # and the optical images (June L1C, August L2A) within this CIEDE2000 of each other
PUNJAB_JUNE = "s2c/0000200/20200604T054639_20200604T054831_T43RCP"
PUNJAB_JUNE_SAR = "s1/0000200/S1A_IW_GRDH_1SDV_20200607T010800_20200607T010825_032904_03CFBA_D457/VH.tif"
PUNJAB_AUGUST = {"L1C 2020-08-23": "s2c/0000200/20200823T054639_20200823T055618_T43RCP",
                 "L2A 2020-08-13": "s2a/0000200/20200813T054639_20200813T054952_T43RCP"}


BLOCK = 16  # pixels: the confidence map's rank correlation is taken over blocks this wide
BLOCK_SHARE = 0.75  # of a block's pixels scored, at least


def block_means(a: np.ndarray, where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``a`` over the ``where`` pixels of each BLOCK x BLOCK block, and the blocks at least BLOCK_SHARE scored."""
    h, w = (s // BLOCK * BLOCK for s in a.shape)

    def sums(x):
        return x[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).sum((1, 3)).ravel()

    count = sums(where.astype(np.float64))
    return sums(np.where(where, a, 0.0)) / np.maximum(count, 1), count >= BLOCK_SHARE * BLOCK * BLOCK


def confidence_rank(confidence: np.ndarray, de: np.ndarray, where: np.ndarray) -> float:
    """Spearman of the confidence map against the real CIEDE2000, over the blocks of the ``where`` pixels."""
    expected, kept = block_means(confidence, where)
    actual, _ = block_means(de, where)
    return float(spearmanr(expected[kept], actual[kept]).statistic)


def scores(pred: np.ndarray, real: np.ndarray, where: np.ndarray) -> dict[str, float]:
    """PSNR, SSIM and CIEDE2000 of (H, W, 3) images in [0, 1] on the pixels ``where``."""
    mse = ((pred[where] - real[where]) ** 2).mean()
    _, ssim_map = structural_similarity(real, pred, data_range=1.0, channel_axis=-1, full=True)
    de = deltaE_ciede2000(rgb2lab(real), rgb2lab(pred))
    return {"psnr": float(10 * np.log10(1 / mse)), "ssim": float(ssim_map.mean(-1)[where].mean()), "de00": float(de[where].mean()),
            "error_map": de}


def cloud_masks(world: Path) -> list[np.ndarray]:
    """The real cloud masks covering 30-80 % of their frame."""
    masks = np.load(world / "cloud-masks" / "CLM.npy")[..., 0].astype(np.float32)
    return [m for m in masks if 0.3 <= m.mean() <= 0.8]


def read_rgb(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return np.moveaxis(src.read([1, 2, 3]), 0, -1).astype(np.float64) / 255.0


def colorize(model, sar: Path, out: Path, **options) -> tuple[np.ndarray, np.ndarray, float]:
    """The output RGB, its confidence map, and the seconds it took."""
    start = time.perf_counter()
    colorize_file(sar, out, model, ColorizeOptions(overwrite=True, confidence=True, **options))
    seconds = time.perf_counter() - start
    with rasterio.open(confidence_path(out)) as src:
        return read_rgb(out), src.read(1).astype(np.float64), seconds


def clear_mean(reference: Path, sar: Path, bands=None) -> np.ndarray:
    """The mean colour of the reference's usable pixels on the SAR grid, stretched as --reference stretches it."""
    with rasterio.open(sar) as src, ReferenceImage.open(reference, src, bands) as image:
        rgb, usable = image.read(Window(0, 0, src.width, src.height))
    return rgb[:, usable].mean(1)


METHODS = {  # name: colorize options (None: the flat clear-pixel mean colour); with a reference the CLI's detail is 0
    "default": {"detail": 1.0},
    "smooth": {"detail": 0.0},
    "clear-pixel mean colour": None,
    "--reference --detail 1": {"detail": 1.0, "reference": True},
    "--reference": {"detail": 0.0, "reference": True},
    "--reference --fill": {"detail": 0.0, "reference": True, "fill": True},
    # Where the reference's date has a SAR scene of its own (Punjab: the S1 of 2020-06-07): fitted there.
    "--reference --reference-sar --detail 1": {"detail": 1.0, "reference": True, "reference_sar": True},
    "--reference --reference-sar": {"detail": 0.0, "reference": True, "reference_sar": True},
}


SELECTED: list[str] = []  # --methods
WITHOUT_REFERENCE = {1.0: "default", 0.0: "smooth"}  # the run whose confidence map is the model's own, by detail


def run_methods(model, sar: Path, reference: Path, out: Path, truth: np.ndarray, where: np.ndarray, bands=None,
                reference_sar: Path | None = None) -> dict:
    results, maps = {}, {}
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
            pred, maps[name], seconds = colorize(model, sar, out / f"{name.strip('-').replace(' ', '_')}.tif", **options)
        results[name] = {**scores(pred, truth, where), "seconds": round(seconds, 2)}
        de = results[name].pop("error_map")
        if name in maps:
            results[name].update(spearman=confidence_rank(maps[name], de, where), expected=float(maps[name][where].mean()))
            own = WITHOUT_REFERENCE.get(METHODS[name].get("detail"))
            if METHODS[name].get("reference") and own in maps:
                results[name].update(spearman_own=confidence_rank(maps[own], de, where), expected_own=float(maps[own][where].mean()))
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


def time_series(model, world: Path, out: Path) -> dict:
    """Per-scene fits against one shared fit over the two Punjab dates: their colour difference where the SAR kept
    its level, and each date's scores against its optical (June: the reference itself; September: August's L2A)."""
    root = world / PUNJAB
    folder = out / "series"
    folder.mkdir(exist_ok=True)
    scenes = {"2020-06-07": folder / f"{Path(PUNJAB_JUNE_SAR).parent.name}_VH.tif",
              "2020-09-03": folder / f"{Path(PUNJAB_SAR).parent.name}_VH.tif"}
    for (date, path), source in zip(scenes.items(), (PUNJAB_JUNE_SAR, PUNJAB_SAR)):
        path.write_bytes((root / source).read_bytes())
    with rasterio.open(scenes["2020-06-07"]) as a, rasterio.open(scenes["2020-09-03"]) as b:
        change = ndimage.uniform_filter(b.read(1).astype(np.float64) - a.read(1), 7)
        unchanged = np.abs(change) < UNCHANGED_DB
        truths = {}
        for date, folder_name, src in (("2020-06-07", PUNJAB_JUNE, a), ("2020-09-03", PUNJAB_AUGUST["L2A 2020-08-13"], b)):
            with ReferenceImage.open(root / folder_name, src) as image:
                rgb, usable = image.read(Window(0, 0, src.width, src.height))
            truths[date] = (np.moveaxis(rgb, 0, -1).astype(np.float64), usable)
    truth_de = deltaE_ciede2000(rgb2lab(truths["2020-06-07"][0]), rgb2lab(truths["2020-09-03"][0]))
    both = truths["2020-06-07"][1] & truths["2020-09-03"][1]
    kept = unchanged & both & (truth_de < UNCHANGED_DE00)  # the optical images agree there too
    options = ColorizeOptions(overwrite=True, detail=REFERENCE_DETAIL, reference=root / PUNJAB_JUNE)  # as the CLI colours
    together = shared_reference_fit(list(scenes.values()), model, options)  # as a folder input does
    nearest = shared_reference_fit([scenes["2020-06-07"]], model, options)  # as --reference-sar of the June scene does
    results = {"unchanged share": round(float(unchanged.mean()), 3), "kept share": round(float(kept.mean()), 3)}
    fits = {"a fit per scene": None, "one fit on both dates' places": together, "one fit on the June date alone": nearest}
    for name, fit in fits.items():
        outputs = {}
        for date, path in scenes.items():
            target = out / f"series_{date}_{list(fits).index(name)}.tif"
            colorize_file(path, target, model, ColorizeOptions(**{**options.__dict__, "reference_fit": fit}))
            outputs[date] = read_rgb(target)
        de = deltaE_ciede2000(rgb2lab(outputs["2020-06-07"]), rgb2lab(outputs["2020-09-03"]))
        row = {"de00 between dates, SAR unchanged": float(de[unchanged].mean()),
               "de00 between dates, SAR and optical unchanged": float(de[kept].mean()), "de00 between dates, all": float(de.mean())}
        for date, (truth, usable) in truths.items():
            row[f"psnr {date}"] = scores(outputs[date], truth, usable)["psnr"]
        results[name] = row
        logging.info("time series, %s: %s", name, {k: round(v, 2) for k, v in row.items()})
    results["the optical images themselves"] = {"de00 between dates, SAR unchanged": float(truth_de[unchanged & both].mean()),
                                                "de00 between dates, SAR and optical unchanged": float(truth_de[kept].mean()),
                                                "de00 between dates, all": float(truth_de[both].mean())}
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


def spearman_markdown(results: dict) -> str:
    """The confidence map per scene: its Spearman, and the CIEDE2000 it expects on average against the real mean; for
    --reference runs also the model's own map (the run without a reference at the same detail), in brackets."""
    methods = [m for m in METHODS if "spearman" in next(iter(results.values())).get(m, {})]
    lines = ["| scene | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]

    def cell(r):
        own = "spearman_own" in r
        return (f"{r['spearman']:.2f}" + (f" ({r['spearman_own']:.2f})" if own else "")
                + f"; {r['expected']:.1f}" + (f" ({r['expected_own']:.1f})" if own else "") + f" / {r['de00']:.1f}")

    rows = list(results.items())
    keys = ("spearman", "spearman_own", "expected", "expected_own", "de00")
    mean = {m: {k: float(np.mean([r[m][k] for _, r in rows])) for k in keys if k in rows[0][1][m]} for m in methods}
    for scene, r in rows + [("mean", mean)]:
        lines.append(f"| {scene} | " + " | ".join(cell(r[m]) for m in methods) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, default=SHARED / "s1s2-pairs")
    parser.add_argument("--world", type=Path, default=SHARED / "s1s2-world")
    parser.add_argument("--out", type=Path, default=None, help="folder for the references and outputs (default: a temporary one)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--only", choices=("val", "punjab", "series"), default=None)
    parser.add_argument("--methods", default=None, help="comma-separated names of METHODS to run (default: all)")
    args = parser.parse_args()
    SELECTED.extend(args.methods.split(",") if args.methods else [])
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("sarcolor").setLevel(logging.WARNING)
    logging.getLogger("sarcolor.reference.fit").setLevel(logging.INFO)
    logging.getLogger("sarcolor.reference.confidence").setLevel(logging.INFO)
    model = load_model()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        results = {}
        if args.only in (None, "val"):
            results["val"] = val_scenes(model, args.pairs, args.world, out)
            print("Val scenes, clouded pixels only: PSNR / SSIM / CIEDE2000\n" + markdown(results["val"]))
            print("\nConfidence map on the clouded pixels: Spearman; mean expected / real CIEDE2000 (the model's own map)\n"
                  + spearman_markdown(results["val"]))
        if args.only in (None, "punjab"):
            results["punjab"] = punjab(model, args.world, out)
            print("\nPunjab, SAR 2020-09-03, June reference, clear pixels of August\n" + markdown(results["punjab"]))
            print("\nConfidence map there: Spearman; mean expected / real CIEDE2000 (the model's own map)\n"
                  + spearman_markdown(results["punjab"]))
        if args.only == "series":
            results["series"] = time_series(model, args.world, out)
            rows = [(k, v) for k, v in results["series"].items() if isinstance(v, dict)]
            print(f"\nTime series, Punjab: SAR unchanged at {100 * results['series']['unchanged share']:.0f} % of the pixels, "
                  f"SAR and optical at {100 * results['series']['kept share']:.0f} %\n"
                  "| fit | " + " | ".join(rows[0][1]) + " |\n|---|" + "---|" * len(rows[0][1]))
            for name, row in rows:
                print(f"| {name} | " + " | ".join(f"{row[k]:.2f}" if k in row else "" for k in rows[0][1]) + " |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
