"""Issue 21, item 5: the 'unlike the training data' warning on every unfamiliar scene.

The held-back north-India scenes (8-bit JPEG, a coarser pixel, their darkest 5-25 % of pixels at or near 0)
are not ours to ship; their proxies are made here from real scenes the way those are degraded
(experiments/novelty_signals.py), and must be flagged; real scenes read right must not be."""
import json
import sys
import tarfile
from importlib import resources

import numpy as np
import pytest
import rasterio

from conftest import COAST, FIELDS, ROOT, run_cli

from sarcolor.api import colorize
from sarcolor.data import split_ids
from sarcolor.readers.raster import SarReader, open_raster
from sarcolor.novelty import STAT_NAMES, TrainingScenes

sys.path.insert(0, str(ROOT / "experiments"))
from novelty_signals import degrade, write_jpeg  # noqa: E402  (how the proxies are made, shared with the experiment)

NOVEL = "unlike the model's training data"
NEAR_ZERO = "share of pixels near zero"
# (coarser by, share of darkest pixels at 0-2, JPEG quality): the mildest, a middle and the harshest proxy
PROXIES = [(2, 0.05, 80), (3, 0.15, 70), (4, 0.25, 60)]


def scene_warning(path, training_scenes, input_scale="auto") -> str | None:
    with open_raster(path) as src:
        return SarReader(src, input_scale=input_scale).scene_warning(training_scenes)


def proxy(path, grey: np.ndarray, factor: int, dark: float, quality: int, seed: int = 21):
    return write_jpeg(path, degrade(grey, factor, dark, np.random.default_rng(seed)), quality)


def read_grey(path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def test_the_bundled_model_carries_every_statistic(model):
    assert len(model.training_scenes.mean) == len(model.training_scenes.std) == len(STAT_NAMES)


@pytest.mark.parametrize("example", [FIELDS, COAST], ids=["fields", "coast"])
def test_the_examples_are_not_flagged(model, example):
    assert scene_warning(example, model.training_scenes) is None


@pytest.mark.parametrize("example", [FIELDS, COAST], ids=["fields", "coast"])
@pytest.mark.parametrize("factor, dark, quality", PROXIES)
def test_proxies_of_the_held_back_jpeg_scenes_are_flagged(model, tmp_path, example, factor, dark, quality):
    """The proxies degrade amplitude images, and are read as such: auto may read such coarse 8-bit images with a
    floor at 0 as dB stretches, which the held-back scenes may well be."""
    path = proxy(tmp_path / "proxy.jpg", read_grey(example), factor, dark, quality)
    warning = scene_warning(path, model.training_scenes, "normalized")
    assert warning and NOVEL in warning and NEAR_ZERO in warning


def test_the_warning_is_one_line_in_the_log_the_output_tags_and_the_api(model, tmp_path):
    path = proxy(tmp_path / "proxy.jpg", read_grey(FIELDS), *PROXIES[0])
    out = tmp_path / "rgb.tif"
    result = run_cli("colorize", path, "-o", out, check=True)
    lines = [line for line in result.stderr.splitlines() if NOVEL in line]
    assert len(lines) == 1 and NEAR_ZERO in lines[0]
    with rasterio.open(out) as dst:
        assert NEAR_ZERO in dst.tags()["SARCOLOR_WARNING"]
    assert NEAR_ZERO in colorize(read_grey(path), device="cpu").attrs["warnings"]


def test_a_model_file_without_the_near_zero_share_still_warns_as_before(model, tmp_path):
    """Models exported before the statistic was added compare the statistics they have."""
    stored = json.loads(model.training_scenes.to_json())
    old = TrainingScenes(stored["mean"][:-1], stored["std"][:-1])
    assert scene_warning(FIELDS, old) is None
    path = proxy(tmp_path / "proxy.jpg", read_grey(FIELDS), *PROXIES[0])
    assert NEAR_ZERO not in (scene_warning(path, old) or "")
    amplitude = np.maximum(read_grey(FIELDS) / 255.0, 1e-3)
    db = tmp_path / "db.tif"
    with rasterio.open(db, "w", driver="GTiff", width=512, height=512, count=1, dtype="float32") as dst:
        dst.write((20 * np.log10(amplitude)).astype(np.float32), 1)
    assert NOVEL in scene_warning(db, old, "normalized")


def test_real_patches_from_europe_are_not_flagged(model, tmp_path):
    package = pytest.importorskip("bigearthnet_common", reason="bigearthnet-common (test extra) is not installed")
    with resources.as_file(resources.files(package) / "BigEarthNet-S1-Example.tar.bz2") as path, tarfile.open(path) as tar:
        tar.extractall(tmp_path, filter="data")
    patches = sorted(tmp_path.rglob("*.tif"))
    assert patches
    for patch in patches:
        assert scene_warning(patch, model.training_scenes) is None, patch.name


def test_val_scenes_pass_and_their_proxies_are_flagged(model, tmp_path, shared_pairs):
    for scene in split_ids(shared_pairs, "val"):
        sar = shared_pairs / "sar" / f"{scene}.png"
        assert scene_warning(sar, model.training_scenes) is None, scene
        for factor, dark, quality in PROXIES:
            warning = scene_warning(proxy(tmp_path / f"{scene}.jpg", read_grey(sar), factor, dark, quality), model.training_scenes,
                                    "normalized")  # amplitude degraded, as in the test above
            assert warning and NEAR_ZERO in warning, (scene, factor, dark, quality)
