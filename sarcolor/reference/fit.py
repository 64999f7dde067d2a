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
from typing import NamedTuple

import numpy as np
from rasterio.windows import Window
from scipy import ndimage

from sarcolor.errors import SarcolorError
from sarcolor.reference.confidence import ErrorFit, fit_error
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
    error: ErrorFit | None = None  # the error head's change and calibration on the reference (None: the model's own)
    scenes: int = 1  # SAR scenes fitted together (a time series sharing one reference: one fit for all its dates)

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
        if self.error is not None:  # the error head is the stack's last
            weight[-1, :, 1, 1] += self.error.weight
            bias[-1] += self.error.bias
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


class Places(NamedTuple):
    """The clear places (at the head's resolution) of the fit's tiles."""

    features: np.ndarray  # (M, C) the head's input, blurred as the head blurs
    logits: np.ndarray  # (M, 3) the trained colour head's, blurred
    colours: np.ndarray  # (M, 3) the reference's mean RGB
    tile_index: np.ndarray  # (M,)
    error: np.ndarray | None  # (M,) the model's expected error (None: no error head)
    pixels: np.ndarray | None  # (M, P, 3) uint8: some of the model's output pixels in the place
    reference_pixels: np.ndarray | None  # (M, P, 3) uint8: the reference's at the same pixels


def place_pixels(rgb: np.ndarray, f: int) -> np.ndarray:
    """(h, w, P, 3) uint8: of each f x f place of ``rgb`` (3, H, W) in [0, 1], a grid of P = 16 of its pixels."""
    step = max(1, f // 4)
    h, w = rgb.shape[1] // f, rgb.shape[2] // f
    blocks = rgb[:, : h * f, : w * f].reshape(3, h, f, w, f)[:, :, step // 2 :: step, :, step // 2 :: step]
    return np.rint(np.clip(blocks.transpose(1, 3, 2, 4, 0), 0, 1) * 255).astype(np.uint8).reshape(h, w, -1, 3)


def clear_places(model, read_sar, reference: ReferenceImage, tiles: list[Window], overlap: int, batch_size: int = 2) -> Places:
    """The ``Places`` whose pixels are all clear and valid, away from their tile's edges; with the model's outputs
    there where it has an error head (for the confidence map's calibration)."""
    head = model.head
    outputs_too = getattr(model, "has_error", False)
    features, logits, colours, tile_index, error, pixels, reference_pixels = [], [], [], [], [], [], []
    for start in range(0, len(tiles), batch_size):
        batch = tiles[start : start + batch_size]
        reads = [read_sar(window) for window in batch]
        sar = np.stack([sar for sar, _ in reads])[:, None]
        feats, outputs = model.features_and_outputs(sar) if outputs_too else (model.features(sar), None)
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
            if outputs is not None:
                error.append(block_mean(outputs[i, 3], f)[places])
                pixels.append(place_pixels(outputs[i, :3], f)[places])
                reference_pixels.append(place_pixels(rgb, f)[places])
    extra = [np.concatenate(a) if outputs_too else None for a in (error, pixels, reference_pixels)]
    return Places(*(np.concatenate(a) for a in (features, logits, colours, tile_index)), *extra)


def check_refittable(model) -> None:
    if getattr(model, "head", None) is None:
        raise SarcolorError("this model cannot take --reference: export it again with `sarcolor export` (the bundled model can)")


def scene_places(model, read_sar, reference: ReferenceImage, plan: TilePlan, overlap: int, limit: int = MAX_TILES) -> Places:
    """The clear places of ``reference`` in up to ``limit`` of the scene's tiles."""
    check_refittable(model)
    return clear_places(model, read_sar, reference, fit_tiles(plan, reference.clear_map, reference.shape, limit), overlap)


def joined_places(parts: list[Places]) -> Places:
    """The places of several scenes as one set, each tile keeping an index of its own."""
    offsets = np.cumsum([0] + [int(p.tile_index.max()) + 1 if len(p.tile_index) else 0 for p in parts[:-1]])
    fields = []
    for i, name in enumerate(Places._fields):
        values = [p[i] + offset if name == "tile_index" else p[i] for p, offset in zip(parts, offsets)]
        fields.append(None if any(v is None for v in values) else np.concatenate(values))
    return Places(*fields)


def fit_head(model, read_sar, reference: ReferenceImage, plan: TilePlan, overlap: int) -> HeadFit:
    """The colour head fitted on ``reference``'s clear places in up to ``MAX_TILES`` of the scene's tiles, the penalty
    chosen on held-out tiles (or held-out blocks of a single tile)."""
    return fit_places(model, scene_places(model, read_sar, reference, plan, overlap), reference.path.name)


def fit_places(model, places: Places, name: str, scenes: int = 1) -> HeadFit:
    """The colour head fitted on the clear ``places`` of the reference ``name`` (in ``scenes`` SAR scenes), the
    penalty chosen on held-out tiles (or held-out blocks of a single tile)."""
    check_refittable(model)
    x, trained, rgb, tile_index = places[:4]
    if len(x) < MIN_PLACES:
        raise SarcolorError(
            f"the reference {name} has too few clear places over the SAR scene to fit colours on "
            f"({len(x)} blocks of clear pixels)"
        )
    gain = model.head["chroma_gain"]
    y = colour_logits(rgb, gain) - trained  # the change the trained head needs
    folds = tile_index % 2 if len(np.unique(tile_index)) > 1 else single_tile_folds(len(x))
    candidates = {"trained colours kept": (None, 0.0), "colour correction": (trained, 0.001),
                  **{f"features, ridge alpha {a:g}": (np.hstack([trained, x]), a) for a in ALPHAS}}
    changes = {name: held_out_change(design, y, folds, alpha) for name, (design, alpha) in candidates.items()}
    errors = {name: held_out_error(changes[name], trained, rgb, folds, gain) for name in candidates}
    log.debug("held-out RMS errors: %s", ", ".join(f"{name} {error:.2f}" for name, error in errors.items()))
    form = min(errors, key=errors.get)
    design, alpha = candidates[form]
    channels = x.shape[1]
    mix, weight, bias = np.zeros((3, 3)), np.zeros((channels, 3)), np.zeros(3)
    if design is not None:
        w, bias = ridge_fit(design, y, alpha)
        mix[:], weight[: w.shape[0] - 3] = w[:3], w[3:]
    log.info("reference colours fitted on %d clear places of %d tiles%s: %s (held-out error %.1f levels; the model's "
             "own %.1f)", len(x), len(np.unique(tile_index)), f" of {scenes} scenes" if scenes > 1 else "", form,
             errors[form], errors["trained colours kept"])
    error_fit = None
    if places.error is not None:
        shift = colour(trained + changes[form], gain) - colour(trained, gain)  # NaN where no fold predicted it
        error_fit = fit_error(x, places.error, places.pixels, places.reference_pixels, shift, folds, ridge_fit)
    return HeadFit(mix.astype(np.float32), weight.astype(np.float32), bias.astype(np.float32), form, len(x), errors[form],
                   error_fit, scenes)


def single_tile_folds(places: int, bands: int = 4) -> np.ndarray:
    """Two folds of one tile's places (in row order): alternate bands of rows, so each fold spans the tile."""
    return (np.arange(places) * bands // places) % 2


def colour(logits: np.ndarray, chroma_gain: float) -> np.ndarray:
    """RGB in [0, 1] of colour logits, saturated as the model saturates."""
    return saturated(1 / (1 + np.exp(-logits)), chroma_gain)


def held_out_change(design, y, folds, alpha: float) -> np.ndarray:
    """The change (M, 3) of each place's logits by a ridge fit of ``y`` on ``design`` (None: no change) on the other
    fold; NaN where the other fold has too few places to fit on."""
    change = np.full(y.shape, np.nan)
    for fold in np.unique(folds):
        inside, outside = folds != fold, folds == fold
        if inside.sum() < MIN_PLACES:
            continue
        if design is None:
            change[outside] = 0.0
        else:
            w, b = ridge_fit(design[inside], y[inside], alpha)
            change[outside] = design[outside] @ w + b
    return change


def held_out_error(change, trained, rgb, folds, chroma_gain: float) -> float:
    """Root mean square RGB error (0..255) of the held-out ``change`` to the ``trained`` logits, per fold, both ways."""
    errors = []
    for fold in np.unique(folds):
        outside = (folds == fold) & np.isfinite(change).all(1)
        if outside.any():
            predicted = colour(trained[outside] + change[outside], chroma_gain)
            errors.append(((predicted - rgb[outside]) ** 2).mean())
    return float(np.sqrt(np.mean(errors)) * 255) if errors else float("inf")
