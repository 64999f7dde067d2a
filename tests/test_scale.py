"""--input-scale auto cannot be silently wrong (issue 21): metadata first, then values, refused when unsure."""
from __future__ import annotations

import tarfile
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import rasterio

from sarcolor.errors import SarcolorError
from sarcolor.infer import ColorizeOptions, colorize_file
from sarcolor.readers.raster import SarReader, open_raster
from sarcolor.scale import RasterMetadata, decide_scale, values_scale

from conftest import COAST, ROOT, read_all, run_cli
from test_readers import FIXTURE

PYROSAR_DB = ROOT.parent / "shared" / "data" / "s1-products" / "S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif"
DN_GAIN = 500.0  # about a GRD's sigma calibration constant: DN = sqrt(sigma0) * 500


def units_of(sigma0: np.ndarray) -> dict[str, np.ndarray]:
    """One scene (linear sigma0) as analysts get it: amplitude, linear power, dB and GRD-like uint16 DN."""
    amplitude = np.sqrt(sigma0)
    return {
        "amplitude": amplitude.astype(np.float32),
        "power": sigma0.astype(np.float32),
        "db": (10 * np.log10(np.maximum(sigma0, 1e-6))).astype(np.float32),
        "dn": np.clip(np.rint(amplitude * DN_GAIN), 1, 65535).astype(np.uint16),
    }


def write_like(path: Path, data: np.ndarray, like: Path) -> Path:
    with rasterio.open(like) as src:
        profile = src.profile.copy()
    profile.update(count=1, dtype=str(data.dtype), nodata=None)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data[None])
    return path


def coast_sigma0() -> np.ndarray:
    """The coast example's real texture as sigma0, its median at -18 dB (a typical VH land level); no zeros."""
    return np.maximum(FIXTURE.example_sigma0(), 10 ** -3.5)


def colours_by_unit(tmp_path: Path, sigma0: np.ndarray, like: Path, model) -> tuple[dict, dict]:
    outputs, decided = {}, {}
    for unit, data in units_of(sigma0).items():
        path = write_like(tmp_path / f"scene_{len(outputs)}.tif", data, like)  # names that say nothing
        result = colorize_file(path, tmp_path / f"rgb_{unit}.tif", model, ColorizeOptions())
        outputs[unit], decided[unit] = read_all(result.output)[0].astype(np.int16), result.input_scale
    return outputs, decided


def test_one_real_scene_in_four_units_gives_the_same_colours_under_auto(tmp_path, model):
    outputs, decided = colours_by_unit(tmp_path, coast_sigma0(), COAST, model)
    assert decided == {"amplitude": "amplitude", "power": "intensity", "db": "db", "dn": "amplitude"}
    for unit in ("power", "db", "dn"):
        assert np.abs(outputs[unit] - outputs["amplitude"]).mean() <= 1.0  # 1/255


@pytest.fixture(scope="module")
def bigearthnet_vh(tmp_path_factory) -> list[Path]:
    package = pytest.importorskip("bigearthnet_common", reason="bigearthnet-common (test extra) is not installed")
    folder = tmp_path_factory.mktemp("bigearthnet")
    with resources.as_file(resources.files(package) / "BigEarthNet-S1-Example.tar.bz2") as path, tarfile.open(path) as tar:
        tar.extractall(folder, filter="data")
    return sorted(folder.rglob("*_VH.tif"))


def test_real_sigma0_patches_in_four_units_give_the_same_colours_under_auto(tmp_path, model, bigearthnet_vh):
    """Real calibrated VH backscatter (BigEarthNet's sigma0 in dB), each patch written in every unit."""
    for i, patch in enumerate(bigearthnet_vh):
        with rasterio.open(patch) as src:
            sigma0 = 10 ** (src.read(1).astype(np.float64) / 10)
        folder = tmp_path / str(i)
        folder.mkdir()
        outputs, decided = colours_by_unit(folder, sigma0, patch, model)
        assert decided == {"amplitude": "amplitude", "power": "intensity", "db": "db", "dn": "amplitude"}, patch.name
        for unit in ("power", "db", "dn"):
            assert np.abs(outputs[unit] - outputs["amplitude"]).mean() <= 1.0, (patch.name, unit)


def decision(data: np.ndarray, **metadata) -> tuple[str, str, str | None]:
    result = decide_scale(str(data.dtype), data.ravel(), RasterMetadata(**metadata))
    return result.scale, result.reason, result.warning


@pytest.mark.parametrize("name, unit, expected", [
    ("S1A_IW_20180128T161201_DVP_RTC30_G_gpuned_FD6A_VH.tif", "power", "intensity"),
    ("S1A_IW_20180128T161201_DVP_RTC30_G_gauned_FD6A_VH.tif", "amplitude", "amplitude"),
    ("S1A_IW_20180128T161201_DVP_RTC30_G_gdufem_FD6A_VH.tif", "db", "db"),
    ("OPERA_L2_RTC-S1_T042-088905-IW1_20231007T115536Z_20231009T204112Z_S1A_30_v1.0_VH.tif", "power", "intensity"),
    ("S1A__IW___A_20150309T173017_VH_grd_mli_geo_norm_db.tif", "db", "db"),
])
def test_producers_file_names_decide_the_scale(name, unit, expected):
    scale, reason, warning = decision(units_of(coast_sigma0())[unit], name=name)
    assert scale == expected and name in reason and warning is None


def test_band_descriptions_and_unit_tags_decide_the_scale():
    units = units_of(coast_sigma0())
    assert decision(units["db"], name="x.tif", description="Sigma0_VH_db")[0] == "db"
    assert decision(units["amplitude"], name="x.tif", description="Amplitude_VH")[0] == "amplitude"
    assert decision(units["power"], name="x.tif", units="linear power")[0] == "intensity"
    assert decision(units["power"], name="x.tif", tags={"units": "m2/m2"})[0] == "intensity"
    # A bare "sigma0" is weak: GEE exports in dB are often named so, and the values decide.
    scale, reason, _ = decision(units["db"], name="S1_sigma0_VH.tif")
    assert scale == "db" and "the values decide" in reason


def test_metadata_the_values_contradict_is_refused_or_flagged():
    units = units_of(coast_sigma0())
    with pytest.raises(SarcolorError, match="says dB, but dB values of a scene are mostly negative"):
        decision(units["power"], name="vh_db.tif")
    with pytest.raises(SarcolorError, match="says linear amplitude, but 100% of the values are negative"):
        decision(units["db"], name="x.tif", description="Amplitude_VH")
    with pytest.raises(SarcolorError, match="metadata disagrees"):
        decision(units["power"], name="vh_amplitude.tif", units="dB")
    scale, _, warning = decision(units["power"], name="x.tif", description="Amplitude_VH")
    assert scale == "amplitude" and "the values look like linear power" in warning


def test_values_that_do_not_settle_it_are_refused():
    sigma0 = coast_sigma0()
    with pytest.raises(SarcolorError, match="not calibrated backscatter.*give --input-scale amplitude or --input-scale intensity"):
        values_scale("float32", (np.sqrt(sigma0) * DN_GAIN).astype(np.float32).ravel(), "dn.tif")
    with pytest.raises(SarcolorError, match="neither dB nor dB x 10 or x 100"):
        values_scale("int16", np.array([-5, -3, 400], np.int16), "scaled.tif")


def test_power_read_as_amplitude_was_the_issue_and_is_now_read_as_power(tmp_path):
    path = write_like(tmp_path / "rtc.tif", units_of(coast_sigma0())["power"], COAST)
    result = run_cli("colorize", path, "-o", tmp_path / "rgb.tif", check=True)
    assert "input scale auto -> intensity: speckle: local variation" in " ".join(result.stderr.split())


@pytest.mark.parametrize("unit, forced, expected", [
    ("power", "amplitude", "the values look like linear power"),
    ("amplitude", "intensity", "the values look like linear amplitude"),
    ("db", "normalized", "of the values are negative"),
])
def test_a_forced_wrong_scale_is_flagged_in_the_log_and_the_output(tmp_path, unit, forced, expected):
    path = write_like(tmp_path / "scene.tif", units_of(coast_sigma0())[unit], COAST)
    out = tmp_path / "rgb.tif"
    result = run_cli("colorize", path, "-o", out, "--input-scale", forced, check=True)
    assert f"--input-scale {forced} looks wrong" in result.stderr and expected in " ".join(result.stderr.split())
    with rasterio.open(out) as dst:
        assert f"--input-scale {forced} looks wrong" in dst.tags()["SARCOLOR_WARNING"]
    right = run_cli("colorize", path, "-o", tmp_path / "auto.tif", check=True)
    assert "looks wrong" not in right.stderr and "training data" not in right.stderr


def test_uncalibrated_floats_are_read_by_their_speckle(tmp_path):
    """Digital-number-like floats (amplitude x 500): neither level nor spread tells, the speckle does."""
    path = write_like(tmp_path / "scene.tif", (np.sqrt(coast_sigma0()) * DN_GAIN).astype(np.float32), COAST)
    result = run_cli("colorize", path, "-o", tmp_path / "rgb.tif", check=True)
    assert "input scale auto -> amplitude: speckle: local variation" in " ".join(result.stderr.split())
    run_cli("colorize", path, "-o", tmp_path / "forced.tif", "--input-scale", "amplitude", check=True)
    np.testing.assert_array_equal(read_all(tmp_path / "rgb.tif")[0], read_all(tmp_path / "forced.tif")[0])


def test_the_real_pyrosar_db_scene_is_read_as_db_from_its_name():
    if not PYROSAR_DB.is_file():
        pytest.skip(f"real pyroSAR scene not found at {PYROSAR_DB} (../shared/data/s1-products)")
    with open_raster(PYROSAR_DB) as src:
        reader = SarReader(src)
    assert reader.scale_decision.scale == "db" and "file name" in reader.scale_decision.reason
