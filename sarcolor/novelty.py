"""Is a scene like the model's training data? A warning when it is not, so its colours read as a guess.

The statistics are those of the scene's model input (amplitude / the scene's 99 % quantile, clipped),
taken on the decimated read that scaling already does: quantiles of its log amplitude and the share
of pixels at the clip. The training scenes' mean and spread are stored in the model file (exported
with ``sarcolor export --calibrate``); a scene whose statistic lies more than ``threshold`` spreads
from the training mean gets one warning line that names it.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
STAT_NAMES = tuple(f"{int(q * 100)} % quantile of log10 amplitude" for q in QUANTILES) + ("share of pixels at the clip",)
FLOOR = 1 / 255  # the 8-bit training images cannot go lower: the same floor for every input
# Chosen on real scenes (experiments/README.md, "Unlike the training data"): train scenes reach 4.4,
# val 3.0, the BigEarthNet dB patches 2.1, the coast example (a crop scaled with its whole scene's
# quantile, so no pixel reaches the clip) 8.8; dB values read as normalised amplitude reach 40.
DEFAULT_THRESHOLD = 10.0


def scene_statistics(model_input: np.ndarray) -> np.ndarray:
    """The statistics of a scene's valid model-input values (any shape, in [0, 1])."""
    values = np.asarray(model_input, np.float64).ravel()
    logs = np.log10(np.maximum(values, FLOOR))
    return np.concatenate([np.quantile(logs, QUANTILES), [np.mean(values >= 0.999)]])


@dataclass
class TrainingScenes:
    """Mean and spread of the training scenes' statistics, as stored in a model file."""

    mean: list[float]
    std: list[float]
    threshold: float = DEFAULT_THRESHOLD

    @classmethod
    def from_scenes(cls, statistics: list[np.ndarray]) -> "TrainingScenes":
        stack = np.stack(statistics)
        # A floor on the spread: a statistic that hardly varies across training scenes (the clip share)
        # must not turn a tiny difference into an alarm.
        spread = np.maximum(stack.std(0), [0.05] * len(QUANTILES) + [0.005])
        return cls(stack.mean(0).tolist(), spread.tolist())

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "TrainingScenes":
        return cls(**json.loads(text))

    def distances(self, statistics: np.ndarray) -> np.ndarray:
        return np.abs(np.asarray(statistics) - self.mean) / np.asarray(self.std)

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
