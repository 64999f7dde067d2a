"""Quality evaluation on a split of a pairs folder, for a model and the simple baselines beside it."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from sarcolor.data import Pair, load_split
from sarcolor.errors import SarcolorError
from sarcolor.metrics import METRICS, PERCEPTUAL_LABELS, all_metrics
from sarcolor.perceptual import frechet_distance
from sarcolor.infer import predict_raster

log = logging.getLogger(__name__)

Predictor = Callable[[Pair], np.ndarray]  # pair -> (C, H, W) float, RGB in [0, 1] first (C = 4 with an error channel)


def mean_colour_baseline(train: list[Pair]) -> Predictor:
    """The trivial baseline: the mean training colour everywhere."""
    mean = np.mean([p.optical.reshape(3, -1).mean(1) for p in train], axis=0) / 255.0

    def predict(pair: Pair) -> np.ndarray:
        return np.broadcast_to(mean[:, None, None], (3, *pair.sar.shape)).astype(np.float32)

    return predict


def lookup_table_baseline(train: list[Pair]) -> Predictor:
    """Per SAR grey level, the mean training RGB seen at that level (a 256-entry lookup table)."""
    sums = np.zeros((256, 3))
    counts = np.zeros(256)
    for p in train:
        flat = p.sar.ravel()
        counts += np.bincount(flat, minlength=256)
        for c in range(3):
            sums[:, c] += np.bincount(flat, weights=p.optical[c].ravel().astype(np.float64), minlength=256)
    overall = sums.sum(0) / counts.sum()
    table = np.where(counts[:, None] > 0, sums / np.maximum(counts[:, None], 1), overall) / 255.0

    def predict(pair: Pair) -> np.ndarray:
        return np.moveaxis(table[pair.sar], -1, 0).astype(np.float32)

    return predict


def model_predictor(model, tile: int = 512, overlap: int = 32) -> Predictor:
    """A model's outputs for a pair (RGB, and the expected error where the model has it), from the pair's SAR
    file through the same read and scaling as ``sarcolor colorize``."""
    # A pairs folder's SAR is in the training convention by definition (uint8, amplitude / the scene's
    # 99 % quantile): read as such, not guessed once per scene.
    return lambda pair: predict_raster(model, pair.sar_path, tile, overlap, input_scale="normalized")


PERCEPTUAL_METRICS = tuple(PERCEPTUAL_LABELS)  # vgg16 per image (mean over images), fd_lite0 per set


@dataclass
class Evaluation:
    split: str
    methods: list[str]
    rows: list[dict] = field(default_factory=list)  # one per (method, image)
    set_metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # method -> metrics of the whole set
    # The model's confidence map against its actual errors (sarcolor.confidence): spearman, calibration, reliability
    confidence: dict | None = None

    @property
    def metrics(self) -> list[str]:
        """The metrics this evaluation has: METRICS, and the perceptual ones when they were computed."""
        extra = [m for m in PERCEPTUAL_METRICS if any(m in r for r in self.rows) or any(m in s for s in self.set_metrics.values())]
        return [*METRICS, *extra]

    def means(self) -> dict[str, dict[str, float]]:
        means = {}
        for method in self.methods:
            rows = [r for r in self.rows if r["method"] == method]
            means[method] = {m: float(np.mean([r[m] for r in rows])) for m in self.metrics if m in rows[0]}
            means[method].update(self.set_metrics.get(method, {}))
        return means


def evaluate(
    predictors: dict[str, Predictor],
    pairs: list[Pair],
    split: str,
    on_image_done: Callable[[], None] | None = None,
    keep_predictions: dict[str, dict[str, np.ndarray]] | None = None,
    perceptual=None,
) -> Evaluation:
    """Every predictor on every pair; optionally keeps predictions (method -> id -> uint8 RGB) for pictures.

    ``perceptual`` (a sarcolor.perceptual.PerceptualMetrics) adds the VGG16 distance per image and
    FD-Lite0 per method, against the real images of the same pairs.
    """
    result = Evaluation(split, list(predictors))
    embeddings: dict[str, list[np.ndarray]] = {}
    real_key = object()  # the real images' embeddings, under a key no method name can take
    for pair in pairs:
        real = pair.optical.astype(np.float32) / 255.0
        if perceptual is not None:
            embeddings.setdefault(real_key, []).append(perceptual.embed(real))
        for method, predict in predictors.items():
            pred = np.clip(predict(pair)[:3], 0.0, 1.0)
            # Score what the user gets: the 8-bit image that is written out.
            pred = np.rint(pred * 255.0) / 255.0
            row = {"method": method, "id": pair.id, **all_metrics(pred, real)}
            if perceptual is not None:
                row["vgg16"] = perceptual.vgg_distance(pred, real)
                embeddings.setdefault(method, []).append(perceptual.embed(pred))
            result.rows.append(row)
            if keep_predictions is not None:
                keep_predictions.setdefault(method, {})[pair.id] = (pred * 255).round().astype(np.uint8)
        if on_image_done:
            on_image_done()
    if perceptual is not None and pairs:
        reference = np.concatenate(embeddings[real_key])
        for method in predictors:
            result.set_metrics[method] = {"fd_lite0": frechet_distance(np.concatenate(embeddings[method]), reference)}
    return result


def default_predictors(
    model, data_root: str | Path, baselines: bool, tile: int, overlap: int, others: dict | None = None,
    name: str = "sarcolor",
) -> dict[str, Predictor]:
    """Baselines (optional), then other named models (e.g. pix2pix), then the model under test, as ``name``."""
    predictors: dict[str, Predictor] = {}
    if baselines:
        train = load_split(data_root, "train")
        predictors["mean colour"] = mean_colour_baseline(train)
        predictors["lookup table"] = lookup_table_baseline(train)
    for other_name, other in (others or {}).items():
        predictors[other_name] = model_predictor(other, tile, overlap)
    if name in predictors:
        raise SarcolorError(f"--name {name!r} is already a row of the table: choose another")
    predictors[name] = model_predictor(model, tile, overlap)
    return predictors
