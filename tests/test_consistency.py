"""Issue 12, item 4: the same place gets the same colour wherever a scene is cut, for both bundled models."""
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from sarcolor.backends import load_model
from sarcolor.data import load_pair
from sarcolor.infer import ColorizeOptions, colorize_file, to_uint8
from sarcolor.tiling import predict_array

from conftest import FIELDS

MAX_MEAN, MAX_P99 = 1.0, 8.0  # 8-bit levels: issue 12's target, for cuts of a 1024² val scene
# Crops of a 512² example are mostly edge (a 212 px crop), tiled on its grid: measured up to 1.23 mean /
# p99 12 (default) and 0.87 / 8 (smooth); a regression bound, not the target.
SMALL_CROP_MEAN, SMALL_CROP_P99 = 1.5, 14.0


def overlap_difference(model, scene: np.ndarray, crop: tuple[slice, slice]) -> np.ndarray:
    """|colour of the whole scene - colour of a crop of it| (8-bit), on the crop, each tiled on the scene's grid."""
    whole = to_uint8(predict_array(model, scene, multiple=model.multiple)[:3], np.ones(scene.shape, bool))
    origin = (crop[0].start or 0, crop[1].start or 0)
    part = predict_array(model, scene[crop], multiple=model.multiple, origin=origin)[:3]
    return np.abs(whole[:, crop[0], crop[1]].astype(int) - to_uint8(part, np.ones(scene[crop].shape, bool)))


@pytest.fixture(scope="module", params=["default", "smooth"])
def bundled(request):
    return load_model(request.param, "cpu")


def colorize_cut(tmp_path, model, scene: np.ndarray, col: int) -> np.ndarray:
    """Colourise the cut of an 8-bit scene from column ``col`` on, written as a GeoTIFF on the scene's map
    grid (10 m pixels, UTM 11N) as a user would cut it, through ``colorize_file``; returns its RGB."""
    source, out = tmp_path / f"cut_{col}.tif", tmp_path / f"cut_{col}_rgb.tif"
    cut = scene[:, col:]
    profile = dict(driver="GTiff", width=cut.shape[1], height=cut.shape[0], count=1, dtype="uint8",
                   crs="EPSG:32611", transform=from_origin(500_005 + 10 * col, 3_800_000, 10, 10))
    with rasterio.open(source, "w", **profile) as dst:
        dst.write(cut, 1)
    colorize_file(source, out, model, ColorizeOptions(input_scale="normalized"))
    with rasterio.open(out) as src:
        return src.read([1, 2, 3]).astype(int)


@pytest.mark.parametrize("offset", [300, 301])
def test_two_cuts_of_a_val_scene_agree(tmp_path, shared_pairs, bundled, offset):
    """Measured: default 0.30 / 0.31 mean (p99 4) at 300 / 301 px, smooth 0.25 / 0.26 (p99 4)."""
    scene = load_pair(shared_pairs, "014").sar[:, :724]  # 1024 x 724 of a Texas val scene: town, fields, woodland
    # Two cuts of the scene whose origins differ by `offset` px, as the issue measures them.
    whole, cut = colorize_cut(tmp_path, bundled, scene, 0), colorize_cut(tmp_path, bundled, scene, offset)
    diff = np.abs(whole[:, :, offset:] - cut)
    assert diff.mean() <= MAX_MEAN and np.percentile(diff, 99) <= MAX_P99, (diff.mean(), np.percentile(diff, 99))


@pytest.mark.parametrize("rows, cols", [(slice(0, None), slice(300, None)), (slice(301, None), slice(0, None)), (slice(301, None), slice(300, None))])
def test_an_example_scene_and_its_crop_agree(bundled, rows, cols):
    with rasterio.open(FIELDS) as src:
        scene = src.read(1).astype(np.float32) / 255.0  # a real 512² Sentinel-1 VH crop
    diff = overlap_difference(bundled, scene, (rows, cols))
    assert diff.mean() <= SMALL_CROP_MEAN and np.percentile(diff, 99) <= SMALL_CROP_P99, (diff.mean(), np.percentile(diff, 99))


def test_the_check_sees_a_model_that_depends_on_where_a_crop_ends():
    """A model that paints each tile with the mean of its input (a context as wide as the tile) colours the
    crop's tiles from mirrored ground near the cut, not the real ground: it fails the check."""

    def tile_mean(batch: np.ndarray) -> np.ndarray:
        out = np.repeat(batch, 3, axis=1) * 0 + batch.mean(axis=(1, 2, 3), keepdims=True)
        return np.clip(0.5 + 4 * (out - 0.25), 0, 1)

    tile_mean.multiple = 16
    with rasterio.open(FIELDS) as src:
        scene = src.read(1).astype(np.float32) / 255.0
    diff = overlap_difference(tile_mean, scene, (slice(None), slice(300, None)))
    assert diff.mean() > SMALL_CROP_MEAN or np.percentile(diff, 99) > SMALL_CROP_P99, (diff.mean(), np.percentile(diff, 99))
