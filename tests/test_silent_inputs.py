"""Inputs that used to be coloured wrong with a clean exit: each is now read right or refused in one line.

8-bit dB exports (Earth Engine, SEN1-2), dark amplitude scenes, integer dB x 100, optical rasters given as SAR,
constant images, and bands whose names contradict each other. Real texture throughout: the coast example's
SAR and a Sentinel-2 tile of the bundled pairs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from conftest import COAST, PAIRS, read_all, run_cli
from test_cli import assert_clean_failure
from test_scale import coast_sigma0, write_like

OPTICAL = PAIRS / "opt" / "003_r384_c384.png"


def coast_db() -> np.ndarray:
    """The coast example's sigma0 in dB (median -18 dB, a typical VH land level)."""
    return 10 * np.log10(coast_sigma0())


def db_stretch(db: np.ndarray, low: float, high: float) -> np.ndarray:
    """An 8-bit export of dB as Earth Engine writes one (visualize min/max)."""
    return np.rint((np.clip(db, low, high) - low) / (high - low) * 255).astype(np.uint8)


def colours(tmp_path: Path, data: np.ndarray, name: str, *args: str) -> tuple[np.ndarray, str]:
    path = write_like(tmp_path / f"{name}.tif", data, COAST)
    result = run_cli("colorize", path, "-o", tmp_path / f"{name}_rgb.tif", *args, check=True)
    return read_all(tmp_path / f"{name}_rgb.tif")[0].astype(np.int16), " ".join(result.stderr.split())


@pytest.fixture(scope="module")
def as_amplitude(tmp_path_factory) -> np.ndarray:
    """The colours of the scene written as float amplitude: what every other unit must give."""
    rgb, _ = colours(tmp_path_factory.mktemp("amplitude"), np.sqrt(coast_sigma0()).astype(np.float32), "amplitude")
    return rgb


def test_an_8_bit_db_export_is_read_as_db(tmp_path, as_amplitude):
    rgb, log = colours(tmp_path, db_stretch(coast_db(), -25, 0), "export")
    assert "input scale auto -> db: 8-bit dB stretch" in log and "-25 dB (0) to 0 dB (255)" in log
    assert "which nothing in the file says: give --db-range to confirm it" in log  # the range is assumed: said
    assert np.abs(rgb - as_amplitude).mean() <= 1.0  # read as amplitude / 99 % quantile: 15 levels off
    forced, _ = colours(tmp_path, db_stretch(coast_db(), -25, 0), "forced", "--input-scale", "db")
    np.testing.assert_array_equal(forced, rgb)
    confirmed, confirmed_log = colours(tmp_path, db_stretch(coast_db(), -25, 0), "confirmed", "--db-range=-25,0")
    np.testing.assert_array_equal(confirmed, rgb)
    assert "WARNING" not in confirmed_log


def test_another_stretch_is_refused_unless_given(tmp_path, as_amplitude):
    export = db_stretch(coast_db(), -30, 0)
    path = write_like(tmp_path / "export30.tif", export, COAST)
    assert_clean_failure(run_cli("colorize", path, "-o", tmp_path / "rgb.tif"), "give --db-range LO,HI", tmp_path / "rgb.tif")
    rgb, log = colours(tmp_path, export, "given", "--db-range=-30,0")
    assert "-30 dB (0) to 0 dB (255), given with --db-range" in log
    assert np.abs(rgb - as_amplitude).mean() <= 1.0  # read with -25..0: about 40 levels off


def test_the_training_convention_stays_normalised(tmp_path):
    """8-bit amplitude / a scene's 99 % quantile without any tag saying so (a bundled pairs tile, as a GeoTIFF)."""
    with rasterio.open(PAIRS / "sar" / "003_r384_c384.png") as src:
        tile = src.read(1)
    path = tmp_path / "tile.tif"
    with rasterio.open(path, "w", driver="GTiff", width=tile.shape[1], height=tile.shape[0], count=1, dtype="uint8") as dst:
        dst.write(tile, 1)
    result = run_cli("colorize", path, "-o", tmp_path / "rgb.tif", check=True)
    assert "input scale auto -> normalized: 8-bit linear values" in " ".join(result.stderr.split())


@pytest.mark.parametrize("level", [-22, -26, -30])
def test_dark_amplitude_is_read_as_amplitude_and_a_forced_amplitude_is_not_doubted(tmp_path, as_amplitude, level):
    db = coast_db() - np.median(coast_db()) + level
    amplitude = (10 ** (db / 20)).astype(np.float32)
    rgb, log = colours(tmp_path, amplitude, "dark")
    assert "input scale auto -> amplitude: speckle" in log
    assert np.abs(rgb - as_amplitude).mean() <= 1.0
    _, forced_log = colours(tmp_path, amplitude, "forced", "--input-scale", "amplitude")
    assert "looks wrong" not in forced_log
    _, wrong_log = colours(tmp_path, amplitude, "wrong", "--input-scale", "intensity")
    assert "--input-scale intensity looks wrong" in wrong_log


def test_integer_db_times_100_is_read(tmp_path, as_amplitude):
    rgb, log = colours(tmp_path, np.rint(coast_db() * 100).astype(np.int16), "centi")
    assert "sigma0 in dB x 100" in log
    assert np.abs(rgb - as_amplitude).mean() <= 1.0


def test_a_band_s_own_scale_and_offset_are_applied(tmp_path, as_amplitude):
    path = write_like(tmp_path / "scaled.tif", np.rint((coast_db() + 40) * 100).astype(np.uint16), COAST)
    with rasterio.open(path, "r+") as dst:
        dst.scales, dst.offsets = (0.01,), (-40.0,)
    run_cli("colorize", path, "-o", tmp_path / "rgb.tif", check=True)
    assert np.abs(read_all(tmp_path / "rgb.tif")[0].astype(np.int16) - as_amplitude).mean() <= 1.0


def optical() -> np.ndarray:
    with rasterio.open(OPTICAL) as src:
        return src.read()


@pytest.mark.parametrize("variant", ["true colour", "red band uint16", "red band reflectance"])
def test_optical_rasters_are_refused(tmp_path, variant):
    rgb = optical()
    path = tmp_path / "s2.tif"
    data = {"true colour": rgb, "red band uint16": rgb[:1].astype(np.uint16) * 40,
            "red band reflectance": rgb[:1].astype(np.float32) / 255 * 0.3}[variant]
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=str(data.dtype)) as dst:
        dst.write(data)
    expected = "an optical image?" if variant == "true colour" else "no radar speckle"
    assert_clean_failure(run_cli("colorize", path, "-o", tmp_path / "rgb.tif"), expected, tmp_path / "rgb.tif")


def test_a_constant_image_is_refused(tmp_path):
    path = write_like(tmp_path / "flat.tif", np.full((256, 256), 0.05, np.float32), COAST)
    assert_clean_failure(run_cli("colorize", path, "-o", tmp_path / "rgb.tif"), "every valid pixel has the value 0.05",
                         tmp_path / "rgb.tif")


def write_pair(path: Path, descriptions=(None, None), tags=({}, {})) -> Path:
    sigma0 = coast_sigma0()
    stack = np.stack([10 * np.log10(sigma0 * 4), 10 * np.log10(sigma0)]).astype(np.float32)  # VV 6 dB above VH
    with rasterio.open(COAST) as src:
        profile = src.profile.copy()
    profile.update(count=2, dtype="float32", nodata=None)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(stack)
        for band, (description, band_tags) in enumerate(zip(descriptions, tags), start=1):
            dst.set_band_description(band, description)
            dst.update_tags(band, **band_tags)
    return path


def test_an_unnamed_pair_takes_its_order_from_its_file_name(tmp_path):
    path = write_pair(tmp_path / "S1_VV_VH_db.tif")
    result = run_cli("colorize", path, "-o", tmp_path / "rgb.tif", check=True)
    assert "band 2 of 2: the VH band (its file name lists VV_VH in band order)" in " ".join(result.stderr.split())
    unnamed = write_pair(tmp_path / "stack_db.tif")
    assert_clean_failure(run_cli("colorize", unnamed, "-o", tmp_path / "u.tif"), "none names its polarisation: give --band N",
                         tmp_path / "u.tif")


def test_a_band_whose_description_and_tag_disagree_is_refused(tmp_path):
    path = write_pair(tmp_path / "stack.tif", ("VV", "VH"), ({}, {"POLARISATION": "VV"}))
    assert_clean_failure(run_cli("colorize", path, "-o", tmp_path / "rgb.tif"), "band 2's description and tags name VH and VV",
                         tmp_path / "rgb.tif")


@pytest.mark.parametrize("args, expected", [
    (["--db-range", "0,-25"], "--db-range 0,-25: give two dB levels LO,HI with LO < HI"),
    (["--db-range=-25,0", "--input-scale", "amplitude"], "--db-range is for dB values"),
])
def test_db_range_mistakes_are_one_line_errors(tmp_path, args, expected):
    path = write_like(tmp_path / "export.tif", db_stretch(coast_db(), -25, 0), COAST)
    assert_clean_failure(run_cli("colorize", path, "-o", tmp_path / "rgb.tif", *args), expected, tmp_path / "rgb.tif")
