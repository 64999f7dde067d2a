import numpy as np
import pytest
import rasterio

from sarcolor.backends import load_model
from sarcolor.data import load_pair
from sarcolor.tiling import AxisPlan, blend_tiles, hann_window, plan_axis, plan_tiles, predict_array

from conftest import FIELDS, PAIRS


def real_sar() -> np.ndarray:
    return load_pair(PAIRS, "253_r0_c512").sar.astype(np.float32) / 255.0


def identity(batch: np.ndarray) -> np.ndarray:
    return batch.copy()


@pytest.mark.parametrize("shape,tile,overlap", [((256, 256), 64, 16), ((200, 137), 64, 32), ((256, 256), 512, 64), ((97, 250), 48, 0)])
def test_identity_model_through_tiler_returns_input(shape, tile, overlap):
    sar = real_sar()[: shape[0], : shape[1]]
    out = predict_array(identity, sar, tile=tile, overlap=overlap, multiple=16)
    assert out.shape == (1, *shape)
    np.testing.assert_allclose(out[0], sar, rtol=0, atol=1e-6)
    assert np.array_equal(np.rint(out[0] * 255), np.rint(sar * 255))


def test_rows_are_written_once_top_to_bottom_with_validity():
    sar = real_sar()
    writes = []

    def read(window):
        r, c, h, w = window.row_off, window.col_off, window.height, window.width
        out = np.zeros((h, w), np.float32)
        valid = np.zeros((h, w), bool)
        r0, c0, r1, c1 = max(r, 0), max(c, 0), min(r + h, 256), min(c + w, 256)
        out[r0 - r : r1 - r, c0 - c : c1 - c] = sar[r0:r1, c0:c1]
        valid[r0 - r : r1 - r, c0 - c : c1 - c] = sar[r0:r1, c0:c1] > 0.5
        return out, valid

    blend_tiles(identity, read, lambda row, v, ok: writes.append((row, v, ok)), plan_tiles(256, 256, 64, 16))
    rows = [w[0] for w in writes]
    assert rows == sorted(rows) and rows[0] == 0
    assert sum(w[1].shape[1] for w in writes) == 256
    np.testing.assert_array_equal(np.concatenate([w[2] for w in writes]), sar > 0.5)


def test_plan_covers_every_pixel_inside_a_tile():
    for length in (1, 15, 120, 511, 512, 513, 1000, 4097):
        plan = AxisPlan(length, 256, 32)
        starts = plan.offsets
        assert starts[0] < 0 and starts[-1] + plan.tile > length
        assert all(b - a == plan.stride for a, b in zip(starts, starts[1:]))


@pytest.mark.parametrize("origin", [0, 1, 13, 31, 300, -301, 50_013])
def test_tiles_start_on_the_map_grid_whatever_the_origin(origin):
    """Tiles of 256 px with 64 px overlap sit every 192 px of the map grid, starting 32 px before a grid line."""
    for length in (15, 100, 513, 4097):
        plan = plan_axis(length, 256, 64, 32, origin)
        starts = plan.offsets
        assert all((origin + s + 32) % 192 == 0 for s in starts), starts
        assert -32 - 191 <= starts[0] <= -32 and starts[-1] + plan.tile >= length + 32
        assert plan.tile % 32 == 0 and (plan.tile == 256 or len(starts) == 1)


def test_overlap_is_rounded_to_the_model_lattice_but_never_dropped():
    assert plan_axis(2000, 512, 48, 32).overlap == 32  # every tile on the 32-px lattice
    assert plan_axis(2000, 512, 64, 256).overlap == 64  # pix2pix's 256-px lattice: keep blending


def test_a_lattice_model_gives_crops_of_a_scene_the_same_values_once_anchored():
    """A model whose output has a stripe every 32nd column of its input: crops agree only when their tiles
    start on the map grid (the origin given), not on their first pixel."""

    def lattice(batch: np.ndarray) -> np.ndarray:
        out = batch.copy()
        out[..., ::32] = 1.0
        return out

    sar = real_sar()
    whole = predict_array(lattice, sar, tile=128, overlap=64, multiple=32)
    anchored = predict_array(lattice, sar[:, 101:], tile=128, overlap=64, multiple=32, origin=(0, 101))
    unanchored = predict_array(lattice, sar[:, 101:], tile=128, overlap=64, multiple=32)
    np.testing.assert_allclose(anchored, whole[:, :, 101:], atol=1e-6)
    assert np.abs(unanchored - whole[:, :, 101:]).mean() > 0.01


def test_hann_window_is_positive_and_peaks_in_the_centre():
    w = hann_window(64, 32)
    assert w.min() > 0 and w.shape == (64, 32)
    assert w[31:33, 15:17].min() == pytest.approx(w.max(), rel=1e-2)


def test_bad_tile_size_is_rejected():
    with pytest.raises(ValueError, match="multiple of 16"):
        plan_tiles(100, 100, 100, 8, multiple=16)
    with pytest.raises(ValueError, match=r"overlap must be in \[0, tile\)"):
        plan_tiles(100, 100, 64, 64)


@pytest.mark.parametrize("name", ["default", "smooth"])
def test_tiled_run_matches_single_tile_run_away_from_borders(name):
    model = load_model(name)
    with rasterio.open(FIELDS) as src:
        sar = src.read(1).astype(np.float32) / 255.0  # a real 512^2 Sentinel-1 VH crop
    single = predict_array(model, sar, tile=576, overlap=64, multiple=model.multiple)[:3]
    # 3 x 3 tiles of 256 px: the model's context reaches ~100 px, so each tile sees less than a
    # single run does near its edges; blending keeps the difference below 1 DN on average.
    tiled = predict_array(model, sar, tile=256, overlap=64, multiple=model.multiple)[:3]
    inner = (slice(None), slice(32, -32), slice(32, -32))
    diff = np.abs(single[inner] - tiled[inner])
    assert diff.mean() < 0.005, diff.mean()
    assert np.percentile(diff, 99) < 0.03


def position_model(tile_bias: float = 0.2):
    """A model that paints where it is in its tile (as a CNN's padding does): input + a ramp per tile."""

    def model(batch: np.ndarray) -> np.ndarray:
        h, w = batch.shape[-2:]
        ramp = (np.add.outer(np.arange(h) / h, np.arange(w) / w) * tile_bias / 2).astype(np.float32)
        return batch + ramp

    return model


@pytest.mark.parametrize("tile,overlap", [(64, 32), (128, 64)])
def test_blending_leaves_no_jump_at_tile_boundaries(tile, overlap):
    """Issue 14: a hard-cut mosaic (weight 1 in each tile's centre, ~0 in its outer eighth) passed every test."""
    sar = real_sar()[:300, :300]
    bias = predict_array(position_model(), sar, tile=tile, overlap=overlap, multiple=16)[0] - sar
    # Each tile's own ramp rises 0.1 / tile per pixel along an axis; a cut between tiles jumps by
    # 0.01-0.05. Blended, the bias moves from one tile's ramp to the next over the overlap, in steps
    # no larger than the ramp's own.
    for axis in (0, 1):
        steps = np.abs(np.diff(bias, axis=axis))
        assert steps.max() < 2 * 0.1 / tile, (axis, steps.max())
