"""Issue 25: on held-out pairs of a region, the shipped model, a ridge regression on the frozen encoder's features
fitted on the region's pairs, and a model `sarcolor finetune` adapted on the same pairs, in one table; and the
confidence map's rank correlation with the actual errors before (shipped) and after (adapted) adaptation.

The ridge baseline (sarcolor.ridge.RidgeBaseline) reads what the bundled model's trainable head reads (the
standardised EfficientNet-Lite0 taps and speckle statistics of default.pt), is fitted on the train split of the
region's pairs folder (crops as finetune makes them) and has its penalty picked on that folder's val split.

    python experiments/ridge_baseline.py --adapt adapt --heldout heldout --model adapted.onnx [--out docs/your_region]
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from sarcolor.backends import TorchModel, load_model
from sarcolor.confidence import ErrorBlocks, confidence_summary
from sarcolor.data import load_split, mirror_pad
from sarcolor.evaluate import evaluate, model_predictor
from sarcolor.finetune import bundled_checkpoint, crop_and_pad
from sarcolor.perceptual import PerceptualMetrics, perceptual_unavailable
from sarcolor.report import markdown_table, write_report
from sarcolor.ridge import RidgeBaseline

SHIPPED, RIDGE, ADAPTED = "shipped default", "ridge on frozen Lite0 features", "adapted"


def ridge_baseline(adapt: Path) -> RidgeBaseline:
    """The ridge baseline fitted on ``adapt``'s train split (crops as finetune cuts them), penalty from its val split."""
    train, val = load_split(adapt, "train"), load_split(adapt, "val")
    crop, pad = crop_and_pad(min(min(p.sar.shape) for p in train + val))
    return RidgeBaseline(TorchModel(bundled_checkpoint(), "cpu").generator, [mirror_pad(p, pad) for p in train], val, crop)


def provenance(args) -> list[str]:
    return [
        "## How this was made",
        "",
        "```bash",
        "python scripts/bigearthnet_rasters.py DIR",
        f"sarcolor pairs DIR/adapt/s1 DIR/adapt/s2 -o {args.adapt.name} --tile 120",
        f"sarcolor pairs DIR/heldout/s1 DIR/heldout/s2 -o {args.heldout.name} --tile 120 --val-fraction 1",
        f"sarcolor finetune --data {args.adapt.name} -o {args.model.name} --minutes 5",
        f"python experiments/ridge_baseline.py --adapt {args.adapt.name} --heldout {args.heldout.name} --model {args.model.name} --out REPORT",
        "```",
        "",
    ]


def confidence_lines(before: ErrorBlocks, after: ErrorBlocks, adapted) -> list[str]:
    state = ("calibrated on the region's val pairs" if adapted.error_calibration
             else f"left uncalibrated by finetune: {adapted.error_uncalibrated}")
    return [
        "## Confidence map before and after adaptation",
        "",
        "| model | Spearman, expected vs actual CIEDE2000 (32x32 px blocks) | blocks |",
        "|---|---|---|",
        f"| {SHIPPED} (home calibration) | {before.spearman():.2f} | {before.actual.size} |",
        f"| {ADAPTED} ({state}) | {after.spearman():.2f} | {after.actual.size} |",
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapt", type=Path, required=True, help="the region's pairs folder the model was adapted on")
    parser.add_argument("--heldout", type=Path, required=True, help="pairs folder of held-out patches")
    parser.add_argument("--split", default="val", help="split of --heldout to score")
    parser.add_argument("--model", type=Path, required=True, help="the adapted model (.onnx)")
    parser.add_argument("--out", type=Path, help="report folder (report.md, metrics, strips)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    shipped, adapted = load_model("default", "cpu"), load_model(args.model, "cpu")
    blocks = {SHIPPED: ErrorBlocks(), ADAPTED: ErrorBlocks()}
    predictors = {
        SHIPPED: blocks[SHIPPED].recording(model_predictor(shipped)),
        RIDGE: ridge_baseline(args.adapt),
        ADAPTED: blocks[ADAPTED].recording(model_predictor(adapted)),
    }
    reason = perceptual_unavailable()
    pairs = load_split(args.heldout, args.split)
    predictions: dict | None = {} if args.out else None
    result = evaluate(predictors, pairs, args.split, keep_predictions=predictions,
                      perceptual=None if reason else PerceptualMetrics())
    result.confidence = confidence_summary(adapted, blocks[ADAPTED])
    print(markdown_table(result))
    sections = confidence_lines(blocks[SHIPPED], blocks[ADAPTED], adapted)
    print("\n".join(sections))
    if args.out:
        title = f"Adapting to a region: {args.split} split of {args.heldout.name}, adapted on {args.adapt.name}"
        write_report(result, pairs, predictions, args.out, title, sections + provenance(args))
    means = result.means()
    print(f"adapted - shipped: {means[ADAPTED]['psnr'] - means[SHIPPED]['psnr']:+.2f} dB; "
          f"adapted - ridge: {means[ADAPTED]['psnr'] - means[RIDGE]['psnr']:+.2f} dB; "
          f"ridge alpha {np.format_float_positional(predictors[RIDGE].alpha)}")


if __name__ == "__main__":
    main()
