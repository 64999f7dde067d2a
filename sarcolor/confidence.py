"""How sure the model is: its error channel against the colour errors it really makes.

A model with an error head predicts, per pixel, the mean absolute error of its own R, G, B. On real
pairs this module compares that with the CIEDE2000 difference it actually makes, over 32×32 blocks:
the rank correlation says whether the map points at the right places, a least-squares line turns
the channel into expected CIEDE2000 (the calibration an exported model carries), and a binned
reliability table (predicted vs actual per bin) shows how well the calibrated numbers hold.
"""
from __future__ import annotations

import json
from typing import Callable

import numpy as np
from scipy.stats import spearmanr
from skimage.color import deltaE_ciede2000, rgb2lab

from sarcolor.data import Pair
from sarcolor.metrics import cell_means

BLOCK = 32  # pixels per block side: 320 m at 10 m pixels
# A confidence map is calibrated only where its val pairs show that it ranks the errors: blocks of at least
# MIN_CALIBRATION_PAIRS pairs (one image cannot tell scenes apart) and a rank correlation above 0 at the
# CALIBRATION_P_VALUE level. Otherwise the line would turn a guess into numbers that look measured.
MIN_CALIBRATION_PAIRS = 2
CALIBRATION_P_VALUE = 0.05
# The confidence map's legend, one for every face: the web page's preview, the QGIS layer's style, and a tag
# of each map for other viewers. Magma (matplotlib's, sampled every tenth), dark = sure, from 0 to LEGEND_TOP
# expected colour error or more, linear between the stops.
LEGEND_TOP = 25.0
LEGEND_COLOURS = ("#000004", "#140e36", "#3b0f70", "#641a80", "#8c2981", "#b73779",
                  "#de4968", "#f7705c", "#fe9f6d", "#fecf92", "#fcfdbf")


def legend_stops() -> list[tuple[float, str]]:
    """The legend as (value, colour) stops, evenly spaced from 0 to LEGEND_TOP."""
    step = LEGEND_TOP / (len(LEGEND_COLOURS) - 1)
    return [(round(i * step, 6), colour) for i, colour in enumerate(LEGEND_COLOURS)]


def legend_tag() -> str:
    """The legend as a confidence map carries it: JSON [[value, "#rrggbb"], ...]."""
    return json.dumps(legend_stops())


def legend_rgb(error: np.ndarray) -> np.ndarray:
    """Expected errors (any shape) as the legend's colours, uint8 (..., 3); NaN (no data) black."""
    values, colours = zip(*legend_stops())
    channels = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in colours], np.float64)
    clipped = np.clip(np.nan_to_num(error, nan=0.0), 0.0, LEGEND_TOP)
    rgb = np.stack([np.interp(clipped, values, channels[:, k]) for k in range(3)], axis=-1)
    rgb[np.isnan(error)] = 0
    return np.rint(rgb).astype(np.uint8)


def block_means(image: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """Mean of each full block x block cell of an (H, W) array, as a flat vector."""
    return cell_means(image, block).ravel()


def calibrated_error(expected: np.ndarray, calibration: dict) -> np.ndarray:
    """Expected error (8-bit levels) as expected CIEDE2000: by the model's calibration line, or by the monotone map
    a reference's held-out places gave (``levels`` -> ``ciede2000``, flat beyond its ends); never below 0."""
    if "levels" in calibration:
        return np.interp(expected, calibration["levels"], calibration["ciede2000"])
    return np.maximum(calibration["slope"] * expected + calibration["intercept"], 0.0)


class ErrorBlocks:
    """Per 32×32 block of some pairs: the model's expected error (8-bit levels) and the actual CIEDE2000."""

    def __init__(self) -> None:
        self._expected: list[np.ndarray] = []
        self._actual: list[np.ndarray] = []

    @classmethod
    def measure(cls, predict: Callable[[Pair], np.ndarray], pairs: list[Pair]) -> "ErrorBlocks":
        """``predict``: a pair's model outputs (RGB and the expected error), e.g. ``evaluate.model_predictor``."""
        blocks = cls()
        for pair in pairs:
            blocks.add(predict(pair), pair)
        return blocks

    def recording(self, predict: Callable[[Pair], np.ndarray]) -> Callable[[Pair], np.ndarray]:
        """``predict``, also adding each pair's blocks here: scores and blocks from one prediction per pair."""
        def predict_and_record(pair: Pair) -> np.ndarray:
            out = predict(pair)
            self.add(out, pair)
            return out

        return predict_and_record

    def add(self, out: np.ndarray, pair: Pair) -> None:
        """The blocks of one pair, from the model's outputs for it (RGB and the expected error)."""
        rgb = np.rint(np.clip(out[:3], 0, 1) * 255) / 255  # score the 8-bit image users get
        real = pair.optical.astype(np.float64) / 255
        delta_e = deltaE_ciede2000(rgb2lab(np.moveaxis(real, 0, -1)), rgb2lab(np.moveaxis(rgb, 0, -1)))
        self._expected.append(block_means(out[3] * 255.0))
        self._actual.append(block_means(delta_e))

    @property
    def expected(self) -> np.ndarray:
        return np.concatenate(self._expected)

    @property
    def actual(self) -> np.ndarray:
        return np.concatenate(self._actual)

    def spearman(self) -> float:
        return float(spearmanr(self.expected, self.actual).statistic)

    def calibration_problem(self) -> str | None:
        """Why these blocks cannot calibrate the map (too few pairs, no significant positive ranking), or None."""
        if len(self._actual) < MIN_CALIBRATION_PAIRS:
            return f"{len(self._actual)} val pair(s), too few to say whether it ranks the errors"
        result = spearmanr(self.expected, self.actual)
        # One-sided: a map that ranks the errors backwards is no better than one that does not rank them.
        if not (result.statistic > 0 and result.pvalue / 2 < CALIBRATION_P_VALUE):
            return (f"it does not rank the errors of the {len(self._actual)} val pairs (Spearman {result.statistic:.2f} "
                    f"over {self.actual.size} blocks)")
        return None

    def calibration(self) -> dict[str, float]:
        """The least-squares line from expected error (8-bit levels) to CIEDE2000, with its rank correlation."""
        slope, intercept = np.polyfit(self.expected, self.actual, 1)
        return {"slope": float(slope), "intercept": float(intercept), "spearman": self.spearman(), "blocks": int(self.actual.size)}

    def reliability(self, calibration: dict, bins: int = 8) -> list[dict[str, float]]:
        """Blocks binned by calibrated expected CIEDE2000 (equal counts): mean expected vs mean actual per bin."""
        calibrated = calibrated_error(self.expected, calibration)
        order = np.argsort(calibrated)
        return [
            {"expected": float(calibrated[part].mean()), "actual": float(self.actual[part].mean()), "blocks": int(part.size)}
            for part in np.array_split(order, bins)
        ]


def confidence_summary(model, blocks: ErrorBlocks) -> dict:
    """Rank correlation, the calibration used (the model's own, else one fitted here) and the reliability bins."""
    calibration = model.error_calibration or blocks.calibration()
    return {
        "spearman": blocks.spearman(),
        "blocks": int(blocks.actual.size),
        "calibration": {k: calibration[k] for k in ("slope", "intercept")},
        "calibration_source": "model" if model.error_calibration else "fitted on this split",
        "reliability": blocks.reliability(calibration),
    }
