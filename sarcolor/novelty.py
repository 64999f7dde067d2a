"""Is a scene like the model's training data? A warning when it is not, so its colours read as a guess.

The statistics are those of the scene's model input (amplitude / the scene's 99 % quantile, clipped),
taken on the decimated read that scaling already does: quantiles of its log amplitude, the share of
pixels at the clip and the share near zero (where 8-bit JPEG scenes of other processing chains put their
darkest pixels). The training scenes' mean and spread are stored in the model file (exported with
``sarcolor export --calibrate``); a scene whose statistic lies more than ``threshold`` spreads from the
training mean gets one warning line that names it. A model file from before a statistic was added
lacks it; the statistics it has are compared.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
NEAR_ZERO = 10**-1.5  # 30 dB of amplitude under the clip: no train, val or BigEarthNet scene has 0.03 % of its pixels there
STAT_NAMES = tuple(f"{int(q * 100)} % quantile of log10 amplitude" for q in QUANTILES) + (
    "share of pixels at the clip", "share of pixels near zero (30 dB or more under the clip)",
)
# Floors on the spreads: a statistic that hardly varies across training scenes (the clip share, the
# near-zero share: at most 5 pixels in a million of a training scene) must not turn a tiny difference
# into an alarm.
MIN_SPREADS = (0.05,) * len(QUANTILES) + (0.005, 0.0005)
FLOOR = 1 / 255  # the 8-bit training images cannot go lower: the same floor for every input
# Chosen on real scenes (experiments/README.md, "Unlike the training data"): train scenes reach 4.4,
# val 3.0, the BigEarthNet dB patches 2.1, the coast example (a crop scaled with its whole scene's
# quantile, so no pixel reaches the clip) 8.8; dB values read as normalised amplitude reach 40. The
# near-zero share (experiments/README.md, session 11) is at most 0.6 spreads on those and at least 33 on
# proxies of the held-back JPEG scenes.
DEFAULT_THRESHOLD = 10.0


def scene_statistics(model_input: np.ndarray) -> np.ndarray:
    """The statistics of a scene's valid model-input values (any shape, in [0, 1])."""
    values = np.asarray(model_input, np.float64).ravel()
    logs = np.log10(np.maximum(values, FLOOR))
    return np.concatenate([np.quantile(logs, QUANTILES), [np.mean(values >= 0.999), np.mean(values < NEAR_ZERO)]])


@dataclass
class TrainingScenes:
    """Mean and spread of the training scenes' statistics, as stored in a model file."""

    mean: list[float]
    std: list[float]
    threshold: float = DEFAULT_THRESHOLD

    @classmethod
    def from_scenes(cls, statistics: list[np.ndarray]) -> "TrainingScenes":
        stack = np.stack(statistics)
        return cls(stack.mean(0).tolist(), np.maximum(stack.std(0), MIN_SPREADS).tolist())

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "TrainingScenes":
        return cls(**json.loads(text))

    def distances(self, statistics: np.ndarray) -> np.ndarray:
        """|z| of each statistic the model file has: files exported before a statistic was added lack it."""
        return np.abs(np.asarray(statistics)[: len(self.mean)] - self.mean) / np.asarray(self.std)

    def warning(self, statistics: np.ndarray) -> str | None:
        """One line saying why the scene is unlike the training scenes, or None when it is like them."""
        distances = self.distances(statistics)
        worst = int(np.argmax(distances))
        if distances[worst] <= self.threshold:
            return None
        return (
            f"this scene is unlike the model's training data: its {STAT_NAMES[worst]} is {statistics[worst]:.3g} "
            f"(training scenes {self.mean[worst]:.3g} ± {self.std[worst]:.2g}); its colours are a guess "
            "(check --input-scale and --band, or fine-tune on your region)"
        )
