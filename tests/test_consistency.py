"""Issue 12, item 4: the same place gets the same colour wherever a scene is cut, for both bundled models."""
import numpy as np
import pytest
import rasterio

from sarcolor.backends import load_model
from sarcolor.data import load_pair
from sarcolor.infer import to_uint8
from sarcolor.tiling import predict_array

from conftest import FIELDS

MAX_MEAN, MAX_P99 = 1.0, 8.0  # 8-bit levels: issue 12's target, for cuts of a 1024² val scene
# Crops of a 512² example are mostly edge (a 212 px crop): measured up to 1.30 mean / p99 11 there; a
# regression bound, not the target.
SMALL_CROP_MEAN, SMALL_CROP_P99 = 1.5, 12.0


def overlap_difference(model, scene: np.ndarray, crop: tuple[slice, slice]) -> np.ndarray:
    """|colour of the whole scene - colour of a crop of it| (8-bit), on the crop."""
    whole = to_uint8(predict_array(model, scene, multiple=model.multiple)[:3], np.ones(scene.shape, bool))
    part = to_uint8(predict_array(model, scene[crop], multiple=model.multiple)[:3], np.ones(scene[crop].shape, bool))
    return np.abs(whole[:, crop[0], crop[1]].astype(int) - part)


@pytest.fixture(scope="module", params=["default", "smooth"])
def bundled(request):
    return load_model(request.param, "cpu")


@pytest.mark.parametrize("offset", [300, 301])
def test_a_val_scene_and_its_crop_agree(shared_pairs, bundled, offset):
    """Measured: default 0.73 / 0.91 mean (p99 6) at 300 / 301 px, smooth 0.53 / 0.68 (p99 5)."""
    scene = load_pair(shared_pairs, "014").sar.astype(np.float32) / 255.0  # 1024², Texas: town, fields, woodland
    # Two cuts of the scene whose origins differ by `offset` px, as the issue measures them.
    diff = overlap_difference(bundled, scene[:, :724], (slice(None), slice(offset, 724)))
    assert diff.mean() <= MAX_MEAN and np.percentile(diff, 99) <= MAX_P99, (diff.mean(), np.percentile(diff, 99))


@pytest.mark.parametrize("rows, cols", [(slice(0, None), slice(300, None)), (slice(301, None), slice(0, None)), (slice(301, None), slice(300, None))])
def test_an_example_scene_and_its_crop_agree(bundled, rows, cols):
    with rasterio.open(FIELDS) as src:
        scene = src.read(1).astype(np.float32) / 255.0  # a real 512² Sentinel-1 VH crop
    diff = overlap_difference(bundled, scene, (rows, cols))
    assert diff.mean() <= SMALL_CROP_MEAN and np.percentile(diff, 99) <= SMALL_CROP_P99, (diff.mean(), np.percentile(diff, 99))


def test_the_check_sees_a_model_that_depends_on_the_crop_origin():
    """A model that draws a stripe at every 64th column of its input fails both checks: the test can fail."""

    def lattice(batch: np.ndarray) -> np.ndarray:
        out = np.repeat(batch, 3, axis=1) * 0 + 0.5
        out[..., ::64] = 1.0
        return out

    lattice.multiple = 16
    with rasterio.open(FIELDS) as src:
        scene = src.read(1).astype(np.float32) / 255.0
    diff = overlap_difference(lattice, scene, (slice(None), slice(300, None)))
    assert diff.mean() > SMALL_CROP_MEAN or np.percentile(diff, 99) > SMALL_CROP_P99
