"""With a reference: the confidence map calibrated on its held-out clear places, and one fit shared by the scenes of
a time series."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import rasterio
from skimage.color import deltaE_ciede2000, rgb2lab

from conftest import run_cli
from sarcolor.infer import ColorizeOptions, colorize_file, confidence_path
from sarcolor.reference.confidence import monotone_map
from test_reference import PUNJAB, PUNJAB_JUNE, PUNJAB_JUNE_SAR, PUNJAB_SAR, clouded_pair, read_rgb  # noqa: F401 (a fixture)


def hidden_error(output, optical: np.ndarray, hidden: np.ndarray) -> tuple[float, float]:
    """The mean real CIEDE2000 of ``output`` on the ``hidden`` pixels, and the mean its confidence map expects there."""
    de = deltaE_ciede2000(rgb2lab(optical / 255.0), rgb2lab(read_rgb(output) / 255.0))
    with rasterio.open(confidence_path(output)) as src:
        expected = src.read(1)
    return float(de[hidden].mean()), float(expected[hidden].mean())


def test_with_a_reference_the_confidence_map_expects_the_error_it_makes_under_the_clouds(tmp_path, clouded_pair, model):
    """The Texas pair, half of its optical hidden by a real cloud shape: the map calibrated on the reference's
    held-out clear places expects 13.1 where the error is 13.4 CIEDE2000; the model's own calibration 11.7 (detail 1)."""
    sar, reference, optical, hidden = clouded_pair
    colorize_file(sar, tmp_path / "fitted.tif", model, ColorizeOptions(reference=reference, confidence=True, detail=1.0))
    colorize_file(sar, tmp_path / "own.tif", model, ColorizeOptions(confidence=True, detail=1.0))
    real, expected = hidden_error(tmp_path / "fitted.tif", optical, hidden)
    _, own = hidden_error(tmp_path / "own.tif", optical, hidden)
    assert abs(expected - real) < 0.05 * real < abs(own - real), (real, expected, own)
    with rasterio.open(tmp_path / "fitted.tif") as src:
        assert "calibrated to CIEDE2000 on" in src.tags()["SARCOLOR_REFERENCE_CONFIDENCE"]
    with rasterio.open(confidence_path(tmp_path / "fitted.tif")) as src:
        assert "reference held out from the colour fit" in src.tags()["unit"]


def test_the_calibration_is_monotone_and_follows_the_measured_errors():
    rng = np.random.default_rng(0)
    predicted = rng.uniform(0, 40, 5000)
    measured = 0.5 * predicted + 3 + rng.normal(0, 4, 5000)
    levels, ciede2000 = monotone_map(predicted, measured)
    assert np.all(np.diff(levels) > 0) and np.all(np.diff(ciede2000) >= 0)
    assert np.interp(10.0, levels, ciede2000) == pytest.approx(8.0, abs=1.0)
    assert np.interp(30.0, levels, ciede2000) == pytest.approx(18.0, abs=1.0)


@pytest.fixture()
def punjab_series(tmp_path):
    """The Punjab SAR of 2020-06-07 and of 2020-09-03 in one folder (a time series)."""
    if not PUNJAB_SAR.is_file():
        pytest.skip(f"s1s2-world not found at {PUNJAB}")
    folder = tmp_path / "series"
    folder.mkdir()
    for source in (PUNJAB_JUNE_SAR, PUNJAB_SAR):
        shutil.copy(source, folder / f"{source.parent.name}_VH.tif")
    return folder


def unchanged_difference(outputs: list, folder) -> float:
    """The mean CIEDE2000 between the two dates' outputs where their VH kept its level (within 1 dB, 7 px mean)."""
    from scipy import ndimage

    june, september = (rasterio.open(path).read(1).astype(np.float64) for path in sorted(folder.iterdir()))
    unchanged = np.abs(ndimage.uniform_filter(september - june, 7)) < 1.0
    a, b = (rgb2lab(read_rgb(path) / 255.0) for path in outputs)
    return float(deltaE_ciede2000(a, b)[unchanged].mean())


def test_a_folder_of_dates_with_one_reference_shares_one_fit(tmp_path, punjab_series, model):
    """Punjab, June and September radar, the June optical as the one reference: one fit made on both dates' clear
    places colours the places whose radar kept its level more alike (1.9 CIEDE2000 between the dates, at the
    reference's default detail 0) than a fit per scene (2.7)."""
    run_cli("colorize", punjab_series, "-o", tmp_path / "out", "--reference", PUNJAB_JUNE, check=True)
    shared = sorted((tmp_path / "out").iterdir())
    assert len(shared) == 2
    for path in shared:
        with rasterio.open(path) as src:
            assert "of 2 SAR scenes, one fit for all" in src.tags()["SARCOLOR_REFERENCE_FIT"]
    own = []
    for scene in sorted(punjab_series.iterdir()):
        own.append(tmp_path / f"own_{scene.name}")
        colorize_file(scene, own[-1], model, ColorizeOptions(reference=PUNJAB_JUNE))
    together, apart = unchanged_difference(shared, punjab_series), unchanged_difference(own, punjab_series)
    assert together < apart - 0.4, (together, apart)
