"""Which band of a raster the models get: the cross-polarisation (VH, or HV), chosen and said.

A dual-polarisation stack names its bands (a description such as ``VH`` or SNAP's ``Sigma0_VH_db``, or a
``POLARISATION`` tag per band); ASF, BigEarthNet and others ship one file per polarisation side by side
(``..._VV.tif`` beside ``..._VH.tif``). Either way the VH band is taken without ``--band``, and the log says
which and why. A co-polarisation band (VV or HH) is colourised only when asked (``--allow-co-pol``), with a
warning: the models were trained on VH amplitude.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import ColorInterp, Resampling

from sarcolor.errors import SarcolorError, first_line
from sarcolor.readers.raster import STATS_MAX_SIDE, decimated_shape, open_raster
from sarcolor.scale import POLARISATIONS, named_polarisation, polarisation_tags, tokens

log = logging.getLogger(__name__)

CROSS_POLARISATIONS = ("VH", "HV")
CROSS_OF = {"VV": "VH", "HH": "HV"}  # the file shipped beside a co-pol one
ALLOW_CO_POL_FLAG = "--allow-co-pol"
# A polarisation as a word of a file name: S1A_..._VV.tif, bigearthnet_..._vv.tif (not "1SDV" nor "DVP").
NAME_POLARISATION = re.compile(r"(?<![A-Za-z0-9])(VV|HH|vv|hh|Vv|Hh)(?![A-Za-z0-9])")


@dataclass(frozen=True)
class BandChoice:
    path: Path  # the file read: the one given, or the cross-pol file beside it
    band: int
    polarisation: str | None  # VH, HV, VV, HH, or None when nothing names it
    reason: str  # why this band, for the log line
    warning: str | None = None  # a co-pol band colourised on request
    obvious: bool = False  # the only band of a file that names no polarisation: nothing worth saying


def band_polarisation(src: rasterio.DatasetReader, band: int) -> str | None:
    """What a band's description and its polarisation tags say; texts that name different ones are refused."""
    texts = [src.descriptions[band - 1], *polarisation_tags(src.tags(band))]
    named = {pol for pol in map(named_polarisation, texts) if pol}
    if len(named) > 1:
        said = " and ".join(sorted(named))
        raise SarcolorError(
            f"{Path(src.name).name}: band {band}'s description and tags name {said}; fix its metadata or give another --band"
        )
    return named.pop() if named else None


def name_order(src: rasterio.DatasetReader) -> dict[int, str]:
    """Band polarisations a stack's file name lists in band order (``..._VV_VH_db.tif``: band 1 VV, band 2 VH), or {}."""
    words = [word.upper() for word in tokens(Path(src.name).stem) if word in POLARISATIONS]
    if len(words) != src.count or len(set(words)) != len(words):
        return {}
    return dict(enumerate(words, start=1))


def file_polarisation(src: rasterio.DatasetReader) -> str | None:
    """What a one-band file's name and dataset polarisation tags say."""
    return named_polarisation(Path(src.name).stem, *polarisation_tags(src.tags()))


def describe_band(src: rasterio.DatasetReader, band: int) -> str:
    description = src.descriptions[band - 1]
    return f"band {band} of {src.count} ({description!r})" if description else f"band {band} of {src.count}"


def single_band_polarisation(src: rasterio.DatasetReader) -> str | None:
    """A one-band file's polarisation from its band and its name, which must not disagree."""
    in_band, in_name = band_polarisation(src, 1), file_polarisation(src)
    if in_band and in_name and in_band != in_name:
        raise SarcolorError(
            f"{Path(src.name).name}: its name says {in_name} but its band says {in_band}; "
            "rename the file or fix its band description"
        )
    return in_band or in_name


def cross_pol_sibling(path: Path, polarisation: str) -> Path | None:
    """The cross-pol file shipped beside a co-pol one (``X_VV.tif`` -> ``X_VH.tif``), if it is there."""
    matches = list(NAME_POLARISATION.finditer(path.stem))
    if not matches or polarisation not in CROSS_OF:
        return None
    found = matches[-1]
    cross = CROSS_OF[polarisation]
    if found.group(1).islower():
        cross = cross.lower()
    elif not found.group(1).isupper():
        cross = cross.capitalize()
    sibling = path.with_name(f"{path.stem[:found.start()]}{cross}{path.stem[found.end():]}{path.suffix}")
    return sibling if sibling.is_file() else None


def co_pol_check(name: str, polarisation: str | None, allow_co_pol: bool, what: str) -> str | None:
    """None for a cross-pol (or unnamed) band; a warning for a co-pol one when allowed; else a one-line error."""
    if polarisation is None or polarisation in CROSS_POLARISATIONS:
        return None
    if not allow_co_pol:
        raise SarcolorError(
            f"{name}: {what} is {polarisation} (co-polarisation), but the models expect VH: give the VH band or file, "
            f"or {ALLOW_CO_POL_FLAG} to colourise {polarisation} anyway"
        )
    return f"{polarisation} colourised on request ({ALLOW_CO_POL_FLAG}): the models expect VH, colours will be less faithful"


def image_bands(src: rasterio.DatasetReader) -> list[int]:
    """The bands that hold the image: not alpha, and one of three equal ones (a grey image stored as RGB)."""
    bands = [band for band in range(1, src.count + 1) if src.colorinterp[band - 1] != ColorInterp.alpha]
    if len(bands) == 3 and src.count <= 4:
        shape = decimated_shape(src.height, src.width, STATS_MAX_SIDE)
        try:
            rgb = src.read(bands, out_shape=(3, *shape), resampling=Resampling.nearest)
        except rasterio.errors.RasterioIOError as exc:
            raise SarcolorError(f"cannot read {src.name}: {first_line(exc)}") from None
        if np.array_equal(rgb[0], rgb[1]) and np.array_equal(rgb[0], rgb[2]):
            return bands[:1]
    return bands


def choose_in_stack(src: rasterio.DatasetReader) -> tuple[int, str | None, str]:
    """(band, polarisation, reason) of a multi-band raster without ``--band``: the band named cross-pol, by its
    description and tags, else by the order its file name lists them in; a stack that names none is refused."""
    name = Path(src.name).name
    named = {band: band_polarisation(src, band) for band in range(1, src.count + 1)}
    said = ""
    if not any(named.values()):
        named = name_order(src)
        if not named:
            raise SarcolorError(unnamed_stack_error(src))
        said = f" (its file name lists {'_'.join(named.values())} in band order)"
    cross = [band for band, pol in named.items() if pol in CROSS_POLARISATIONS]
    if len(cross) > 1:
        listed = ", ".join(describe_band(src, band) for band in cross)
        raise SarcolorError(f"{name}: several bands name a cross-polarisation ({listed}); pick one with --band")
    if cross:
        band = cross[0]
        return band, named[band], f"{describe_band(src, band)}: the {named[band]} band{said}, the cross-polarisation the models expect"
    co = [band for band, pol in named.items() if pol is not None]  # some band is named: this is not empty
    pols = "+".join(named[band] for band in co)
    return co[0], named[co[0]], f"{describe_band(src, co[0])}: no cross-polarisation band among {pols}{said}"


def unnamed_stack_error(src: rasterio.DatasetReader) -> str:
    name = Path(src.name).name
    if src.count >= 3:
        return (f"{name} has {src.count} bands and none names a polarisation: an optical image? sarcolor colours SAR "
                "(give --band N for the VH band of a SAR stack)")
    return (f"{name} has {src.count} bands and none names its polarisation: give --band N for the VH band "
            "(SEN12MS and many exports put VV first, VH second)")


def choose_band(path: Path, band: int | None, allow_co_pol: bool) -> BandChoice:
    """The file and band to colourise: ``band`` when given, else the cross-pol band of a stack, or the cross-pol
    file beside a co-pol one. A co-pol choice needs ``allow_co_pol``."""
    with open_raster(path) as src:
        name, count = path.name, src.count
        if band is not None:
            if not 1 <= band <= count:
                raise SarcolorError(f"{src.name} has {count} band(s); --band {band} is out of range")
            pol = band_polarisation(src, band)
            if count == 1:
                pol = single_band_polarisation(src)
            reason = f"band {band} (given with --band)"
        elif len(image_bands(src)) > 1:
            band, pol, reason = choose_in_stack(src)
        else:
            band, pol = 1, single_band_polarisation(src)
            reason = f"its only band, {pol}" if pol else "its only band"
            if src.count > 1:
                reason += " (the others: alpha, or the same grey)"
            sibling = cross_pol_sibling(path, pol) if pol in CROSS_OF else None
            if sibling is not None:
                return sibling_choice(path, sibling, pol)
    warning = co_pol_check(name, pol, allow_co_pol, f"band {band}" if count > 1 else "its band")
    return BandChoice(path, band, pol, reason, warning, obvious=count == 1 and pol is None)


def sibling_choice(path: Path, sibling: Path, co_pol: str) -> BandChoice:
    """The cross-pol file beside ``path``, checked: one band, and not named otherwise inside."""
    with open_raster(sibling) as src:
        pol = single_band_polarisation(src) if src.count == 1 else None
        if pol not in CROSS_POLARISATIONS:
            raise SarcolorError(f"{sibling.name} beside {path.name} is not a one-band {CROSS_OF[co_pol]} raster; give the file to colourise")
    return BandChoice(sibling, 1, pol, f"{sibling.name}, the {pol} file beside the {co_pol} one given: the models expect {pol}")


def cross_pol_partner(path: Path) -> Path | None:
    """The cross-pol file that colourising ``path`` without ``--band`` reads instead (``X_VV.tif`` ->
    ``X_VH.tif``), or None: the two are one scene. A file that cannot be read is nobody's partner."""
    try:
        choice = choose_band(path, None, allow_co_pol=True)
    except SarcolorError:
        return None
    return choice.path if choice.path != path else None


def log_choice(choice: BandChoice) -> None:
    log.log(logging.DEBUG if choice.obvious else logging.INFO, "%s: %s", choice.path.name, choice.reason)
    if choice.warning:
        log.warning("%s: %s", choice.path.name, choice.warning)
