"""The radiometric scale of a SAR raster: what ``--input-scale auto`` decides, and why.

A raster of Sentinel-1 backscatter holds one of: amplitude already scaled to the model convention
(``normalized``), linear amplitude (GRD digital numbers are amplitudes), linear power (σ0/γ0, the
default of RTC products) or dB. Read with the wrong one, colours are wrong with a clean exit, so the
decision is made from the file's metadata first (producers' naming conventions, band descriptions,
units and tags, STAC fields), then from its values, logged with its reason, and refused when the
evidence does not settle it.

Amplitude and linear power cannot be told apart by the sign of their values. Two cues can:
- the spread of the values in dB (interquartile range of 10·log10): power spreads twice as wide as
  amplitude of the same scene; and
- for calibrated values (σ0 lies well below 1), the median backscatter each reading implies.
Each reading is scored by how far these fall from what real Sentinel-1 scenes show (see
``SPREAD_DB`` and ``MEDIAN_DB``); one reading must win by ``DECISIVE_MARGIN``. Both cues depend on the
scene's level and spread, and fail on dark scenes (land and water). Speckle does not: where a
full-resolution block is at hand (``LocalStatistics``), the local coefficient of variation of the values
read as power lies within ``speckle.SPECKLE_CV`` for real scenes, and reading amplitude as power halves it while
reading power as amplitude doubles it. Speckle also tells a linear image from a dB one (local spread
grows with the local mean in the first, not in the second) and SAR from optical (no speckle).

8-bit rasters hold one of two conventions: amplitude / the scene's 99 % quantile, clipped (the training
images; their 99 % quantile is the clip at 255), or sigma0 in dB stretched linearly between two levels
(Earth Engine exports, SEN1-2 and the data sets built on it: -25 to 0 dB by default, ``DB_RANGE``).
"""
from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sarcolor.errors import SarcolorError
from sarcolor.speckle import DB_SLOPE_MAX, LINEAR_SLOPE_MIN, LocalStatistics, speckle_reading

log = logging.getLogger(__name__)

INPUT_SCALES = ("auto", "normalized", "amplitude", "intensity", "db")
SCALE_NAMES = {
    "normalized": "amplitude already scaled to the model convention",
    "amplitude": "linear amplitude",
    "intensity": "linear power (sigma0/gamma0)",
    "db": "dB",
}
# Sentinel-1 sigma0 lies within about -50..+30 dB; values far outside are not dB.
DB_MAX_ABS = 100.0

# Real Sentinel-1 scenes read with the right scale (experiments/scale_auto.py: the 90 s1s2-pairs VH scenes,
# the 6 BigEarthNet VH/VV patches of bigearthnet-common, the pyroSAR VV scene): the interquartile range of
# their backscatter in dB has a geometric mean of 4.4 dB, with a heavy tail (land-and-water scenes reach
# 11 dB); the median lies around -18 dB for VH and -10 dB for VV (BigEarthNet: -18.2 to -15.6 VH, -12.3
# to -7.9 VV, pyroSAR VV -11.0).
SPREAD_DB = (4.4, 0.3)  # geometric centre (dB) and spread of its natural log
MEDIAN_DB = {"cross": (-18.0, 4.5), "co": (-10.5, 3.0)}  # centre and spread (dB), for calibrated values only
# Values whose median is above this are not calibrated backscatter (sigma0 of a whole scene stays far below 1).
CALIBRATED_MAX_MEDIAN = 1.0
# One reading wins when its score (a sum of squared spreads) is lower by at least this (a likelihood ratio of
# e^2). Without calibrated values only the spread speaks, and on real scenes it is not enough to decide
# (experiments/README.md): such values are refused unless metadata names their unit; the spread alone only
# flags a forced scale it contradicts by this much.
DECISIVE_MARGIN = 4.0
UNCALIBRATED_MARGIN = 8.0
# A share of values exactly at 1.0 as large as this is the clip of the model convention (amplitude / q99).
CLIP_SHARE = 0.005
READINGS = {"amplitude": 20.0, "intensity": 10.0}  # dB = factor * log10(value)
# An 8-bit dB export's stretch when nothing says otherwise: Earth Engine's and SEN1-2's -25..0 dB. Below -25 dB
# (about Sentinel-1's noise floor) lie water, shadow and speckle's dark tail: such a stretch clips a share of
# pixels to 0 (0.05-5 %, median 1.8 % over 101 real scenes), a -30..0 dB one almost none (median 0.01 %).
DB_RANGE = (-25.0, 0.0)
DB_FLOOR_SHARE = 0.0005  # fewer pixels at 0: refused (over 101 real scenes: 82 of the -30..0 exports, none of -25..0)
# 8-bit amplitude / 99 % quantile has its 99 % quantile at the clip, 255; a dB stretch lies far below it.
EIGHT_BIT_CLIP_Q99 = 250


@dataclass(frozen=True)
class ScaleDecision:
    scale: str
    reason: str  # why, for the log line
    warning: str | None = None  # evidence that disagrees with the decision, said loudly
    stretch: "Rescaled | None" = None  # integer values that encode dB (an 8-bit stretch, dB x 100): their dB first


@dataclass(frozen=True)
class RasterMetadata:
    """What a raster says about its own values: file name, band description and units, tags, STAC fields."""

    name: str = ""
    description: str | None = None
    units: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    polarisation: str | None = None  # known from elsewhere (a chosen band, a STAC asset): overrides the texts


@dataclass(frozen=True)
class Clue:
    scale: str
    source: str  # where it was read, e.g. "band description 'Sigma0_VH_db'"
    strong: bool = True  # weak clues (a bare "sigma0") give way to the values


# -- metadata --------------------------------------------------------------------------------------------

# ASF HyP3 RTC: S1A_IW_20180128T161201_DVP_RTC30_G_gpuned_FD6A_VH.tif, the 2nd letter of "gpuned" is
# power (p), decibel (d) or amplitude (a); the older S1A_IW_RT30_20170708T161200_G_gpn layout likewise.
ASF_RTC = re.compile(r"_RTC\d{2}_G_[gs]([pda])[uw][nf][ec][dm](?:_|$)|_RT\d{2}_\d{8}T\d{6}_[GS]_[gs]([pa])[nf](?:_|$)", re.I)
ASF_LETTERS = {"p": "intensity", "d": "db", "a": "amplitude"}
# NASA JPL OPERA RTC-S1 bursts are gamma0 in linear power.
OPERA_RTC = re.compile(r"^OPERA_L2_RTC-S1", re.I)
TOKEN_SCALES = {
    "db": "db", "decibel": "db", "decibels": "db",
    "amplitude": "amplitude", "amp": "amplitude",
    "intensity": "intensity", "power": "intensity", "pow": "intensity",
}
# SNAP and most tools name calibrated bands Sigma0_VH (linear power), Sigma0_VH_db (dB): a bare name is
# only a weak clue, since users also name dB exports "sigma0".
BACKSCATTER_TOKENS = {"sigma0", "gamma0", "beta0", "sigmanought", "gammanought", "betanought", "naught", "nought"}
UNIT_TEXTS = [
    (re.compile(r"\bdb\b|decibel", re.I), "db"),
    (re.compile(r"amplitude", re.I), "amplitude"),
    (re.compile(r"power|intensity|linear|m2\s*/\s*m2|m2 m-2", re.I), "intensity"),
]
# sarcolor's own examples and any raster made like the training images say so in a tag.
NORMALISED_TEXT = re.compile(r"99\s*%\s*quantile", re.I)
# Tags that describe the values (others, such as software names, say nothing about them).
UNIT_TAG = re.compile(r"unit|scale|scaling|radiometry|backscatter|measurement|long_name|description|sar:", re.I)


def tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[^a-z0-9]+", text.lower()) if t]


def name_clue(name: str) -> Clue | None:
    """What a file name's producer convention says."""
    stem = Path(name).name
    match = ASF_RTC.search(stem)
    if match:
        letter = (match.group(1) or match.group(2)).lower()
        return Clue(ASF_LETTERS[letter], f"file name {stem!r} follows ASF's RTC naming ({letter!r}: {SCALE_NAMES[ASF_LETTERS[letter]]})")
    if OPERA_RTC.search(stem):
        return Clue("intensity", f"file name {stem!r} is an OPERA RTC-S1 product (gamma0 in linear power)")
    return text_clue(Path(stem).stem, f"file name {stem!r}")


def text_clue(text: str, source: str) -> Clue | None:
    """What a name or description's words say: dB, amplitude, power, or a bare backscatter name (weak)."""
    words = tokens(text)
    found = {TOKEN_SCALES[w] for w in words if w in TOKEN_SCALES}
    if len(found) == 1:
        scale = found.pop()
        return Clue(scale, f"{source} says {SCALE_NAMES[scale]}")
    if not found and any(w in BACKSCATTER_TOKENS for w in words):
        return Clue("intensity", f"{source} names calibrated backscatter without a unit (linear power)", strong=False)
    return None


def unit_clue(text: str, source: str) -> Clue | None:
    if NORMALISED_TEXT.search(text):
        return Clue("normalized", f"{source} says the values are scaled by the scene's 99 % quantile")
    found = [scale for pattern, scale in UNIT_TEXTS if pattern.search(text)]
    return Clue(found[0], f"{source} says {SCALE_NAMES[found[0]]}") if found else None


def metadata_clues(meta: RasterMetadata) -> list[Clue]:
    clues = [name_clue(meta.name) if meta.name else None]
    if meta.description:
        clues.append(text_clue(meta.description, f"band description {meta.description!r}"))
    if meta.units:
        clues.append(unit_clue(meta.units, f"band unit {meta.units!r}"))
    for key, value in sorted(meta.tags.items()):
        if UNIT_TAG.search(key) and value:
            clues.append(unit_clue(str(value), f"tag {key}={str(value)[:60]!r}"))
    return [clue for clue in clues if clue is not None]


def metadata_scale(meta: RasterMetadata) -> Clue | None:
    """The scale the metadata gives, or None; metadata that contradicts itself is refused."""
    clues = metadata_clues(meta)
    strong = [clue for clue in clues if clue.strong]
    if len({clue.scale for clue in strong}) > 1:
        said = "; ".join(clue.source for clue in strong)
        raise SarcolorError(f"{meta.name}: its metadata disagrees about the unit of its values ({said}); give --input-scale")
    return (strong or clues or [None])[0]


# -- values ----------------------------------------------------------------------------------------------

POLARISATIONS = ("vh", "hv", "vv", "hh")


def named_polarisation(*texts: str | None) -> str | None:
    """The one polarisation the texts name (as a word: "VH", "Sigma0_VH_db"), or None (none, or several)."""
    found = {word.upper() for text in texts if text for word in tokens(str(text)) if word in POLARISATIONS}
    return found.pop() if len(found) == 1 else None


def polarisation_tags(tags: dict[str, str]) -> list[str]:
    """The values of the POLARISATION / POLARIZATION-like tags."""
    return [value for key, value in tags.items() if "polari" in key.lower()]


def polarisation(meta: RasterMetadata) -> str | None:
    """The polarisation a raster names (file name, band description, a POLARIZATION tag), or None."""
    if meta.polarisation:
        return meta.polarisation
    return named_polarisation(Path(meta.name).stem, meta.description, *polarisation_tags(meta.tags))


@dataclass(frozen=True)
class ValueStatistics:
    median: float  # of the positive values
    spread_db: float  # interquartile range of 10 * log10(value), positive values
    negative_share: float
    clip_share: float  # share of values exactly 1.0

    @classmethod
    def of(cls, values: np.ndarray) -> "ValueStatistics":
        values = np.asarray(values, np.float64).ravel()
        if not values.size:
            return cls(0.0, float("nan"), 0.0, 0.0)
        negative, clipped = float(np.mean(values < 0)), float(np.mean(values == 1.0))
        positive = values[values > 0]
        if positive.size < 16:
            return cls(float(np.median(values)), float("nan"), negative, clipped)
        q25, q50, q75 = np.quantile(positive, [0.25, 0.5, 0.75])
        return cls(float(q50), float(10 * np.log10(q75 / q25)), negative, clipped)

    @property
    def calibrated(self) -> bool:
        return 0 < self.median <= CALIBRATED_MAX_MEDIAN


def reading_scores(stats: ValueStatistics, pol: str | None = None) -> dict[str, float]:
    """How unlike real Sentinel-1 backscatter each reading (amplitude, linear power) makes the values: a sum of
    squared spreads from the centre of real scenes (lower is likelier). The median counts for calibrated values
    only, against the level of the raster's polarisation (cross-pol, the models' input, when it names none)."""
    level = MEDIAN_DB["co" if pol in ("VV", "HH") else "cross"]
    scores = {}
    for scale, factor in READINGS.items():
        spread = stats.spread_db * factor / 10.0
        score = (np.log(max(spread, 1e-6) / SPREAD_DB[0]) / SPREAD_DB[1]) ** 2
        if stats.calibrated:
            score += ((factor * np.log10(stats.median) - level[0]) / level[1]) ** 2
        scores[scale] = float(score)
    return scores


def describe(stats: ValueStatistics) -> str:
    return f"median {stats.median:.4g}, interquartile range {stats.spread_db:.2f} dB as power"


def amplitude_or_power(stats: ValueStatistics, pol: str | None = None, local: LocalStatistics | None = None) -> tuple[str | None, str]:
    """The likelier of amplitude and linear power for non-negative values, or None when neither wins clearly.

    Speckle decides where it can (it does not depend on the scene's level or spread); the level and spread
    scores decide where it cannot, by a decisive margin."""
    by_speckle, speckle_reason = speckle_reading(local)
    if by_speckle is None and stats.spread_db != stats.spread_db:  # NaN: fewer than 16 positive values
        return None, f"too few positive values to measure their spread (median {stats.median:.4g})"
    scores = reading_scores(stats, pol)
    (best, best_score), (other, other_score) = sorted(scores.items(), key=lambda item: item[1])
    margin = DECISIVE_MARGIN if stats.calibrated else UNCALIBRATED_MARGIN
    calibrated = f"calibrated {pol or 'cross-pol'} values" if stats.calibrated else "uncalibrated values"
    reason = f"{calibrated}, {describe(stats)}: score {best_score:.1f} as {best}, {other_score:.1f} as {other}"
    if by_speckle is not None:
        return by_speckle, f"{speckle_reason}: {SCALE_NAMES[by_speckle]}"
    if local is not None and local.cv_as_power == local.cv_as_power:
        reason = f"{reason}; {speckle_reason}, neither reading fits"
    return (best if other_score - best_score >= margin else None), reason


def check_not_constant(name: str, values: np.ndarray) -> None:
    """A constant image (a failed export) has nothing to colour."""
    if values.size and np.all(values == values.flat[0]):
        raise SarcolorError(f"{name}: every valid pixel has the value {values.flat[0]:g}; a failed export?")


def parse_db_range(text: str | tuple[float, float] | None) -> tuple[float, float] | None:
    """``--db-range LO,HI``: the dB levels an integer stretch's lowest and highest values stand for."""
    if text is None or isinstance(text, tuple):
        low_high = text
    else:
        try:
            low_high = tuple(float(part) for part in str(text).split(","))
        except ValueError:
            low_high = ()
    if low_high is None:
        return None
    if len(low_high) != 2 or not all(np.isfinite(low_high)) or not low_high[0] < low_high[1] or max(map(abs, low_high)) > DB_MAX_ABS:
        raise SarcolorError(f"--db-range {text}: give two dB levels LO,HI with LO < HI, e.g. -25,0")
    return float(low_high[0]), float(low_high[1])


@dataclass(frozen=True)
class Rescaled:
    """Values rescaled before the scale is decided: ``value * scale + offset`` (a STAC asset's ``raster:bands``
    scale and offset, a band's own scale and offset, the dB levels of an integer stretch)."""

    scale: float
    offset: float
    decision: ScaleDecision | None = None  # None: decided on the rescaled values, as for any raster

    def values(self, raw: np.ndarray, rows: np.ndarray = None, cols: np.ndarray = None) -> np.ndarray:
        return raw.astype(np.float32) * np.float32(self.scale) + np.float32(self.offset)


def db_stretch(dtype: str, db_range: tuple[float, float], how: str) -> Rescaled:
    """An unsigned integer stretch of dB: 0 stands for the range's low end, the type's maximum for its high end."""
    top = np.iinfo(np.dtype(dtype)).max
    low, high = db_range
    reason = f"{dtype} values stretch sigma0 from {low:g} dB (0) to {high:g} dB ({top}), {how}"
    return Rescaled((high - low) / top, low, ScaleDecision("db", reason))


def integer_db(dtype: str, values: np.ndarray, name: str) -> Rescaled | None:
    """Signed integers of dB times 100 or 10 (a common packing of float dB): the factor whose median is a scene's
    backscatter level (-35..-3 dB), or None when the values are plain dB already."""
    if np.abs(values).max() <= DB_MAX_ABS:
        return None
    median = float(np.median(values))
    fits = [factor for factor in (100, 10) if -35 <= median / factor <= -3 and np.abs(values).max() / factor <= DB_MAX_ABS]
    if len(fits) != 1:
        raise SarcolorError(f"{name}: {dtype} values from {values.min():g} to {values.max():g} (median {median:g}) are neither "
                            "dB nor dB x 10 or x 100; give the band a scale (gdal_edit.py -scale) or convert it to float dB")
    reason = f"{dtype} values below 0 with median {median:g}: sigma0 in dB x {fits[0]} (median {median / fits[0]:.1f} dB)"
    return Rescaled(1.0 / fits[0], 0.0, ScaleDecision("db", reason))


def unsigned_db(values: np.ndarray, dtype: str, name: str, db_range: tuple[float, float] | None, said: str) -> ScaleDecision:
    """An unsigned integer dB stretch over ``db_range``, or else the default -25..0 dB, checked against its floor:
    a default stretch whose 0 is (almost) never reached reaches lower, and is refused (or read with a warning)."""
    floor_share = float(np.mean(values == 0))
    if db_range is None and floor_share < DB_FLOOR_SHARE:
        raise SarcolorError(
            f"{name}: {said}, but its 0 is almost never reached ({floor_share:.2%} of the pixels): it reaches below "
            f"{DB_RANGE[0]:g} dB, the usual low end; give --db-range LO,HI (e.g. -30,0)"
        )
    how = "given with --db-range" if db_range else "the Earth Engine and SEN1-2 convention (--db-range sets another)"
    stretch = db_stretch(dtype, db_range or DB_RANGE, how)
    assumed = None  # nothing in the file says its stretch: a -30..0 export read as -25..0 is 40 levels off, so say it
    if db_range is None:
        assumed = (f"read as a {DB_RANGE[0]:g}..{DB_RANGE[1]:g} dB stretch ({floor_share:.2%} of the pixels at its 0), which "
                   "nothing in the file says: give --db-range to confirm it or to set another")
    return ScaleDecision("db", f"{said}: {stretch.decision.reason}", assumed, stretch=stretch)


def eight_bit_scale(values: np.ndarray, name: str, local: LocalStatistics | None, db_range: tuple[float, float] | None) -> ScaleDecision:
    """8-bit values: amplitude / 99 % quantile (the training images: the quantile is the clip at 255), or a dB
    stretch (the quantile far below 255, local spread that does not grow with the mean). Refused when unsure."""
    q99 = float(np.quantile(values, 0.99))
    slope = local.slope if local is not None else float("nan")
    measured = f"99 % quantile {q99:.0f}" + (f", local spread ~ mean^{slope:.2f}" if slope == slope else "")
    if q99 >= EIGHT_BIT_CLIP_Q99 and not slope <= DB_SLOPE_MAX - 0.5:  # NaN slope: the clip alone decides
        return ScaleDecision("normalized", f"8-bit values clipped at 255 ({measured}): amplitude / 99 % quantile, like the training images")
    if slope >= LINEAR_SLOPE_MIN:  # a tile of a scene normalised as a whole: its own quantile lies below the clip
        return ScaleDecision("normalized", f"8-bit linear values ({measured}): amplitude / a scene's 99 % quantile, like the training images")
    if q99 < EIGHT_BIT_CLIP_Q99 and slope <= DB_SLOPE_MAX:
        return unsigned_db(values, "uint8", name, db_range, f"8-bit dB stretch ({measured})")
    raise SarcolorError(
        f"{name}: cannot tell whether these 8-bit values are amplitude / 99 % quantile or a dB stretch ({measured}); "
        "give --input-scale normalized, or --input-scale db with --db-range LO,HI"
    )


def values_scale(dtype: str, values: np.ndarray, name: str = "", pol: str | None = None, local: LocalStatistics | None = None,
                 db_range: tuple[float, float] | None = None) -> ScaleDecision:
    """The scale the values alone give (no metadata), with its reason; refused when they do not settle it."""
    if dtype == "uint8":
        return eight_bit_scale(values, name, local, db_range)
    stats = ValueStatistics.of(values)
    if np.issubdtype(np.dtype(dtype), np.integer):
        if stats.negative_share > 0:
            rescaled = integer_db(dtype, values, name)
            if rescaled is None:
                return ScaleDecision("db", f"{dtype} values, {stats.negative_share:.0%} below 0 (median {stats.median:.3g}): dB")
            return ScaleDecision("db", rescaled.decision.reason, stretch=rescaled)
        return ScaleDecision("amplitude", f"{dtype} values: digital numbers, which in GRD products are amplitudes")
    if stats.median < 0 or stats.negative_share > 0.5:
        return ScaleDecision("db", f"float values, {stats.negative_share:.0%} negative (median {stats.median:.3g}): dB")
    if stats.clip_share >= CLIP_SHARE and float(np.max(values)) == 1.0:
        return ScaleDecision("normalized", f"float values clipped at 1 ({stats.clip_share:.1%} of them): amplitude / 99 % quantile")
    by_speckle, _ = speckle_reading(local)
    if not stats.calibrated and by_speckle is None:
        raise SarcolorError(
            f"{name}: float values with median {stats.median:.4g} are not calibrated backscatter, and nothing says "
            "whether they are amplitude or power; give --input-scale amplitude or --input-scale intensity"
        )
    scale, reason = amplitude_or_power(stats, pol, local)
    if scale is None:
        raise SarcolorError(
            f"{name}: cannot tell whether the values are amplitude or linear power ({reason}); "
            "give --input-scale amplitude or --input-scale intensity"
        )
    return ScaleDecision(scale, reason)


def disagreement(scale: str, dtype: str, values: np.ndarray, pol: str | None = None, local: LocalStatistics | None = None) -> str | None:
    """Why the values contradict ``scale`` (given by metadata or by the user), or None when they do not."""
    stats = ValueStatistics.of(values)
    floating = np.issubdtype(np.dtype(dtype), np.floating)
    if scale == "db" and stats.negative_share == 0 and stats.median > 0 and floating:
        return f"dB values of a scene are mostly negative, these are all positive (median {stats.median:.4g})"
    if scale != "db" and floating and (stats.median < 0 or stats.negative_share > 0.5):
        return f"{stats.negative_share:.0%} of the values are negative (median {stats.median:.3g}), as in dB"
    if scale == "normalized" and floating and stats.median > 1:
        return f"normalised values lie in [0, 1], these have median {stats.median:.4g}"
    if scale in READINGS and stats.spread_db == stats.spread_db:  # not NaN: enough positive values
        likelier, reason = amplitude_or_power(stats, pol, local)
        if likelier is not None and likelier != scale:
            return f"the values look like {SCALE_NAMES[likelier]} ({reason})"
    return None


def decide_scale(dtype: str, values: np.ndarray, meta: RasterMetadata, local: LocalStatistics | None = None,
                 db_range: tuple[float, float] | None = None) -> ScaleDecision:
    """``--input-scale auto``: metadata first, checked against the values; then the values alone."""
    clue, pol = metadata_scale(meta), polarisation(meta)
    if clue is None:
        return values_scale(dtype, values, meta.name, pol, local, db_range)
    if clue.scale == "db" and np.issubdtype(np.dtype(dtype), np.integer):
        return forced_db(dtype, values, meta.name, db_range, clue.source)
    conflict = disagreement(clue.scale, dtype, values, pol, local)
    if conflict is None:
        return ScaleDecision(clue.scale, clue.source)
    if not clue.strong:
        decision = values_scale(dtype, values, meta.name, pol, local, db_range)
        return dataclasses.replace(decision, reason=f"{decision.reason} ({clue.source}, but the values decide)")
    if clue.scale == "db" or "negative" in conflict:
        raise SarcolorError(f"{meta.name}: {clue.source}, but {conflict}; give --input-scale")
    return ScaleDecision(clue.scale, clue.source, warning=f"{clue.source}, but {conflict}: check --input-scale")


def forced_db(dtype: str, values: np.ndarray, name: str, db_range: tuple[float, float] | None, said: str) -> ScaleDecision:
    """Integer values said to be dB: an unsigned stretch (8-bit: -25..0 dB unless --db-range says), or signed dB
    (times 100 or 10 where the values say so)."""
    if np.issubdtype(np.dtype(dtype), np.unsignedinteger):
        if db_range is None and dtype != "uint8":  # plain dB in integers, or not dB: the dB range check decides
            return ScaleDecision("db", said)
        return unsigned_db(values, dtype, name, db_range, said)
    if db_range is not None:
        raise SarcolorError(f"{name}: --db-range is for unsigned integer stretches (uint8, uint16), not {dtype}")
    rescaled = integer_db(dtype, values, name)
    if rescaled is None:
        return ScaleDecision("db", said)
    return ScaleDecision("db", f"{said}; {rescaled.decision.reason}", stretch=rescaled)


def forced_scale_warning(scale: str, dtype: str, values: np.ndarray, meta: RasterMetadata, local: LocalStatistics | None = None) -> str | None:
    """A one-line warning when the values contradict a scale the user forced (power read as amplitude, ...)."""
    conflict = disagreement(scale, dtype, values, polarisation(meta), local)
    return f"--input-scale {scale} looks wrong: {conflict}" if conflict else None


def to_amplitude(values: np.ndarray, scale: str, dtype: str) -> np.ndarray:
    """Convert raw values to (relative) amplitude, float32."""
    values = values.astype(np.float32, copy=False)
    if scale == "db":  # sigma0 in dB is an intensity ratio: amplitude = 10 ** (dB / 20)
        with np.errstate(over="ignore"):  # absurd dB values overflow to inf; callers check the result
            return np.power(np.float32(10.0), values / np.float32(20.0))
    if scale == "intensity":
        return np.sqrt(np.maximum(values, 0))
    if scale == "normalized" and np.issubdtype(np.dtype(dtype), np.integer):
        return values / np.float32(np.iinfo(np.dtype(dtype)).max)
    return values
