"""The colours of one scene fitted on its reference: the model's colour head refitted, by ridge regression in numpy,
on the features the model gives at the reference's clear pixels.

The model's own features say what kind of place each is; the reference says what colour that kind of place has
here. The fit is a change to the trained colour logits, linear in them and in the features at each place (so a 3x3
convolution like the trained head), chosen among candidates by the error on held-out tiles: none, a colour
correction of the trained colours, or a ridge on the features at several penalties. The model applies it while
streaming the scene as it always does: the change is fed to the graph's refittable head
(``OnnxModel.with_head_change``). The head's fixed blur is linear and per channel, so it commutes with the fit: the
features and the trained logits are fitted under the same blur (as ``sarcolor.ridge`` does with torch).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from rasterio.windows import Window
from scipy import ndimage

from sarcolor.errors import SarcolorError
from sarcolor.reference.image import ReferenceImage
from sarcolor.tiling import TilePlan

log = logging.getLogger(__name__)

MAX_TILES = 32  # tiles the fit reads at most (of the inference's own plan): a few seconds on a CPU
# Ridge penalties tried (times the number of rows, on standardised columns) on the change to the trained head: the
# largest keeps the trained colours nearly as they are, the smallest follows the reference closely.
ALPHAS = (0.001, 0.01, 0.1, 1.0, 10.0)
MIN_PLACES = 64  # clear places at the head's resolution a fit needs at the least


@dataclass
class HeadFit:
    """A change to the colour logits: ``trained @ mix + features @ weight + bias`` at the head's resolution, where
    ``trained`` are the trained head's logits (so ``mix`` is a colour correction of the model's own colours) and
    ``features`` what the head reads."""

    mix: np.ndarray  # (3, 3)
    weight: np.ndarray  # (C, 3)
    bias: np.ndarray  # (3,)
    form: str  # which candidate was chosen, for the log and the output's tags
    places: int  # clear places fitted on
    held_out_error: float  # root mean square RGB error (0..255) on held-out tiles' clear places

    def head_change(self, head: dict) -> tuple[np.ndarray, np.ndarray]:
        """What to add to the model's stacked head convolution (all heads, 3x3 kernels): the graph's ``head_weight``
        and ``head_bias``. The colour correction acts on all nine taps of the trained colour rows, the features'
        part on the centre tap."""
        trained_w = np.asarray(head["trained_weight"], np.float32)  # (3, C, 3, 3)
        trained_b = np.asarray(head["trained_bias"], np.float32)
        weight = np.zeros((head["heads"], *trained_w.shape[1:]), np.float32)
        bias = np.zeros(head["heads"], np.float32)
        weight[:3] = np.einsum("kj,kcyx->jcyx", self.mix, trained_w)
        weight[:3, :, 1, 1] += self.weight.T
        bias[:3] = trained_b @ self.mix + self.bias
        return weight, bias


def ridge_fit(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Least squares of y (M, K) on x (M, C) with the penalty ``alpha * M * |w|^2`` on standardised columns (as
    ``sarcolor.ridge.ridge_fit``, in numpy); returns (W, b) for the raw columns: y ~ x @ W + b."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    mean, std = x.mean(0), np.maximum(x.std(0, ddof=1), 1e-6)
    z = (x - mean) / std
    y_mean = y.mean(0)
    gram = z.T @ z + alpha * len(z) * np.eye(z.shape[1])
    w = np.linalg.solve(gram, z.T @ (y - y_mean)) / std[:, None]
    return w, y_mean - mean @ w


def saturated(rgb: np.ndarray, chroma_gain: float) -> np.ndarray:
    """``rgb`` (..., 3) pushed from its grey by ``chroma_gain``, as the model saturates its colours."""
    grey = rgb.mean(-1, keepdims=True)
    return np.clip(grey + chroma_gain * (rgb - grey), 0, 1)


def colour_logits(rgb: np.ndarray, chroma_gain: float) -> np.ndarray:
    """The colour head's target for ``rgb`` (..., 3): logits whose sigmoid, saturated by the model, is ``rgb``."""
    rgb = np.clip(rgb, 1e-3, 1 - 1e-3)
    grey = rgb.mean(-1, keepdims=True)
    rgb = np.clip(grey + (rgb - grey) / chroma_gain, 0.02, 0.98)
    return np.log(rgb / (1 - rgb))


def fit_tiles(plan: TilePlan, clear_map: np.ndarray, shape: tuple[int, int], limit: int = MAX_TILES) -> list[Window]:
    """At most ``limit`` of the plan's tiles with clear reference pixels, spread over the scene (``clear_map``: the
    clear pixels of the whole grid, decimated)."""
    height, width = shape
    fy, fx = clear_map.shape[0] / height, clear_map.shape[1] / width
    tiles = []
    for row in plan.rows.offsets:
        for col in plan.cols.offsets:
            part = clear_map[max(0, int(row * fy)) : max(1, int((row + plan.rows.tile) * fy)),
                             max(0, int(col * fx)) : max(1, int((col + plan.cols.tile) * fx))]
            if part.size and part.mean() > 0.02:
                tiles.append(Window(col, row, plan.cols.tile, plan.rows.tile))
    if len(tiles) > limit:
        tiles = [tiles[i] for i in np.linspace(0, len(tiles) - 1, limit).round().astype(int)]
    return tiles


def block_mean(a: np.ndarray, f: int) -> np.ndarray:
    """Mean over f x f blocks of the last two axes."""
    *lead, h, w = a.shape
    return a.reshape(*lead, h // f, f, w // f, f).mean((-3, -1))


def trained_logits(features: np.ndarray, head: dict) -> np.ndarray:
    """The trained colour head (3x3, edges replicated) on ``features`` (N, C, h, w): its logits (N, 3, h, w)."""
    weight = np.asarray(head["trained_weight"], np.float32)
    padded = np.pad(features, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    h, w = features.shape[-2:]
    out = np.zeros((len(features), 3, h, w), np.float32) + np.asarray(head["trained_bias"], np.float32)[:, None, None]
    for dy in range(3):
        for dx in range(3):
            out += np.einsum("nchw,kc->nkhw", padded[:, :, dy : dy + h, dx : dx + w], weight[:, :, dy, dx], optimize=True)
    return out


def clear_places(model, read_sar, reference: ReferenceImage, tiles: list[Window], overlap: int, batch_size: int = 2):
    """The blurred head features (M, C), the trained head's blurred logits (M, 3) and the reference RGB (M, 3) of
    the places (at the head's resolution) whose pixels are all clear and valid, away from their tile's edges; and
    each place's tile index (M,)."""
    head = model.head
    features, logits, colours, tile_index = [], [], [], []
    for start in range(0, len(tiles), batch_size):
        batch = tiles[start : start + batch_size]
        reads = [read_sar(window) for window in batch]
        feats = model.features(np.stack([sar for sar, _ in reads])[:, None])
        f = batch[0].height // feats.shape[-2]
        sigma = (0, 0, head["smoothing"] * 4 / f, head["smoothing"] * 4 / f)  # the head's blur is at 1/4 resolution
        trained = ndimage.gaussian_filter(trained_logits(feats, head), sigma=sigma, mode="nearest")
        feats = ndimage.gaussian_filter(feats, sigma=sigma, mode="nearest")
        edge = -(-overlap // 2 // f)
        for i, (window, (_, sar_valid)) in enumerate(zip(batch, reads)):
            rgb, usable = reference.read(window)
            places = block_mean((usable & sar_valid).astype(np.float32), f) > 0.999
            if edge:
                places[:edge], places[-edge:], places[:, :edge], places[:, -edge:] = False, False, False, False
            features.append(feats[i][:, places].T)
            logits.append(trained[i][:, places].T)
            colours.append(block_mean(rgb, f)[:, places].T)
            tile_index.append(np.full(places.sum(), start + i))
    return tuple(np.concatenate(a) for a in (features, logits, colours, tile_index))


def fit_head(model, read_sar, reference: ReferenceImage, plan: TilePlan, overlap: int) -> HeadFit:
    """The colour head fitted on ``reference``'s clear places in up to ``MAX_TILES`` of the scene's tiles, the penalty
    chosen on held-out tiles (or held-out blocks of a single tile)."""
    if getattr(model, "head", None) is None:
        raise SarcolorError("this model cannot take --reference: export it again with `sarcolor export` (the bundled model can)")
    tiles = fit_tiles(plan, reference.clear_map, reference.shape)
    x, trained, rgb, tile_index = clear_places(model, read_sar, reference, tiles, overlap)
    if len(x) < MIN_PLACES:
        raise SarcolorError(
            f"the reference {reference.path.name} has too few clear places over the SAR scene to fit colours on "
            f"({len(x)} blocks of clear pixels)"
        )
    gain = model.head["chroma_gain"]
    y = colour_logits(rgb, gain) - trained  # the change the trained head needs
    folds = tile_index % 2 if len(np.unique(tile_index)) > 1 else single_tile_folds(len(x))
    candidates = {"trained colours kept": (None, 0.0), "colour correction": (trained, 0.001),
                  **{f"features, ridge alpha {a:g}": (np.hstack([trained, x]), a) for a in ALPHAS}}
    errors = {name: held_out_error(design, y, trained, rgb, folds, alpha, gain) for name, (design, alpha) in candidates.items()}
    log.debug("held-out RMS errors: %s", ", ".join(f"{name} {error:.2f}" for name, error in errors.items()))
    form = min(errors, key=errors.get)
    design, alpha = candidates[form]
    channels = x.shape[1]
    mix, weight, bias = np.zeros((3, 3)), np.zeros((channels, 3)), np.zeros(3)
    if design is not None:
        w, bias = ridge_fit(design, y, alpha)
        mix[:], weight[: w.shape[0] - 3] = w[:3], w[3:]
    log.info("reference colours fitted on %d clear places of %d tiles: %s (held-out error %.1f levels; the model's "
             "own %.1f)", len(x), len(tiles), form, errors[form], errors["trained colours kept"])
    return HeadFit(mix.astype(np.float32), weight.astype(np.float32), bias.astype(np.float32), form, len(x), errors[form])


def single_tile_folds(places: int, bands: int = 4) -> np.ndarray:
    """Two folds of one tile's places (in row order): alternate bands of rows, so each fold spans the tile."""
    return (np.arange(places) * bands // places) % 2


def held_out_error(design, y, trained, rgb, folds, alpha: float, chroma_gain: float) -> float:
    """Root mean square RGB error (0..255) of ridge fits of the change ``y`` to the ``trained`` logits on ``design``
    (None: no change) on one fold predicting the other, both ways."""
    errors = []
    for fold in np.unique(folds):
        inside, outside = folds != fold, folds == fold
        if inside.sum() < MIN_PLACES or not outside.any():
            continue
        change = 0.0
        if design is not None:
            w, b = ridge_fit(design[inside], y[inside], alpha)
            change = design[outside] @ w + b
        predicted = saturated(1 / (1 + np.exp(-(trained[outside] + change))), chroma_gain)
        errors.append(((predicted - rgb[outside]) ** 2).mean())
    return float(np.sqrt(np.mean(errors)) * 255) if errors else float("inf")
