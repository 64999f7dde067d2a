"""Issue 13: the confidence map (expected colour error per pixel) and the 'unlike the training data' warning."""
import json

import numpy as np
import pytest
import rasterio

from conftest import FIELDS, PAIRS, ROOT, read_all, run_cli
from test_cli import assert_clean_failure
from test_io import write_variant

from sarcolor.confidence import ErrorBlocks, legend_rgb, legend_stops
from sarcolor.evaluate import model_predictor
from sarcolor.data import load_split
from sarcolor.novelty import TrainingScenes, scene_statistics


def test_confidence_map_is_written_on_the_same_grid_with_nodata(tmp_path):
    with rasterio.open(FIELDS) as src:
        data = src.read(1).astype(np.float32) / 255
    data[:64] = np.nan
    source = write_variant(tmp_path / "nan.tif", data[None], like=FIELDS, nodata=None)
    out = tmp_path / "rgb.tif"
    run_cli("colorize", source, "-o", out, "--input-scale", "normalized", "--confidence", check=True)
    error_path = tmp_path / "rgb_confidence.tif"
    error, profile = read_all(error_path)
    with rasterio.open(FIELDS) as src, rasterio.open(error_path) as dst:
        assert profile["crs"] == src.crs and profile["transform"] == src.transform
        assert dst.descriptions == ("expected colour error",) and "CIEDE2000" in dst.tags()["unit"]
        assert json.loads(dst.tags()["legend"]) == [[0.0, "#000004"], *[[v, c] for v, c in legend_stops()[1:-1]], [25.0, "#fcfdbf"]]
    assert error.shape == (1, 512, 512) and error.dtype == np.float32
    assert np.isnan(error[0, :64]).all() and np.isfinite(error[0, 64:]).all()
    assert 1 < np.nanmin(error) and np.nanmax(error) < 40  # CIEDE2000 of an 8-bit image: plausible values
    assert_clean_failure(run_cli("colorize", source, "-o", out, "--input-scale", "normalized", "--confidence"), "output exists")
    assert_clean_failure(
        run_cli("colorize", FIELDS, "-o", tmp_path / "c.tif", "--confidence", "--cog"), "leave out --cog", tmp_path / "c.tif",
    )


def test_the_legend_runs_from_sure_to_a_guess_and_no_data_is_black():
    stops = legend_stops()
    assert len(stops) == 11 and stops[5] == (12.5, "#b73779")
    rgb = legend_rgb(np.array([[-1.0, 0.0, 12.5, 25.0, 40.0, np.nan]], np.float32))
    assert rgb.tolist() == [[[0, 0, 4], [0, 0, 4], [183, 55, 121], [252, 253, 191], [252, 253, 191], [0, 0, 0]]]


def test_a_warped_result_has_its_confidence_map_on_the_same_grid(tmp_path):
    """A product lands in its UTM zone by default (and any input with --warp): the confidence map moves with the
    colours: same CRS, transform and size, no data exactly where the image has none, the errors of the input's grid."""
    product = next((ROOT / "tests" / "data" / "grd_mini").glob("*.SAFE"))
    run_cli("colorize", product, "-o", tmp_path / "grid.tif", "--confidence", "--warp", "none", check=True)
    run_cli("colorize", product, "-o", tmp_path / "utm.tif", "--confidence", check=True)
    with rasterio.open(tmp_path / "utm.tif") as image, rasterio.open(tmp_path / "utm_confidence.tif") as confidence:
        assert confidence.crs == image.crs and image.crs.to_epsg() == 32736
        assert (confidence.transform, confidence.shape) == (image.transform, image.shape)
        assert confidence.descriptions == ("expected colour error",) and "CIEDE2000" in confidence.tags()["unit"]
        covered, error = image.dataset_mask() > 0, confidence.read(1)
    assert 0.5 < covered.mean() < 0.95  # the swath's rotated footprint and its no-data border
    assert np.isnan(error[~covered]).all() and np.isfinite(error[covered]).mean() > 0.999
    unwarped = read_all(tmp_path / "grid_confidence.tif")[0]
    assert np.nanmean(error) == pytest.approx(np.nanmean(unwarped), rel=0.02)
    assert np.nanpercentile(error, 90) == pytest.approx(np.nanpercentile(unwarped, 90), rel=0.05)


@pytest.mark.parametrize("split", ["train", "val"])
def test_confidence_map_points_at_the_wrong_colours(model, split):
    """Rank correlation of expected and actual CIEDE2000 over 32x32 blocks of real pairs (0 would be a useless map).
    On the full val split the bundled model reaches 0.70 (docs/evaluation); these 512² crops give 0.32-0.38."""
    blocks = ErrorBlocks.measure(model_predictor(model), load_split(PAIRS, split))
    assert blocks.spearman() > 0.2
    calibration = blocks.calibration()
    bins = blocks.reliability(calibration, bins=4)
    assert bins[-1]["actual"] > bins[0]["actual"] + 1  # the least sure blocks are the most wrong


def test_scene_unlike_the_training_data_is_warned_about(tmp_path, model):
    """A dB file read as already-normalised amplitude is nothing like the training scenes: one warning, in the
    log and in the GeoTIFF's metadata. The fields example, read right, passes."""
    out = tmp_path / "fields.tif"
    result = run_cli("colorize", FIELDS, "-o", out, check=True)
    assert "training data" not in result.stderr
    with rasterio.open(out) as dst:
        assert "SARCOLOR_WARNING" not in dst.tags()
    with rasterio.open(FIELDS) as src:
        amplitude = np.maximum(src.read(1).astype(np.float32) / 255, 1e-3)
    db = write_variant(tmp_path / "db.tif", (20 * np.log10(amplitude))[None], like=FIELDS)
    out = tmp_path / "db_as_normalised.tif"
    result = run_cli("colorize", db, "-o", out, "--input-scale", "normalized", check=True)
    warnings = [line for line in result.stderr.splitlines() if "unlike the model's training data" in line]
    assert len(warnings) == 1 and "share of pixels near zero" in warnings[0]  # all of them: dB values are negative
    with rasterio.open(out) as dst:
        assert "unlike the model's training data" in dst.tags()["SARCOLOR_WARNING"]
    assert "training data" not in run_cli("colorize", db, "-o", tmp_path / "db_rgb.tif", check=True).stderr  # auto reads dB right


def test_training_scene_statistics_travel_with_the_bundled_model(model):
    assert isinstance(model.training_scenes, TrainingScenes)
    for pair in load_split(PAIRS, "val"):
        assert model.training_scenes.warning(scene_statistics(pair.sar / 255.0)) is None
    assert model.training_scenes.warning(scene_statistics(np.full(1000, 0.002))) is not None
