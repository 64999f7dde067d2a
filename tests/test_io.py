import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from sarcolor.errors import SarcolorError
from sarcolor.readers.raster import SarReader, open_raster
from sarcolor.scale import to_amplitude
from sarcolor.scale import values_scale

from conftest import COAST, PAIRS


def write_variant(path, data, like=COAST, **profile_updates):
    with rasterio.open(like) as src:
        profile = src.profile.copy()
    profile.update(count=data.shape[0], dtype=str(data.dtype), **profile_updates)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def example_normalised() -> np.ndarray:
    with rasterio.open(COAST) as src:
        return src.read(1).astype(np.float32) / 255.0


def test_uint8_is_read_as_already_normalised():
    with open_raster(COAST) as src:
        reader = SarReader(src)
        x, valid = reader.read(Window(0, 0, 512, 512))
    assert reader.scaling.scale == "normalized" and reader.scaling.reference == 1.0
    np.testing.assert_allclose(x, example_normalised(), atol=1e-7)
    assert valid.all()


def test_db_sigma0_is_detected_and_converted_back_to_normalised_amplitude(tmp_path):
    amplitude = example_normalised() * 0.37  # any scene scale: the quantile removes it
    db = np.where(amplitude > 0, 20 * np.log10(np.maximum(amplitude, 1e-6)), -60).astype(np.float32)
    path = write_variant(tmp_path / "db.tif", db[None])
    with open_raster(path) as src:
        reader = SarReader(src)
        x, _ = reader.read(Window(0, 0, 512, 512))
    assert reader.scaling.scale == "db"
    expected = np.clip(amplitude / np.quantile(amplitude, 0.99), 0, 1)
    np.testing.assert_allclose(x, expected, atol=2e-3)


def test_intensity_and_uint16_amplitude(tmp_path):
    amplitude = example_normalised()
    uint16 = np.rint(amplitude * 4000 + 1).astype(np.uint16)
    with open_raster(write_variant(tmp_path / "u16.tif", uint16[None])) as src:
        reader = SarReader(src)
        assert reader.scaling.scale == "amplitude"
        assert reader.scaling.reference == pytest.approx(np.quantile(uint16.astype(np.float32), 0.99), rel=1e-3)
    intensity = (amplitude * 0.2) ** 2
    with open_raster(write_variant(tmp_path / "int.tif", intensity[None].astype(np.float32))) as src:
        reader = SarReader(src, input_scale="intensity")
        x, _ = reader.read(Window(0, 0, 512, 512))
    np.testing.assert_allclose(x, np.clip(amplitude / np.quantile(amplitude, 0.99), 0, 1), atol=1e-3)


def test_nan_and_nodata_are_invalid_and_left_out_of_the_quantile(tmp_path):
    amplitude = example_normalised()
    data = amplitude.copy()
    data[:100] = np.nan
    data[:, :50] = -9999
    path = write_variant(tmp_path / "nan.tif", data[None], nodata=-9999)
    with open_raster(path) as src:
        reader = SarReader(src, input_scale="amplitude")
        x, valid = reader.read(Window(-10, -10, 532, 532))
    assert reader.scaling.reference == pytest.approx(np.quantile(amplitude[100:, 50:], 0.99), rel=1e-6)
    assert not valid[:110].any() and not valid[:, :60].any() and valid[110:522, 60:522].all()
    assert not valid[522:].any()  # outside the image
    assert np.isfinite(x).all()


def test_uint16_zero_is_grd_nodata(tmp_path):
    data = np.rint(example_normalised() * 1000 + 1).astype(np.uint16)
    data[:, :20] = 0
    with open_raster(write_variant(tmp_path / "grd.tif", data[None])) as src:
        _, valid = SarReader(src).read(Window(0, 0, 512, 512))
    assert not valid[:, :20].any() and valid[:, 20:].all()


def test_values_alone_decide_the_plain_cases():
    assert values_scale("uint8", np.array([3, 255, 255])).scale == "normalized"  # the clip at 255
    assert values_scale("float32", np.array([-12.5, 3.0])).scale == "db"
    with pytest.raises(SarcolorError, match="amplitude or power"):  # uncalibrated floats without speckle: nothing tells
        values_scale("float32", np.array([0.1, 2.0]))
    assert values_scale("uint16", np.array([100, 120])).scale == "amplitude"
    np.testing.assert_allclose(to_amplitude(np.array([-20.0, 0.0]), "db", "float32"), [0.1, 1.0], rtol=1e-6)


def test_grey_rgb_png_is_accepted_and_colour_png_refused(tmp_path):
    grey = (example_normalised() * 255).astype(np.uint8)
    grey_rgb = tmp_path / "grey.png"
    with rasterio.open(grey_rgb, "w", driver="PNG", width=512, height=512, count=3, dtype="uint8") as dst:
        dst.write(np.stack([grey] * 3))
    with open_raster(grey_rgb) as src:
        x, _ = SarReader(src).read(Window(0, 0, 512, 512))
    np.testing.assert_allclose(x, grey / 255.0, atol=1e-7)
    with pytest.raises(SarcolorError, match="colour image"):
        with open_raster(PAIRS / "opt" / "014_r512_c0.png") as src:
            SarReader(src)


def test_band_out_of_range_and_all_nan(tmp_path):
    with pytest.raises(SarcolorError, match="has 1 band"):
        with open_raster(COAST) as src:
            SarReader(src, band=2)
    path = write_variant(tmp_path / "allnan.tif", np.full((1, 512, 512), np.nan, np.float32))
    with pytest.raises(SarcolorError, match="no valid pixels"):
        with open_raster(path) as src:
            SarReader(src)


@pytest.mark.parametrize("x0", [500_000.0, 500_005.0, 499_995.0, -1_234_565.0])
def test_grid_origin_places_cuts_of_one_grid_exactly_their_offset_apart(tmp_path, x0):
    """Registered at pixel corners or at pixel centres (origins on half pixels), two cuts of one 10 m grid
    301 and 300 px apart get grid origins exactly that far apart (round() would put halves 1 px off)."""
    origins = []
    for col, row in ((0, 0), (301, 300)):
        path = tmp_path / f"cut_{col}.tif"
        profile = dict(driver="GTiff", width=8, height=8, count=1, dtype="uint8", crs="EPSG:32611",
                       transform=rasterio.transform.from_origin(x0 + 10 * col, 3_800_005 - 10 * row, 10, 10))
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(np.arange(100, 164, dtype=np.uint8).reshape(8, 8), 1)
        with rasterio.open(path) as src:
            origins.append(SarReader(src, input_scale="normalized").grid_origin)
    assert (origins[1][0] - origins[0][0], origins[1][1] - origins[0][1]) == (300, 301)


def test_a_raster_without_a_map_grid_has_origin_zero():
    with rasterio.open(PAIRS / "sar" / "253_r0_c512.png") as src:
        assert SarReader(src).grid_origin == (0, 0)


@pytest.mark.parametrize("block_row", [0, 5, 7])
def test_decode_check_finds_a_damaged_block_in_any_strip(tmp_path, block_row):
    """check_tiff_complete decodes strips on several threads: a block that does not decode must fail it
    whichever thread reads it (a written output GDAL could not finish must never replace a good one)."""
    from sarcolor.io import check_tiff_complete

    rgb = (np.stack([example_normalised()[:256, :128]] * 3) * 255).astype(np.uint8)
    path = write_variant(tmp_path / "out.tif", rgb, tiled=True, blockxsize=128, blockysize=32, compress="deflate")
    check_tiff_complete(path, rows_per_read=32, threads=2)
    with rasterio.open(path) as src:
        offset = int(src.get_tag_item(f"BLOCK_OFFSET_0_{block_row}", "TIFF", bidx=2))
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(b"\xff" * 64)
    with pytest.raises(OSError):
        check_tiff_complete(path, rows_per_read=32, threads=2)


def test_a_large_geotiff_output_gets_averaged_overviews_unless_asked_not_to(tmp_path, monkeypatch):
    """Over OVERVIEW_MIN_SIDE px on a side (lowered to 300 here), an output gets internal overviews halving down
    to 256 px, each pixel the mean of the valid pixels it covers, the mask with them; overviews=False leaves them
    out, and an output no larger never gets them."""
    import sarcolor.io as io

    monkeypatch.setattr(io, "OVERVIEW_MIN_SIDE", 300)
    rgb = (np.stack([example_normalised()] * 3) * 255).astype(np.uint8)
    valid = np.ones(rgb.shape[1:], bool)
    valid[:100, :101] = False  # an odd edge: the overview pixels across it average their valid half
    rgb[:, ~valid] = 0
    source = write_variant(tmp_path / "in.tif", rgb[:1])
    outputs = {"on": (tmp_path / "on.tif", True), "off": (tmp_path / "off.tif", False)}
    with rasterio.open(source) as src:
        for path, overviews in outputs.values():
            with io.RasterWriter(path, src, with_mask=True, overviews=overviews) as writer:
                writer.write(0, rgb, valid)
    with rasterio.open(outputs["on"][0]) as dst:
        assert dst.overviews(1) == [2] and dst.overviews(3) == [2]
        half = dst.read(out_shape=(3, 256, 256))
        half_mask = dst.dataset_mask(out_shape=(256, 256))
    blocks = rgb.reshape(3, 256, 2, 256, 2).astype(float)
    counts = valid.reshape(256, 2, 256, 2).sum(axis=(1, 3))
    mean = blocks.sum(axis=(2, 4)) / np.maximum(counts, 1)
    assert (half_mask[counts == 4] == 255).all() and (half_mask[counts == 0] == 0).all()
    np.testing.assert_allclose(half[:, counts > 0], mean[:, counts > 0], atol=1)
    with rasterio.open(outputs["off"][0]) as dst:
        assert dst.overviews(1) == []
    monkeypatch.setattr(io, "OVERVIEW_MIN_SIDE", 512)
    with rasterio.open(source) as src, io.RasterWriter(tmp_path / "small.tif", src, with_mask=True) as writer:
        writer.write(0, rgb, valid)
    with rasterio.open(tmp_path / "small.tif") as dst:
        assert dst.overviews(1) == []
