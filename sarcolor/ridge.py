"""Closed-form (ridge) fits on LiteColorNet's features, for adapting it to a new region (train extra).

Three uses, one solver:
- the baseline a fine-tune must beat: RGB from the frozen encoder's features (the standardised Lite0 taps
  and the speckle statistics, what the trainable head reads) by ridge regression (``RidgeBaseline``);
- the fine-tune's start: the colour head refitted on the model's own head features, the penalty chosen on
  the val split, before any gradient step (``closed_form_start``);
- the confidence map after adaptation: the error head refitted on errors made out of fold (``fit_error_head``).

Everything runs at the heads' 1/4 resolution. The heads' fixed blur and a 3x3 convolution whose only
non-zero tap is the centre commute, so a head is fitted on blurred features and written as that centre tap.
"""
from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from sarcolor.data import MARGIN, Pair, real_pixels

log = logging.getLogger(__name__)

# Penalties tried (times the number of rows, on standardised columns); the val split picks one.
ALPHAS = (0.1, 1.0, 10.0)
# Out-of-fold errors for the error head: folds of whole pairs, at most this many.
ERROR_FOLDS = 5
ERROR_ALPHA = 1.0  # 0.1 to 100 ranked the BigEarthNet held-out errors within 0.1 of each other


def ridge_fit(x: torch.Tensor, y: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Least squares of y (M, K) on x (M, C) with the penalty ``alpha * M * |w|^2`` on standardised columns;
    returns (W, b) for the raw columns: y ~ x @ W + b. Solved in float64."""
    x, y = x.double(), y.double()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    z = (x - mean) / std
    y_mean = y.mean(0)
    gram = z.T @ z + alpha * len(z) * torch.eye(z.shape[1], dtype=z.dtype, device=z.device)
    w = torch.linalg.solve(gram, z.T @ (y - y_mean)) / std[:, None]
    return w.float(), (y_mean - mean @ w).float()


def rows(t: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N*H*W, C): one row per place."""
    return t.permute(0, 2, 3, 1).reshape(-1, t.shape[1])


def unrows(r: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The inverse of ``rows`` for places shaped like ``like`` (N, ., H, W)."""
    n, _, h, w = like.shape
    return r.reshape(n, h, w, -1).permute(0, 3, 1, 2)


def quarter(t: torch.Tensor) -> torch.Tensor:
    """Mean over 4x4 blocks: the heads' resolution."""
    return F.avg_pool2d(t, 4)


def head_blur(model, x: torch.Tensor) -> torch.Tensor:
    """``x`` (N, C, H, W) under the fixed blur the model applies to its heads' outputs (none if it has none)."""
    blur = model.smoothing
    if not hasattr(blur, "kernel_x"):
        return x
    r, c = blur.radius, x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), blur.kernel_x[:1].expand(c, -1, -1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), blur.kernel_y[:1].expand(c, -1, -1, -1), groups=c)


@torch.no_grad()
def head_features(model, sar: torch.Tensor) -> torch.Tensor:
    """What the heads read (N, width, H/4, W/4), brought to 1/4 resolution and blurred as their outputs are."""
    return head_blur(model, model.to_quarter(model.features(sar)))


@torch.no_grad()
def encoder_features(model, sar: torch.Tensor) -> torch.Tensor:
    """The frozen inputs of the trainable head (N, C, H/4, W/4): the standardised speckle statistics and Lite0 taps."""
    context = model.context_features(sar)
    size = context.shape[-2:]
    taps = [F.interpolate(t, size=size, mode="bilinear", align_corners=False) for t in model._taps(sar)]
    return torch.cat([context, *taps], 1)


def colour_logits(model, optical: torch.Tensor) -> torch.Tensor:
    """The colour head's target (N, 3, H/4, W/4): logits whose sigmoid, saturated by the model, is the 1/4-res optical."""
    rgb = quarter(optical).clamp(1e-3, 1 - 1e-3)
    grey = rgb.mean(1, keepdim=True)
    rgb = (grey + (rgb - grey) / model.chroma_gain).clamp(0.02, 0.98)
    return torch.log(rgb / (1 - rgb))


def set_centre_tap(conv: torch.nn.Conv2d, w: torch.Tensor, b: torch.Tensor) -> None:
    """A convolution whose centre tap is the linear map (C_in, C_out) ``w`` and bias ``b``, other taps zero."""
    with torch.no_grad():
        weight = torch.zeros_like(conv.weight)
        weight[:, :, conv.kernel_size[0] // 2, conv.kernel_size[1] // 2] = w.T
        conv.weight.copy_(weight)
        conv.bias.copy_(b)


@dataclass
class Crops:
    """A region's crops for the closed-form fits, each under one of the flips and rotations."""

    sar: torch.Tensor  # (N, 1, S, S) in [0, 1]
    optical: torch.Tensor  # (N, 3, S, S) in [0, 1]
    real: torch.Tensor  # (N, 1, S/4, S/4) bool: the 1/4-res places whose pixels are all real (no mirrored margin)
    pair: np.ndarray  # (N,) the index of each crop's pair

    def to(self, device: torch.device) -> Crops:
        return Crops(self.sar.to(device), self.optical.to(device), self.real.to(device), self.pair)

    def fit(self, features: torch.Tensor, target: torch.Tensor, alpha: float, crops=slice(None)):
        """``ridge_fit`` of the target on the features (N, C, S/4, S/4) at the real places of ``crops``."""
        real = rows(self.real[crops]).squeeze(1)
        return ridge_fit(rows(features[crops])[real], rows(target[crops])[real], alpha)


def pair_crops(pairs: list[Pair], size: int, limit: int = 64) -> Crops:
    """Centre crops of ``size`` px under the flips and rotations, at most ``limit`` in all (fewer flips for many
    pairs, then an even subset of pairs)."""
    transforms = max(1, min(8, limit // max(1, len(pairs))))
    chosen = np.unique(np.linspace(0, len(pairs) - 1, min(len(pairs), limit // transforms)).round().astype(int))
    sars, opticals, reals, index = [], [], [], []
    for i in chosen:
        pair = pairs[i]
        h, w = pair.sar.shape
        y, x = (h - size) // 2, (w - size) // 2
        sar, optical = pair.sar[None, y : y + size, x : x + size], pair.optical[:, y : y + size, x : x + size]
        real = real_pixels(pair, y, x, size)
        for k in range(transforms):
            sars.append(dihedral(sar, k))
            opticals.append(dihedral(optical, k))
            reals.append(dihedral(real, k))
            index.append(i)

    def tensor(arrays: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack(arrays).astype(np.float32))

    return Crops(tensor(sars) / 255.0, tensor(opticals) / 255.0, quarter(tensor(reals)) > 0.999, np.array(index))


def dihedral(a: np.ndarray, k: int) -> np.ndarray:
    """The k-th (0..7) rotation/flip of a (..., H, W) array."""
    a = np.rot90(a, k % 4, axes=(-2, -1))
    return np.ascontiguousarray(a[..., ::-1] if k >= 4 else a)


def closed_form_start(model, crops: Crops, val_score: Callable[[object], float], alphas: tuple[float, ...] = ALPHAS) -> str:
    """Start a fine-tune from the better of: the model as it is, and the model with its input standardisation
    refitted on the region's ``crops`` and its colour head refitted on them by ridge, for each penalty in
    ``alphas``. Better: lower ``val_score(model)``. Returns what was chosen, for the log.

    The refitted standardisation is what lets a ridge head transfer: on the BigEarthNet pairs the same ridge head
    on the home standardisation scored 0.7 dB lower on held-out patches (experiments/README.md)."""
    start = copy.deepcopy(model.state_dict())
    best = (val_score(model), "the starting weights", start)
    model.fit_input_stats(crops.sar)
    features, target = head_features(model, crops.sar), colour_logits(model, crops.optical)
    for alpha in alphas:
        set_centre_tap(model.colour_head, *crops.fit(features, target, alpha))
        score = val_score(model)
        if score < best[0]:
            best = (score, f"input standardisation and colour head refitted (ridge alpha {alpha:g})",
                    copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[2])
    return f"{best[1]}: val squared error {best[0]:.5f}"


@torch.no_grad()
def out_of_fold_errors(model, crops: Crops, features: torch.Tensor, folds: np.ndarray) -> torch.Tensor:
    """Mean absolute RGB error per 1/4-res place (N,1,S/4,S/4) of a ridge colour head fitted on the other folds' crops
    (``features``: their head features)."""
    target = colour_logits(model, crops.optical)
    errors = torch.zeros_like(features[:, :1])
    for fold in np.unique(folds):
        inside, outside = torch.from_numpy(folds != fold), torch.from_numpy(folds == fold)
        w, b = crops.fit(features, target, ERROR_ALPHA, inside)
        logits = unrows(rows(features[outside]) @ w + b, features[outside])
        rgb = model.saturate(torch.sigmoid(F.interpolate(logits, scale_factor=4.0, mode="bilinear", align_corners=False)))
        errors[outside] = quarter((rgb - crops.optical[outside]).abs().mean(1, keepdim=True))
    return errors


def fit_error_head(model, crops: Crops, reference=None) -> bool:
    """Refit the error head on the region's crops so that it predicts the errors a colour head makes on pairs it
    did not see: out-of-fold errors, folds of whole pairs, of ridge colour heads on the features of ``reference``
    (default: ``model``), regressed on ``model``'s features. The reference should be a model not trained on these
    pairs: features fitted to them make even out-of-fold errors small where they were memorised, and such errors
    rank held-out errors badly (experiments/README.md). False (head kept) with a single pair: no fold to leave out."""
    folds = crops.pair % min(ERROR_FOLDS, len(np.unique(crops.pair)))
    if len(np.unique(folds)) < 2:
        return False
    reference = reference or model
    errors = out_of_fold_errors(reference, crops, head_features(reference, crops.sar), folds).clamp_min(1e-3)
    target = torch.log(torch.expm1(errors))  # the head's output goes through softplus
    set_centre_tap(model.error_head, *crops.fit(head_features(model, crops.sar), target, ERROR_ALPHA))
    return True


class RidgeBaseline:
    """RGB by ridge regression on the frozen encoder's features of ``model`` (its speckle statistics and Lite0 taps,
    standardised as the model does), fitted on the train split's crops, the penalty picked on the val split's.

    A predictor for ``sarcolor.evaluate``: each image is mirror-padded as colorize pads a small image, predicted at
    1/4 resolution and upsampled."""

    def __init__(self, model, train: list[Pair], val: list[Pair], size: int, alphas=(0.01, 0.1, 0.3, 1.0, 3.0, 10.0)):
        self.model = model
        crops = pair_crops(train, size)
        features, target = encoder_features(model, crops.sar), quarter(crops.optical)
        fits = [crops.fit(features, target, alpha) for alpha in alphas]
        scores = [np.mean([((self._predict(p.sar, fit) - p.optical / 255.0) ** 2).mean() for p in val]) for fit in fits]
        self.alpha = alphas[int(np.argmin(scores))]
        self.fit = fits[int(np.argmin(scores))]
        log.info("ridge baseline: alpha %g (val squared error %.5f)", self.alpha, min(scores))

    def _predict(self, sar: np.ndarray, fit) -> np.ndarray:
        h, w = sar.shape
        m = self.model.multiple
        padded = np.pad(sar, [(MARGIN, MARGIN + (-(n + 2 * MARGIN)) % m) for n in (h, w)], mode="symmetric")
        features = encoder_features(self.model, torch.from_numpy(padded[None, None].astype(np.float32) / 255.0))
        quarter_rgb = unrows(rows(features) @ fit[0] + fit[1], features)
        rgb = F.interpolate(quarter_rgb, scale_factor=4.0, mode="bilinear", align_corners=False)[0]
        return rgb[:, MARGIN : MARGIN + h, MARGIN : MARGIN + w].clamp(0, 1).numpy()

    def __call__(self, pair: Pair) -> np.ndarray:
        return self._predict(pair.sar, self.fit)
