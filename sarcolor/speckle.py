"""What a SAR image's speckle says, whatever its level: the unit of its values, and whether it is radar at all.

Speckle is multiplicative: in homogeneous ground, the local coefficient of variation of linear power is
fixed by the number of looks (real Sentinel-1 scenes, resampled as distributed: 0.27-0.37), that of
amplitude about half of it, and optical images have almost none. The local spread grows with the local
mean in linear values, and not in dB. Both are measured on a full-resolution block (``LocalStatistics``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from sarcolor.errors import SarcolorError

# Local spread against local mean (log-log slope): about 1 for linear values (multiplicative speckle), about 0
# for dB (additive). Measured on real scenes (experiments/scale_8bit.py): linear 0.29-1.37, dB stretches -1.2-0.6.
LINEAR_SLOPE_MIN, DB_SLOPE_MAX = 0.5, 0.25
# Pooled local coefficient of variation of the values read as power, in the more homogeneous half of 5 x 5
# windows (experiments/scale_8bit.py): real scenes' linear power 0.27-0.37 and their amplitude 0.14-0.19, over
# s1s2-pairs, BigEarthNet, SSL4EO, SEN12MS-CR and Sen1Floods11; optical reflectance 0.05-0.09.
SPECKLE_CV = (0.21, 0.245, 0.5)  # below the first: amplitude; between the second and the third: power
# Below this, the values' power as read varies too little for radar: an optical band (0.05-0.13), not SAR (correctly
# read real scenes: 0.27 and above). A scale the user gives is held to a lower floor (a despeckled image, read on purpose).
NO_SPECKLE_CV = {"auto": 0.2, "8-bit": 0.12, "given": 0.1}  # 8-bit: JPEG and coarse exports smooth speckle
LOCAL_WINDOW = 5
LOCAL_MIN_WINDOWS = 400  # fewer valid windows than this: no speckle statistics
LOCAL_BLOCK = 1024  # the side of the full-resolution block they are measured on


def local_moments(values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, standard deviation) of every ``LOCAL_WINDOW``-square window wholly valid and of positive mean."""
    x = np.where(valid, values, 0).astype(np.float64)
    mean = ndimage.uniform_filter(x, LOCAL_WINDOW, mode="constant")
    var = ndimage.uniform_filter(x * x, LOCAL_WINDOW, mode="constant") - mean * mean
    inside = ndimage.minimum_filter(valid.astype(np.uint8), LOCAL_WINDOW, mode="constant") > 0
    keep = inside & (mean > 0)
    return mean[keep], np.sqrt(np.maximum(var[keep], 0))


def pooled_cv(values: np.ndarray, valid: np.ndarray) -> float:
    """The coefficient of variation of the values' more homogeneous half of windows (speckle, little texture)."""
    mean, std = local_moments(values, valid)
    if mean.size < LOCAL_MIN_WINDOWS:
        return float("nan")
    cv = std / mean
    return float(np.sqrt(np.mean(np.square(cv[cv <= np.median(cv)]))))


def spread_slope(values: np.ndarray, valid: np.ndarray) -> float:
    """The log-log slope of local spread against local mean, over ten bins of local mean (robust to texture)."""
    mean, std = local_moments(values, valid)
    keep = std > 0
    if keep.sum() < LOCAL_MIN_WINDOWS:
        return float("nan")
    log_mean, log_std = np.log(mean[keep]), np.log(std[keep])
    bins = np.digitize(log_mean, np.quantile(log_mean, np.linspace(0.05, 0.95, 10)))
    centres = [(np.median(log_mean[bins == b]), np.median(log_std[bins == b])) for b in range(1, 10) if (bins == b).sum() >= 20]
    if len(centres) < 3:
        return float("nan")
    x, y = np.array(centres).T
    return float(np.polyfit(x, y, 1)[0]) if np.ptp(x) > 0 else float("nan")


@dataclass(frozen=True)
class LocalStatistics:
    """Speckle statistics of a full-resolution block: what the values' local structure says, whatever their level."""

    cv_as_power: float  # pooled local coefficient of variation of the values read as power (NaN: too few windows)
    cv_as_amplitude: float  # the same of the values squared: read as amplitude, as power
    slope: float  # of local spread against local mean (log-log): ~1 linear, ~0 dB

    @classmethod
    def of(cls, values: np.ndarray, valid: np.ndarray) -> "LocalStatistics":
        values = np.asarray(values, np.float64)
        valid = valid & np.isfinite(values)
        linear_valid = valid & (values > 0)
        return cls(pooled_cv(values, linear_valid), pooled_cv(values * values, linear_valid), spread_slope(values, valid))

    def cv(self, scale: str) -> float:
        """The speckle's coefficient of variation as power when the values are read as ``scale``."""
        return self.cv_as_amplitude if scale == "amplitude" else self.cv_as_power



def speckle_reading(local: LocalStatistics | None) -> tuple[str | None, str]:
    """The reading (amplitude or linear power) that the speckle's local variation gives, or None."""
    if local is None or local.cv_as_power != local.cv_as_power:
        return None, "no speckle statistics"
    cv = local.cv_as_power
    amplitude_max, power_min, power_max = SPECKLE_CV
    reading = "amplitude" if cv < amplitude_max else "intensity" if power_min < cv <= power_max else None
    reason = (f"speckle: local variation {cv:.3f} read as power (real scenes: amplitude below {amplitude_max}, "
              f"power {power_min}-{power_max})")
    return reading, reason


def check_speckled(name: str, power: np.ndarray, valid: np.ndarray, how: str) -> None:
    """Refuse an image without speckle (an optical band, a drawing): its linear power, as the scale reads it,
    varies too little within windows of homogeneous ground for radar. ``how`` the scale was found: a key of
    ``NO_SPECKLE_CV``."""
    cv = pooled_cv(power, valid & (power > 0))
    if cv == cv and cv < NO_SPECKLE_CV[how]:
        raise SarcolorError(
            f"{name}: no radar speckle (local variation {cv:.3f} as power, real Sentinel-1 scenes "
            f"{SPECKLE_CV[1]}-{SPECKLE_CV[2]}): not a SAR image (an optical band?); a speckle-filtered one needs --input-scale"
        )
