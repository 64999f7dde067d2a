"""The Python API: sarcolor.colorize on DataArrays, NumPy arrays, paths and Dask, against the CLI's own outputs."""
import importlib.util
import pickle
import shutil
import subprocess
import sys

import dask.array
import numpy as np
import pytest
import rasterio
import rioxarray
import xarray as xr
from conftest import COAST, FIELDS, ROOT, read_all, run_cli
from scenes import NODATA_CORNER, write_amplitude_scene

import sarcolor
from sarcolor.api import _loaded
from sarcolor.errors import SarcolorError

CHUNK = 1024


@pytest.fixture(scope="module")
def api_model():
    return sarcolor.load_model(device="cpu")


def cli_colours(source, output, *flags) -> tuple[np.ndarray, np.ndarray]:
    """The CLI's RGB output of ``source`` and where it has data."""
    run_cli("colorize", source, "-o", output, *flags, check=True)
    with rasterio.open(output) as dst:
        return dst.read(), dst.dataset_mask() > 0


@pytest.fixture(scope="module")
def amplitude_scene(tmp_path_factory):
    """2048² of uint16 amplitude brightening fourfold from left to right, with a nodata corner."""
    return write_amplitude_scene(tmp_path_factory.mktemp("scene") / "amplitude.tif", 2 * CHUNK)


@pytest.fixture(scope="module")
def amplitude_cli(amplitude_scene):
    return cli_colours(amplitude_scene, amplitude_scene.with_name("cli.tif"))


@pytest.mark.parametrize("example", [COAST, FIELDS], ids=["coast", "fields"])
def test_a_dataarray_gets_the_cli_pixels_on_its_own_grid(tmp_path, api_model, example):
    cli, _ = cli_colours(example, tmp_path / "cli.tif")
    sar = rioxarray.open_rasterio(example)
    rgb = sarcolor.colorize(sar, api_model)
    np.testing.assert_array_equal(rgb.values, cli)
    assert rgb.dtype == np.uint8 and rgb.dims == ("band", "y", "x") and list(rgb.band.values) == ["red", "green", "blue"]
    assert rgb.rio.crs == sar.rio.crs and rgb.rio.transform() == sar.rio.transform()
    np.testing.assert_array_equal(rgb.x, sar.x)
    np.testing.assert_array_equal(rgb.y, sar.y)
    assert rgb.attrs["model"] == "default" and rgb.attrs["detail"] == 1.0
    assert rgb.attrs["input_scale"] == "normalized" and "99 % quantile" in rgb.attrs["input_scale_reason"]
    assert "warnings" not in rgb.attrs and "valid" not in rgb.coords  # uint8 without nodata: every pixel has data


def test_a_masked_dataarray_is_read_as_its_file(amplitude_scene, api_model):
    crop = {"x": slice(0, 512), "y": slice(0, 512)}  # with the nodata corner
    plain = rioxarray.open_rasterio(amplitude_scene).isel(crop)
    masked = rioxarray.open_rasterio(amplitude_scene, masked=True).isel(crop)
    assert masked.dtype == np.float32
    expected = sarcolor.colorize(plain, api_model)
    got = sarcolor.colorize(masked, api_model)
    np.testing.assert_array_equal(got.values, expected.values)
    np.testing.assert_array_equal(got.valid, expected.valid)
    assert got.attrs["input_scale"] == "amplitude" and not got.valid.values[NODATA_CORNER].any()


def test_a_path_gets_the_cli_pixels_and_confidence_map_and_writes_them_georeferenced(tmp_path, api_model):
    cli, _ = cli_colours(COAST, tmp_path / "cli.tif", "--confidence")
    cli_confidence = read_all(tmp_path / "cli_confidence.tif")[0][0]
    result = sarcolor.colorize(COAST, api_model, confidence=True)
    assert isinstance(result, xr.Dataset)
    np.testing.assert_array_equal(result.rgb.values, cli)
    confidence = result.confidence.values
    assert confidence.dtype == np.float32 and not np.isnan(confidence).any()
    np.testing.assert_allclose(confidence, cli_confidence, atol=0.051)  # the CLI's LERC keeps 0.05
    assert 3 < confidence.mean() < 30 and "CIEDE2000" in result.confidence.attrs["units"]
    result.rgb.rio.to_raster(tmp_path / "api.tif")
    with rasterio.open(tmp_path / "api.tif") as api, rasterio.open(tmp_path / "cli.tif") as written:
        assert api.crs == written.crs and api.transform == written.transform
        assert api.descriptions == ("red", "green", "blue") and api.tags()["model"] == "default"
        np.testing.assert_array_equal(api.read(), cli)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_a_numpy_array_is_coloured_as_an_ungeoreferenced_raster(tmp_path, api_model):
    pixels = read_all(COAST)[0][0]
    png = tmp_path / "coast.png"
    with rasterio.open(png, "w", driver="PNG", width=512, height=512, count=1, dtype="uint8") as dst:
        dst.write(pixels[None])
    cli, _ = cli_colours(png, tmp_path / "cli.png")
    rgb = sarcolor.colorize(pixels[None], api_model)  # (1, y, x): the one band is taken
    np.testing.assert_array_equal(rgb.values, cli)
    assert rgb.rio.crs is None and rgb.attrs["input_scale"] == "normalized"
    # A NumPy array is tiled from its first pixel; the file's tiles sit on its map grid, so its colours differ a little.
    on_grid = sarcolor.colorize(rioxarray.open_rasterio(COAST), api_model).values
    assert 0.2 < np.abs(rgb.values.astype(int) - on_grid).mean() < 5


def assert_same_levels(got: np.ndarray, expected: np.ndarray) -> None:
    """The same 8-bit colours, but for a rare pixel one level off: a one-thread, one-tile-per-call run's last float
    bit is not always a two-thread, two-tile one's (onnxruntime), and a value on a rounding boundary goes the other
    way (1 pixel in 12.6 million here). A seam or a misplaced tile moves many pixels by many levels."""
    diff = np.abs(got.astype(int) - expected)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-5, (diff.max(), (diff > 0).mean())


def test_a_dask_scene_on_a_cluster_gets_the_cli_pixels_without_seams(tmp_path, amplitude_scene, amplitude_cli):
    from dask.distributed import Client, LocalCluster, Lock

    cli, cli_valid = amplitude_cli
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        sar = rioxarray.open_rasterio(amplitude_scene, chunks={"x": CHUNK, "y": CHUNK}, lock=False)
        rgb = sarcolor.colorize(sar, sarcolor.load_model(device="cpu", threads=1))
        assert isinstance(rgb.data, dask.array.Array) and rgb.data.chunks[1:] == ((CHUNK, CHUNK), (CHUNK, CHUNK))
        rgb.rio.to_raster(tmp_path / "api.tif", tiled=True, lock=Lock("rio"))
        valid = rgb.valid.values
        loads = client.run(lambda: _loaded.cache_info())
    api = read_all(tmp_path / "api.tif")[0]
    assert_same_levels(api, cli)
    for border in (CHUNK - 1, CHUNK):  # both sides of the chunk borders, across and along
        assert_same_levels(api[:, border], cli[:, border])
        assert_same_levels(api[:, :, border], cli[:, :, border])
    np.testing.assert_array_equal(valid, cli_valid)
    assert not valid[NODATA_CORNER].any() and valid.mean() > 0.99 and not api[:, ~valid].any()
    assert rgb.attrs["input_scale"] == "amplitude"
    # The model is loaded once per worker, whatever the number of chunks it colours (2 each here, as a rule).
    assert all(info.misses <= 1 for info in loads.values()) and sum(info.misses + info.hits for info in loads.values()) >= 4


def test_dask_chunks_give_the_in_memory_colours_and_confidence(amplitude_scene, api_model):
    # A crop off the map grid's tile lattice, in chunks of 512: tiles, scaling and mirroring must all follow the scene.
    crop = {"x": slice(300, 300 + CHUNK), "y": slice(700, 700 + CHUNK)}
    whole = rioxarray.open_rasterio(amplitude_scene).isel(crop)
    chunked = rioxarray.open_rasterio(amplitude_scene, chunks=True).isel(crop).chunk({"x": 512, "y": 512})
    memory = sarcolor.colorize(whole, api_model, confidence=True)
    lazy = sarcolor.colorize(chunked, api_model, confidence=True)
    assert lazy.rgb.data.chunks[1:] == ((512, 512), (512, 512))
    rgb, confidence = dask.compute(lazy.rgb.data, lazy.confidence.data)
    np.testing.assert_array_equal(rgb, memory.rgb.values)
    # The expected error may differ in its last bit: onnxruntime's kernels for the error channel round differently
    # for a batch of 1 and of 2 tiles (the RGB does not; the map is stored to within 0.05 anyway).
    np.testing.assert_allclose(confidence, memory.confidence.values, rtol=1e-6, atol=0)
    assert lazy.rgb.rio.transform() == whole.rio.transform() == memory.rgb.rio.transform()


def test_load_model_tells_what_the_model_expects_and_travels_to_workers(api_model):
    assert api_model.convention["quantile"] == 0.99 and "VH amplitude" in api_model.expected_input
    assert api_model.multiple == 32 and api_model.detail_range == (0.0, 1.0) and api_model.has_error
    assert set(api_model.error_calibration) >= {"slope", "intercept"}
    smooth = sarcolor.load_model("smooth", device="cpu")
    assert smooth.detail == 0.0 and api_model.with_detail(0.0).detail == 0.0
    batch = rioxarray.open_rasterio(FIELDS).values[None, :, :256, :256].astype(np.float32) / 255
    loads = _loaded.cache_info().misses
    travelled = pickle.loads(pickle.dumps(smooth))
    assert _loaded.cache_info().misses == loads  # the network is not loaded again in this process
    np.testing.assert_array_equal(travelled(batch), smooth(batch))
    np.testing.assert_array_equal(api_model.with_detail(0.0)(batch), smooth(batch))
    assert np.abs(api_model(batch)[:, :3] - smooth(batch)[:, :3]).mean() > 0.005  # detail changes the colours


def multi_band():
    sar = rioxarray.open_rasterio(COAST)
    return xr.concat([sar, sar, sar], dim="band").assign_coords(band=[1, 2, 3])


def without_crs():
    sar = rioxarray.open_rasterio(COAST)[0]
    return xr.DataArray(sar.values, dims=("y", "x"), coords={"y": sar.y.values, "x": sar.x.values})


@pytest.mark.parametrize(
    "make, options, message",
    [
        (lambda: np.zeros((2, 3, 64, 64), np.uint8), {}, r"expected a \(y, x\) or \(band, y, x\) array"),
        (lambda: np.zeros((0, 64), np.uint8), {}, r"the data is empty"),
        (lambda: xr.DataArray(np.ones((64, 64), np.uint8), dims=("a", "b")), {}, r"cannot tell the DataArray's y and x"),
        (lambda: rioxarray.open_rasterio(COAST)[0].transpose("x", "y"), {}, r"put \('y', 'x'\) last"),
        (multi_band, {}, r"has 3 bands along 'band': pick the SAR band with band=N"),
        (multi_band, {"band": 4}, r"3 band\(s\) along 'band'; band=4 is out of range"),
        (lambda: rioxarray.open_rasterio(COAST), {"band": 2}, r"band=2 is out of range"),
        (without_crs, {}, r"map coordinates but no CRS: set it with data.rio.write_crs"),
        (lambda: np.full((64, 64), np.nan, np.float32), {}, r"has no valid pixels"),
        (lambda: np.ones((64, 64), np.complex64), {}, r"unsupported data type complex64"),
        (lambda: [[1, 2], [3, 4]], {}, r"data must be an xarray.DataArray, a NumPy array or a path, not list"),
        (lambda: COAST.with_name("missing.tif"), {}, r"input not found"),
        (lambda: COAST, {"detail": 2.0}, r"detail must be in \[0, 1\]"),
        (lambda: COAST, {"tile": 500}, r"tile size must be a multiple of 32"),
        (lambda: COAST, {"band": 3}, r"has 1 band\(s\); band=3 is out of range"),
        (lambda: np.arange(-32768, -28672, dtype=np.int16).reshape(64, 64), {}, r"are neither dB nor dB x 10 or x 100; give the band a scale"),
    ],
    ids=["4-d", "empty", "unknown dims", "x before y", "3 bands", "band 4 of 3", "band 2 of 1", "no crs", "all nan",
         "complex", "a list", "missing file", "detail 2", "tile 500", "a path's band 3 of 1", "negative integers"],
)
def test_user_mistakes_raise_one_line_sarcolor_errors(api_model, make, options, message):
    """One line, naming this API's keywords, never the CLI's flags."""
    with pytest.raises(SarcolorError, match=message) as raised:
        sarcolor.colorize(make(), api_model, **options)
    assert "\n" not in str(raised.value) and "--" not in str(raised.value)


def test_messages_name_the_keywords_with_their_values_and_keep_flags_the_api_lacks():
    from sarcolor.api import OPTION_NAMES

    said = OPTION_NAMES.render("give --input-scale amplitude or --band 2; is --input-scale right? (use --overwrite)")
    assert said == "give input_scale='amplitude' or band=2; is input_scale right? (use --overwrite)"


def test_a_vv_only_path_names_the_keyword_that_allows_it(api_model, tmp_path, bigearthnet_pair):
    vv = shutil.copy(bigearthnet_pair[0], tmp_path / "scene_VV.tif")  # alone: no VH file beside it
    with pytest.raises(SarcolorError, match=r"or allow_co_pol=True to colourise VV anyway$"):
        sarcolor.colorize(vv, api_model)


def test_the_plain_install_needs_no_xarray():
    code = (
        "import sys; sys.modules['xarray'] = sys.modules['rioxarray'] = None\n"
        "import numpy as np, sarcolor, sarcolor.cli\n"
        "from sarcolor.errors import SarcolorError\n"
        "try:\n    sarcolor.colorize(np.ones((64, 64), np.uint8))\n"
        "except SarcolorError as exc:\n    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "sarcolor's Python API needs xarray and rioxarray: pip install 'sarcolor[api]'"
    plain = subprocess.run([sys.executable, "-c", "import sys, sarcolor.cli; print(sorted({'xarray', 'dask'} & set(sys.modules)))"],
                           capture_output=True, text=True, check=True)
    assert plain.stdout.strip() == "[]"


def test_the_docs_example_runs_and_its_page_is_current(tmp_path):
    spec = importlib.util.spec_from_file_location("render_api_docs", ROOT / "scripts" / "render_api_docs.py")
    render_api_docs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render_api_docs)
    page = render_api_docs.render(render_api_docs.SCRIPT, tmp_path)
    assert page == render_api_docs.PAGE.read_text(), "docs/api.md is stale: run python scripts/render_api_docs.py"
    assert "same pixels as in memory: True" in page
    with rasterio.open(tmp_path / "api_example.png") as picture:
        assert picture.count >= 3 and picture.width > 2 * picture.height
    with rasterio.open(tmp_path / "fields_colour.tif") as cog, rasterio.open(FIELDS) as sar:
        assert cog.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert cog.crs == sar.crs and cog.transform == sar.transform and cog.count == 3
        np.testing.assert_array_equal(cog.read(), sarcolor.colorize(sar.name).values)
