"""How sure the colours fitted on a reference are: the model's error head refitted and calibrated on clear reference
places held out from the colour fit.

The trained error head predicts the errors of the trained colours, in the places the model learned. With a
reference, the colours at a clear place of one fold of tiles are predicted by the colour fit of the other fold, and
the error they make there (the model's own pixels moved by the fit, against the reference's pixels) is what the
confidence map should have said. The error head's logit gets a ridge change on the features toward those errors (in
the graph, as the colour fit: no cost at inference), its penalty chosen by how well it ranks held-out places, or is
kept; then a monotone map (isotonic regression) from its output to the CIEDE2000 measured there gives the map's
values in the user's own region.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.optimize import isotonic_regression
from scipy.stats import spearmanr
from skimage.color import deltaE_ciede2000, rgb2lab

log = logging.getLogger(__name__)

ALPHAS = (0.1, 1.0, 10.0)  # ridge penalties of the error logit's change (times the rows, on standardised columns)
MAX_PLACES = 20_000  # places the error is measured at, at most (a random sample: CIEDE2000 of their pixels)
KNOTS = 24  # points of the stored monotone map
MIN_PLACES = 64


@dataclass
class ErrorFit:
    """A change to the error head's logit, ``features @ weight + bias``, and the map from its output (8-bit levels of
    mean absolute error) to expected CIEDE2000, fitted on held-out clear places."""

    weight: np.ndarray  # (C,)
    bias: float
    calibration: dict  # {"levels": [...], "ciede2000": [...], "source": "reference", ...}: piecewise linear, monotone
    form: str
    spearman: float  # rank correlation with the measured error at held-out places, this fit
    model_spearman: float  # the same, the model's own error head

    def describe(self) -> str:
        return (f"{self.form}, calibrated to CIEDE2000 on {self.calibration['places']} held-out clear places "
                f"(Spearman {self.spearman:.2f}; the model's own {self.model_spearman:.2f})")


def softplus_inverse(y: np.ndarray) -> np.ndarray:
    y = np.maximum(y, 1e-4)
    return np.where(y > 20, y, np.log(np.expm1(np.minimum(y, 20))))


def softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def measured_errors(trained_pixels: np.ndarray, shift: np.ndarray, reference_pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per place: the mean absolute RGB error ([0, 1] units, the error head's) and the mean CIEDE2000 of the model's
    pixels ``trained_pixels`` (M, P, 3, uint8) moved by the fit's ``shift`` of the place's colour (M, 3), against
    the reference's pixels (M, P, 3, uint8)."""
    predicted = np.clip(trained_pixels / 255.0 + shift[:, None, :], 0, 1)
    reference = reference_pixels / 255.0
    mae = np.abs(predicted - reference).mean((1, 2))
    de = deltaE_ciede2000(rgb2lab(reference), rgb2lab(predicted)).mean(1)
    return mae, de


def monotone_map(predicted: np.ndarray, measured: np.ndarray) -> tuple[list[float], list[float]]:
    """The isotonic regression of ``measured`` on ``predicted``, as KNOTS points (predicted quantiles) for np.interp."""
    order = np.argsort(predicted)
    fitted = isotonic_regression(measured[order]).x
    at = np.unique(np.quantile(np.arange(len(order)), np.linspace(0, 1, KNOTS)).round().astype(int))
    levels = predicted[order][at]
    levels, first = np.unique(levels, return_index=True)
    return levels.tolist(), fitted[at][first].tolist()


def fit_error(features: np.ndarray, model_error: np.ndarray, trained_pixels: np.ndarray, reference_pixels: np.ndarray,
              shift: np.ndarray, folds: np.ndarray, ridge_fit) -> ErrorFit | None:
    """The error head's change and calibration from the clear places: their blurred head ``features`` (M, C), the
    model's expected error there (M, [0, 1] units), the model's and the reference's pixels (M, P, 3 uint8), the
    held-out colour fit's ``shift`` of each place's colour (M, 3; NaN where no fold predicted it) and the ``folds``
    of tiles. None where too few places were held out."""
    known = np.isfinite(shift).all(1)
    index = np.flatnonzero(known)
    if len(index) > MAX_PLACES:
        index = np.sort(np.random.default_rng(0).choice(index, MAX_PLACES, replace=False))
    if len(index) < 2 * MIN_PLACES or len(np.unique(folds[index])) < 2:
        return None
    x, own, folds = features[index], model_error[index], folds[index]
    mae, de = measured_errors(trained_pixels[index], shift[index], reference_pixels[index])
    target = softplus_inverse(mae) - softplus_inverse(own)  # what the error logit should gain
    candidates = {"error head kept": None, **{f"error head refitted (ridge alpha {a:g})": a for a in ALPHAS}}
    held_out = {name: held_out_expected(x, own, target, folds, alpha, ridge_fit) for name, alpha in candidates.items()}
    ranks = {name: rank(expected, de) for name, expected in held_out.items()}
    log.debug("confidence: held-out Spearman %s", ", ".join(f"{n} {r:.3f}" for n, r in ranks.items()))
    form = max(ranks, key=ranks.get)
    weight, bias = np.zeros(x.shape[1]), 0.0
    if candidates[form] is not None:
        w, b = ridge_fit(x, target[:, None], candidates[form])
        weight, bias = w[:, 0], float(b[0])
    expected = held_out[form]
    usable = np.isfinite(expected)
    levels, ciede2000 = monotone_map(expected[usable] * 255.0, de[usable])
    calibration = {"levels": levels, "ciede2000": ciede2000, "source": "reference", "places": int(usable.sum()),
                   "spearman": ranks[form]}
    fit = ErrorFit(weight.astype(np.float32), bias, calibration, form, ranks[form], ranks["error head kept"])
    log.info("confidence: %s", fit.describe())
    return fit


def held_out_expected(x, own, target, folds, alpha, ridge_fit) -> np.ndarray:
    """The error head's output (mean absolute error, [0, 1] units) at each place, its logit changed by a ridge fit
    on the other folds (``alpha`` None: the model's own)."""
    if alpha is None:
        return own.astype(np.float64)
    expected = np.full(len(x), np.nan)
    for fold in np.unique(folds):
        inside, outside = folds != fold, folds == fold
        if inside.sum() < MIN_PLACES:
            continue
        w, b = ridge_fit(x[inside], target[inside, None], alpha)
        expected[outside] = softplus(softplus_inverse(own[outside]) + (x[outside] @ w + b)[:, 0])
    return expected


def rank(expected: np.ndarray, measured: np.ndarray) -> float:
    usable = np.isfinite(expected)
    if usable.sum() < MIN_PLACES:
        return -1.0
    value = spearmanr(expected[usable], measured[usable]).statistic
    return float(value) if np.isfinite(value) else -1.0
