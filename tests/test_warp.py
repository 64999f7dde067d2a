"""The warp onto a map grid: source positions, the bilinear remap of an RGB block with its mask, blocks outside
the data left unwritten."""
import numpy as np
import rasterio
from affine import Affine
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.windows import Window
from scipy import ndimage

from sarcolor.data import load_pair
from sarcolor.warp import SourcePositions, WarpTarget, rgb_block, warp_raster

from conftest import PAIRS


def real_rgb_with_a_hole(path):
    """A real Sentinel-2 RGB crop (256 px) with a masked corner and a masked disc, as a GeoTIFF with its mask."""
    rgb = load_pair(PAIRS, "253_r0_c512").optical
    rows, cols = np.mgrid[: rgb.shape[1], : rgb.shape[2]]
    valid = (rows + cols > 60) & (np.hypot(rows - 150, cols - 120) > 30)
    rgb = rgb * valid
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(
        path, "w", driver="GTiff", width=rgb.shape[2], height=rgb.shape[1], count=3, dtype="uint8",
    ) as dst:
        dst.write(rgb)
        dst.write_mask(valid.astype(np.uint8) * 255)
    return rgb, valid


def exact_bilinear(rgb, valid, rows, cols):
    """Bilinear sampling of the valid pixels only, in float: each pixel the weighted mean of its valid neighbours,
    covered when they hold at least half the weight."""
    sample = [ndimage.map_coordinates(v.astype(np.float64), [rows, cols], order=1, cval=0.0) for v in (valid, *rgb)]
    coverage, bands = sample[0], np.stack(sample[1:])
    return np.rint(bands / np.maximum(coverage, 1e-9)), coverage >= 0.5


def test_an_rgb_block_is_bilinear_sampling_of_the_valid_pixels_within_a_level(tmp_path):
    """Turned by 23 degrees and shifted by a fraction of a pixel: the pixels covered both ways within 1 level of
    exact bilinear sampling of the valid pixels but at the sharpest edges (OpenCV places samples to 1/32 px), the
    masks apart only on the outline."""
    rgb, valid = real_rgb_with_a_hole(tmp_path / "rgb.tif")
    rows, cols = np.mgrid[:240, :240].astype(np.float32)
    turn = np.deg2rad(23)
    src_rows = (np.cos(turn) * (rows - 120) - np.sin(turn) * (cols - 120) + 128.3).astype(np.float32)
    src_cols = (np.sin(turn) * (rows - 120) + np.cos(turn) * (cols - 120) + 127.6).astype(np.float32)
    expected, covered = exact_bilinear(rgb, valid, src_rows, src_cols)
    with rasterio.open(tmp_path / "rgb.tif") as src:
        got, mask = rgb_block(src, Window(0, 0, src.width, src.height), src_rows.copy(), src_cols.copy())
    both = covered & (mask > 0)
    assert 0.5 < both.mean() < 0.9 and ((mask > 0) != covered).mean() < 0.005
    difference = np.abs(got.astype(float) - expected)[:, both]
    assert difference.max() <= 4 and (difference > 1).mean() < 0.01 and difference.mean() < 0.2  # 3, 0.4 %, 0.14
    assert (got[:, mask == 0] == 0).all()


def test_positions_between_the_lattice_follow_a_linear_mapping_exactly():
    """A grid whose source is a plain affine raster: the bilinear interpolation between the exact positions (every
    32 px) is exact, so every pixel centre of every block lands where the transforms put it."""
    crs = CRS.from_epsg(32633)
    src_transform = Affine(10, 0, 500000, 0, -10, 5000000)
    src = type("Src", (), {"crs": crs, "transform": src_transform})()
    dst_transform = Affine(7, 0, 500123, 0, -7, 4999877)
    positions = SourcePositions(src, dict(src_transform=src_transform, src_crs=crs), dst_transform, crs, 300, 200)
    for window in (Window(0, 0, 128, 96), Window(128, 96, 172, 104)):
        rows, cols = positions.block(window)
        r, c = np.mgrid[window.row_off : window.row_off + window.height, window.col_off : window.col_off + window.width]
        xs, ys = dst_transform * (c + 0.5, r + 0.5)
        exact_cols, exact_rows = ~src_transform * (xs, ys)
        np.testing.assert_allclose(rows, exact_rows - 0.5, atol=2e-3)
        np.testing.assert_allclose(cols, exact_cols - 0.5, atol=2e-3)


def test_blocks_wholly_outside_a_turned_swath_are_left_unwritten_and_read_as_masked(tmp_path):
    """A 600 px square turned by 45 degrees through its GCPs: its north-up grid's corners hold no data. Those blocks
    are never written (no bytes in the file) and read back as masked; the swath itself is covered."""
    size, step = 600, 1e-4
    corners = [(0, 0), (0, size), (size, 0), (size, size)]
    gcps = [GroundControlPoint(row=r, col=c, x=10 + (c + r) * step / 2 ** 0.5, y=50 + (r - c) * step / 2 ** 0.5) for r, c in corners]
    data = np.full((3, size, size), 200, np.uint8)
    path = tmp_path / "turned.tif"
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=3, dtype="uint8") as dst:
        dst.write(data)
        dst.gcps = (gcps, CRS.from_epsg(4326))
    out = tmp_path / "warped.tif"
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        warp_raster(path, out, WarpTarget(CRS.from_epsg(4326), step), block=256)
    with rasterio.open(out) as dst:
        mask, red = dst.dataset_mask(), dst.read(1)
        tiles = [(i, j) for i in range(-(-dst.height // 256)) for j in range(-(-dst.width // 256))]
        unwritten = [t for t in tiles if not dst.get_tag_item(f"BLOCK_OFFSET_{t[1]}_{t[0]}", "TIFF", bidx=1)]
    assert dst.width > 800 and 0.45 < (mask > 0).mean() < 0.55
    assert (3, 3) in unwritten and len(unwritten) >= 4  # the four corners (and two partial tiles beside one)
    for i, j in unwritten:
        assert not mask[i * 256 : (i + 1) * 256, j * 256 : (j + 1) * 256].any()
    assert (np.abs(red[mask > 0].astype(int) - 200) <= 1).all()  # 199 on the outline: weight and value rounded apart
