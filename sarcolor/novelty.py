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


# -- where the model learned ----------------------------------------------------------------------------------------
# A scene far from every place the model was trained on gets colours that are a guess even when its radar statistics
# look familiar (the s1s2-world places: default 9.8-13.8 dB against 16.2-21.6 for each place's own flat mean colour).
FAR_KM = 300.0
EARTH_RADIUS_KM = 6371.0


@dataclass
class TrainingPlaces:
    """The longitude/latitude boxes (west, south, east, north) of the model's training regions, by name."""

    boxes: dict[str, tuple[float, float, float, float]]

    def to_json(self) -> str:
        return json.dumps({name: [round(v, 4) for v in box] for name, box in self.boxes.items()})

    @classmethod
    def from_json(cls, text: str) -> "TrainingPlaces":
        return cls({name: tuple(box) for name, box in json.loads(text).items()})

    def distance_km(self, lon: float, lat: float) -> tuple[str, float]:
        """The nearest training region and the great-circle distance to its box (0 inside it)."""
        def to_box(box):
            west, south, east, north = box
            near_lon, near_lat = min(max(lon, west), east), min(max(lat, south), north)
            return haversine_km(lon, lat, near_lon, near_lat)

        name = min(self.boxes, key=lambda n: to_box(self.boxes[n]))
        return name, to_box(self.boxes[name])

    def notice(self, lon: float, lat: float) -> str | None:
        """One line when (lon, lat) lies more than FAR_KM from every training region, else None."""
        name, km = self.distance_km(lon, lat)
        if km <= FAR_KM:
            return None
        return (f"the scene lies {km:,.0f} km from the nearest place the model learned ({name}): its colours are a guess "
                "there; give an optical image of the place with --reference for its real colours")


def haversine_km(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    lon1, lat1, lon2, lat2 = map(np.radians, (lon1, lat1, lon2, lat2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return float(2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a)))


def scene_centre(src) -> tuple[float, float] | None:
    """The longitude and latitude of an open raster's centre, from its CRS and transform or its GCPs; None without."""
    from rasterio.warp import transform as transform_points

    if getattr(src, "crs", None):
        x, y = src.transform @ (src.width / 2, src.height / 2)
        crs = src.crs
    else:
        gcps, crs = getattr(src, "gcps", None) or ([], None)
        if not gcps or crs is None:
            return None
        x, y = float(np.mean([g.x for g in gcps])), float(np.mean([g.y for g in gcps]))
    lons, lats = transform_points(crs, "EPSG:4326", [x], [y])
    return lons[0], lats[0]
