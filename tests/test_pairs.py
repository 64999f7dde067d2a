"""Issue 13: `sarcolor pairs` (your rasters -> a pairs folder) and `sarcolor finetune` (adapt, export)."""
import json
import shutil

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.warp import Resampling, calculate_default_transform, reproject

from conftest import PAIRS, run_cli
from test_cli import assert_clean_failure

ORIGIN = from_origin(-13_255_000.0, 4_034_000.0, 10.0, 10.0)  # EPSG:3395, southern California, 10 m
MERCATOR = CRS.from_epsg(3395)


def example_pair(pair_id: str = "014_r512_c0") -> tuple[np.ndarray, np.ndarray]:
    with rasterio.open(PAIRS / "sar" / f"{pair_id}.png") as s, rasterio.open(PAIRS / "opt" / f"{pair_id}.png") as o:
        return s.read(1), o.read()


def write_geotiff(path, data, crs=MERCATOR, transform=ORIGIN, nodata=None):
    bands = data if data.ndim == 3 else data[None]
    with rasterio.open(path, "w", driver="GTiff", width=bands.shape[2], height=bands.shape[1], count=bands.shape[0],
                       dtype=bands.dtype, crs=crs, transform=transform, nodata=nodata) as dst:
        dst.write(bands)
    return path


def optical_in_utm_at_20m(path, rgb):
    """The optical image as another provider would ship it: UTM zone 11N, 20 m pixels."""
    utm = CRS.from_epsg(32611)
    side = rgb.shape[1]
    transform, width, height = calculate_default_transform(MERCATOR, utm, side, side, *rasterio.transform.array_bounds(side, side, ORIGIN), resolution=20)
    out = np.zeros((3, height, width), np.uint8)
    reproject(rgb, out, src_transform=ORIGIN, src_crs=MERCATOR, dst_transform=transform, dst_crs=utm, resampling=Resampling.average)
    return write_geotiff(path, out, utm, transform, nodata=0)


def read_split(folder):
    return json.loads((folder / "split.json").read_text())


def test_pairs_reprojects_the_optical_onto_the_sar_grid(tmp_path):
    sar, rgb = example_pair()
    sar_path = write_geotiff(tmp_path / "s1.tif", sar)
    optical_path = optical_in_utm_at_20m(tmp_path / "s2.tif", rgb)
    out = tmp_path / "pairs"
    run_cli("pairs", sar_path, optical_path, "-o", out, "--tile", "64", "--block-tiles", "2", "--val-fraction", "0.25", check=True)
    split = read_split(out)
    assert len(split["train"]) + len(split["val"]) >= 12 and split["val"] and not set(split["train"]) & set(split["val"])
    # Val is whole blocks of 2x2 tiles: no val tile touches a train tile's block.
    block = lambda tile_id: tuple(int(v) // 128 for v in tile_id.replace("r", "").split("_c"))  # noqa: E731
    assert not {block(t) for t in split["val"]} & {block(t) for t in split["train"]}
    for tile_id in split["train"] + split["val"]:
        row, col = (int(v) for v in tile_id.replace("r", "").split("_c"))
        with rasterio.open(out / "sar" / f"{tile_id}.png") as s, rasterio.open(out / "opt" / f"{tile_id}.png") as o:
            np.testing.assert_array_equal(s.read(1), sar[row : row + 64, col : col + 64])  # uint8: already the convention
            back = o.read().astype(float)
        original = rgb[:, row : row + 64, col : col + 64].astype(float)
        for channel in range(3):  # the same place, blurred by the 20 m round trip, rescaled by its quantile
            assert np.corrcoef(back[channel].ravel(), original[channel].ravel())[0, 1] > 0.85


def test_pairs_from_folders_of_plain_images_split_by_file(tmp_path):
    for kind in ("sar", "opt"):
        (tmp_path / kind).mkdir()
        for pair_id in ("014_r512_c0", "253_r0_c512", "003_r384_c384"):
            shutil.copy(PAIRS / kind / f"{pair_id}.png", tmp_path / kind / f"{pair_id}.png")
    out = tmp_path / "pairs"
    run_cli("pairs", tmp_path / "sar", tmp_path / "opt", "-o", out, "--tile", "128", check=True)
    split = read_split(out)
    files = lambda ids: {i.rsplit("_r", 1)[0].rsplit("_r", 1)[0] for i in ids}  # noqa: E731
    assert len(split["train"]) == 8 and len(split["val"]) == 4 and not files(split["train"]) & files(split["val"])
    assert_clean_failure(run_cli("-q", "pairs", tmp_path / "sar", tmp_path / "opt", "-o", out), "output exists")


def test_pairs_drops_nodata_and_cloud_tiles(tmp_path):
    sar, rgb = example_pair()
    sar = sar.astype(np.float32) / 255
    sar[:64, :] = np.nan  # the first row of tiles has no SAR
    rgb = rgb.copy()
    rgb[:, 192:, :] = 255  # the last row of tiles is cloud
    sar_path = write_geotiff(tmp_path / "s1.tif", sar)
    optical_path = write_geotiff(tmp_path / "s2.tif", rgb)
    out = tmp_path / "pairs"
    result = run_cli("pairs", sar_path, optical_path, "-o", out, "--tile", "64", "--block-tiles", "1", "--input-scale", "normalized", check=True)
    assert "dropped: 4 for nodata, 4 for cloud" in " ".join(result.stderr.split())
    split = read_split(out)
    assert sorted({int(t.split("_c")[0][1:]) for t in split["train"] + split["val"]}) == [64, 128]


def test_pairs_user_errors_are_one_line(tmp_path):
    sar, rgb = example_pair()
    sar_png, small_opt = tmp_path / "s1.png", tmp_path / "s2.png"
    shutil.copy(PAIRS / "sar" / "014_r512_c0.png", sar_png)
    with rasterio.open(small_opt, "w", driver="PNG", width=200, height=200, count=3, dtype="uint8") as dst:
        dst.write(rgb[:, :200, :200])
    out = tmp_path / "pairs"
    assert_clean_failure(run_cli("-q", "pairs", sar_png, small_opt, "-o", out), "mismatched sizes", out)
    sar_path = write_geotiff(tmp_path / "s1.tif", sar)
    far = write_geotiff(tmp_path / "far.tif", rgb, transform=from_origin(2_000_000.0, 6_000_000.0, 10.0, 10.0))
    assert_clean_failure(run_cli("-q", "pairs", sar_path, far, "-o", out), "do not overlap", out)
    near = write_geotiff(tmp_path / "s2.tif", rgb)
    assert_clean_failure(run_cli("-q", "pairs", sar_path, near, "-o", out, "--tile", "256"), "too few usable tiles", out)
    assert_clean_failure(run_cli("-q", "pairs", sar_path, tmp_path / "s1.tif", "-o", out), "has 1 bands: say which are red", out)
    assert_clean_failure(run_cli("-q", "pairs", sar_path, near, "-o", out, "--rgb-bands", "3,2"), "need three bands", out)
    assert not list(tmp_path.glob(".pairs.*"))


def test_finetune_adapts_and_exports_a_model_colorize_can_use(tmp_path):
    pytest.importorskip("torch", reason="finetune needs the train extra")
    out = tmp_path / "mine.onnx"
    run_cli("finetune", "--data", PAIRS, "-o", out, "--minutes", "0.15", check=True)
    config = (tmp_path / "mine_run" / "config.yaml").read_text()
    assert f"root: {PAIRS}" in config and "colour_head" in config
    from sarcolor.backends import load_model

    mine, shipped = load_model(out), load_model("default")
    assert mine.has_error and mine.training_scenes is not None
    assert mine.error_calibration or mine.error_uncalibrated  # calibrated on val, or saying why not
    sar, optical = example_pair()  # a val pair: the run keeps the weights that do best there, the start included
    batch = (sar[None, None, :256, :256] / 255).astype(np.float32)
    error = [np.mean((model(batch)[0, :3] - optical[:, :256, :256] / 255) ** 2) for model in (mine, shipped)]
    assert error[0] <= error[1] * 1.01
    run_cli("colorize", PAIRS / "sar" / "014_r512_c0.png", "-o", tmp_path / "x.png", "--model", out, check=True)
    assert_clean_failure(run_cli("finetune", "--data", PAIRS, "-o", out, "--minutes", "0.1"), "output exists")
    assert_clean_failure(run_cli("finetune", "--data", PAIRS, "-o", tmp_path / "y.onnx", "--from", "nothing"), "not a bundled model name")
