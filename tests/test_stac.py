"""Sentinel-1 STAC Items in, STAC Items out (issue 21 item 4), without network.

The item fixtures of tests/data/stac mirror the two layouts analysts get from STAC API searches: Planetary
Computer's ``sentinel-1-rtc`` (float32 gamma0 COGs per polarisation; its assets are written here from a real
BigEarthNet patch, in linear power) and Element84's ``sentinel-1-grd`` (uint16 DN measurements with calibration
and noise table assets; here the miniature real GRD product of tests/data/grd_mini). Remote items are served by
a local HTTP server with range requests, so GDAL's /vsicurl/ reads the COG in place, as from a real catalogue.
"""
from __future__ import annotations

import copy
import functools
import http.server
import json
import os
import re
import shutil
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.warp import transform_bounds

from sarcolor import __version__
from sarcolor.readers import open_input

from conftest import COAST, ROOT, read_all, run_cli
from test_cli import assert_clean_failure
from test_readers import MINI, VH, colorized_mini

pystac = pytest.importorskip("pystac", reason="pystac (the stac extra) is not installed")

FIXTURES = ROOT / "tests" / "data" / "stac"
RTC_ITEM = FIXTURES / "s1_rtc_item.json"
GRD_ITEM = FIXTURES / "s1_grd_item.json"
NODATA = -32768.0


def write_power(path: Path, db_patch: Path) -> Path:
    """A real sigma0 patch (dB) as Planetary Computer's RTC COGs hold it: float32 linear power, nodata -32768,
    tiled; its first two rows nodata."""
    with rasterio.open(db_patch) as src:
        profile, db = src.profile.copy(), src.read(1)
    power = (10 ** (db / 10)).astype(np.float32)
    power[:2] = NODATA
    profile.update(driver="GTiff", nodata=NODATA, tiled=True, blockxsize=64, blockysize=64, compress="deflate")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(power[None])
    return path


@pytest.fixture
def rtc_item(tmp_path, bigearthnet_pair) -> Path:
    """The RTC item fixture beside its two assets (./vh.tif, ./vv.tif), in a folder of its own."""
    folder = tmp_path / "catalogue"
    folder.mkdir()
    vv, vh = bigearthnet_pair
    write_power(folder / "vh.tif", vh)
    write_power(folder / "vv.tif", vv)
    return Path(shutil.copy(RTC_ITEM, folder / "item.json"))


def edited_item(source: Path, target: Path, edit) -> Path:
    data = json.loads(source.read_text())
    edit(data)
    target.write_text(json.dumps(data))
    return target


@functools.lru_cache(maxsize=None)
def said(stderr: str) -> str:
    return " ".join(stderr.split())


# -- reading items -------------------------------------------------------------------------------------


def test_an_rtc_item_gives_its_vh_asset_and_the_colours_of_the_vh_file(rtc_item, tmp_path):
    out, direct = tmp_path / "item_rgb.tif", tmp_path / "vh_rgb.tif"
    result = run_cli("colorize", rtc_item, "-o", out, check=True)
    run_cli("colorize", rtc_item.parent / "vh.tif", "-o", direct, check=True)
    text = said(result.stderr)
    assert "asset 'vh' chosen, the VH band the models expect (beside vv)" in text
    assert "auto -> intensity" in text and "gamma naught" in text  # the asset's description feeds the scale decision
    rgb, profile = read_all(out)
    expected, expected_profile = read_all(direct)
    np.testing.assert_array_equal(rgb, expected)
    assert profile["crs"].to_epsg() == 32633 and profile["transform"] == expected_profile["transform"]
    with rasterio.open(out) as dst:
        tags = dst.tags()
        assert tags["SARCOLOR_STAC_ASSET"] == "vh" and tags["SARCOLOR_POLARISATION"] == "VH"
        assert tags["SARCOLOR_INPUT"] == str(rtc_item)
        assert not dst.dataset_mask()[:2].any() and dst.dataset_mask()[2:].all()  # the asset's nodata rows
    vv_first = edited_item(rtc_item, rtc_item.parent / "vv_first.json",
                           lambda d: d.update(assets=dict(reversed(list(d["assets"].items())))))
    for item in (rtc_item, vv_first):
        with open_input(item) as scene, rasterio.open(rtc_item.parent / "vh.tif") as vh:
            np.testing.assert_array_equal(scene.reader.src.read(1), vh.read(1))


def test_raster_bands_scale_offset_and_unit_decide_the_values(rtc_item, tmp_path, bigearthnet_pair):
    """An asset of int16 dB x 100 (raster:bands scale 0.01, unit dB) is read as the dB it holds."""
    _, vh = bigearthnet_pair
    with rasterio.open(vh) as src:
        profile, db = src.profile.copy(), src.read(1)
    profile.update(dtype="int16", nodata=None)
    with rasterio.open(rtc_item.parent / "vh_int16.tif", "w", **profile) as dst:
        dst.write(np.rint(db * 100).astype(np.int16)[None])

    def scaled(data):
        data["assets"]["vh"]["href"] = "./vh_int16.tif"
        data["assets"]["vh"]["raster:bands"] = [{"data_type": "int16", "scale": 0.01, "offset": 0.0, "unit": "dB"}]
    item = edited_item(rtc_item, rtc_item.parent / "scaled.json", scaled)
    out, direct = tmp_path / "scaled_rgb.tif", tmp_path / "db_rgb.tif"
    result = run_cli("colorize", item, "-o", out, check=True)
    assert "auto -> db: band unit 'dB' says dB" in said(result.stderr)
    run_cli("colorize", vh, "-o", direct, check=True)
    difference = np.abs(read_all(out)[0].astype(int) - read_all(direct)[0].astype(int))
    assert difference.mean() <= 0.05 and difference.max() <= 2  # dB rounded to 0.01


def test_a_grd_item_is_calibrated_from_its_table_assets_like_the_product(tmp_path):
    """Element84's sentinel-1-grd layout: the VH measurement's DNs become sigma0 through the item's
    schema-calibration-vh and schema-noise-vh assets, exactly as the product itself is read."""
    out = tmp_path / "grd_item.tif"
    result = run_cli("colorize", GRD_ITEM, "-o", out, "--warp", "none", check=True)
    text = said(result.stderr)
    assert "asset 'vh' chosen, the VH band the models expect (beside vv)" in text
    assert "sigma0 from its calibration table, thermal noise removed (range and azimuth tables)" in text
    np.testing.assert_array_equal(read_all(out)[0], read_all(colorized_mini(tmp_path))[0])


def test_a_grd_item_whose_measurement_has_gcps_lands_where_the_product_does(tmp_path):
    """Real GRD measurement TIFFs carry the geolocation grid as GCPs (the miniature's has none): with them, the
    item's output is warped to UTM at 10 m by default, identical to the product's."""
    with rasterio.open(f"SENTINEL1_CALIB:UNCALIB:{MINI}/manifest.safe:IW_VH:AMPLITUDE") as product:
        gcps = product.gcps
    measurement = tmp_path / "iw-vh.tiff"
    shutil.copy(MINI / "measurement" / f"{VH}.tiff", measurement)
    with rasterio.open(measurement, "r+") as dst:
        dst.gcps = gcps

    def localised(data):
        for asset in data["assets"].values():
            asset["href"] = str((GRD_ITEM.parent / asset["href"]).resolve())
        data["assets"]["vh"]["href"] = measurement.name
    item = edited_item(GRD_ITEM, tmp_path / "item.json", localised)
    out, product_out = tmp_path / "item_utm.tif", tmp_path / "product_utm.tif"
    run_cli("colorize", item, "-o", out, check=True)
    run_cli("colorize", MINI, "-o", product_out, check=True)
    rgb, profile = read_all(out)
    expected, expected_profile = read_all(product_out)
    assert profile["crs"].to_epsg() == 32736 and profile["transform"] == expected_profile["transform"]
    np.testing.assert_array_equal(rgb, expected)


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """A static file server that answers HTTP range requests (as object stores do), logging the ranges asked."""

    ranges: list[str]

    def send_head(self):
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        path = Path(self.translate_path(self.path))
        if match is None or not path.is_file():
            return super().send_head()
        self.ranges.append(match.group(0))
        data = path.read_bytes()
        start = int(match.group(1))
        end = min(int(match.group(2) or len(data) - 1), len(data) - 1)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        import io

        return io.BytesIO(data[start : end + 1])

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def served(rtc_item):
    """The RTC item's folder on http://127.0.0.1:PORT/ (range requests answered); yields (base URL, ranges asked)."""
    ranges: list[str] = []
    handler = type("Handler", (RangeHandler,), {"ranges": ranges})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(rtc_item.parent)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", ranges
    finally:
        server.shutdown()
        server.server_close()


def test_a_remote_item_is_read_in_place_through_vsicurl(served, rtc_item, tmp_path):
    base, ranges = served
    local, remote = tmp_path / "local.tif", tmp_path / "remote.tif"
    run_cli("colorize", rtc_item, "-o", local, check=True)
    result = run_cli("colorize", f"{base}/item.json", "-o", remote, "--stac", check=True)
    assert "asset 'vh' chosen" in said(result.stderr)
    np.testing.assert_array_equal(read_all(remote)[0], read_all(local)[0])
    assert ranges, "the COG was not read with range requests"
    with rasterio.open(remote) as dst:
        assert dst.tags()["SARCOLOR_INPUT"] == f"{base}/item.json"
    item = pystac.Item.from_file(str(tmp_path / "remote.json"))
    assert item.properties["sarcolor:input"] == f"{base}/item.json"
    assert item.get_single_link("derived_from").href == f"{base}/item.json"


def test_a_raster_url_given_as_the_input_is_a_one_line_error(served, rtc_item, tmp_path):
    """A COG's URL given directly was fetched as an Item: 'UnicodeDecodeError'. A URL naming a raster is refused
    before it is fetched; one that does not name it, by the bytes it serves."""
    base, _ = served
    shutil.copy(rtc_item.parent / "vh.tif", rtc_item.parent / "cog")
    (rtc_item.parent / "blob").write_bytes(bytes(range(128, 256)))
    out = tmp_path / "out.tif"
    for name in ("vh.tif", "cog"):
        assert_clean_failure(run_cli("colorize", f"{base}/{name}", "-o", out),
                             f"{base}/{name} is a raster, not a STAC Item: sarcolor reads a remote raster through its STAC Item", out)
    assert_clean_failure(run_cli("colorize", f"{base}/blob", "-o", out), f"{base}/blob is not a STAC Item: it holds binary data, not JSON text", out)


# -- failures a user can cause ---------------------------------------------------------------------------


def test_unusable_items_are_one_line_errors(tmp_path, rtc_item):
    out = tmp_path / "out.tif"
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "Feature", "id": ')
    assert_clean_failure(run_cli("colorize", bad, "-o", out), "is not a STAC Item: not valid JSON", out)
    collection = edited_item(RTC_ITEM, tmp_path / "collection.json", lambda d: d.update(type="Collection"))
    assert_clean_failure(run_cli("colorize", collection, "-o", out), "is not a STAC Item (its type is 'Collection'", out)
    no_sar = edited_item(GRD_ITEM, tmp_path / "no_sar.json", lambda d: [d["assets"].pop(k) for k in ("vh", "vv")])
    assert_clean_failure(run_cli("colorize", no_sar, "-o", out), "no VH or HV raster asset (assets: safe-manifest, schema-calibration-vh", out)
    missing = edited_item(rtc_item, rtc_item.parent / "missing.json", lambda d: d["assets"]["vh"].update(href="./gone.tif"))
    assert_clean_failure(run_cli("colorize", missing, "-o", out), "asset 'vh' not found at", out)
    unreachable = edited_item(rtc_item, rtc_item.parent / "unreachable.json",
                              lambda d: d["assets"]["vh"].update(href="http://127.0.0.1:9/vh.tif"))
    assert_clean_failure(run_cli("colorize", unreachable, "-o", out), "cannot read asset 'vh' of", out)
    assert_clean_failure(run_cli("colorize", "http://127.0.0.1:9/item.json", "-o", out), "cannot fetch STAC item http://127.0.0.1:9/item.json", out)
    assert_clean_failure(run_cli("colorize", rtc_item, "-o", out, "--band", "2"), "--band is for rasters", out)
    two = edited_item(rtc_item, tmp_path / "search.json", lambda d: d.clear() or d.update(
        type="FeatureCollection", features=[json.loads(rtc_item.read_text())] * 2))
    assert_clean_failure(run_cli("colorize", two, "-o", out), "holds 2 STAC items (a search's results)", out)


def test_a_search_result_of_one_item_is_read(tmp_path, rtc_item):
    one = edited_item(rtc_item, rtc_item.parent / "search.json", lambda d: d.update(
        type="FeatureCollection", features=[json.loads(rtc_item.read_text())]) or [d.pop(k) for k in list(d) if k not in ("type", "features")])
    with open_input(one) as scene:
        assert scene.provenance.polarisation == "VH" and Path(scene.src.name).name == "vh.tif"


def test_a_vv_only_item_needs_allow_co_pol(tmp_path, rtc_item):
    def vv_only(data):
        data["assets"].pop("vh")
        data["properties"]["sar:polarizations"] = ["VV"]
    item = edited_item(rtc_item, rtc_item.parent / "vv_only.json", vv_only)
    out = tmp_path / "out.tif"
    assert_clean_failure(run_cli("colorize", item, "-o", out), "its only polarisation asset ('vv') is VV (co-polarisation)", out)
    result = run_cli("colorize", item, "-o", out, "--allow-co-pol", check=True)
    assert "VV colourised on request" in said(result.stderr)
    with rasterio.open(out) as dst:
        assert "VV colourised on request" in dst.tags()["SARCOLOR_WARNING"]


# -- --stac: the output's own item -------------------------------------------------------------------------


def test_stac_writes_the_outputs_item_beside_it(rtc_item, tmp_path):
    out = tmp_path / "rgb.tif"
    run_cli("colorize", rtc_item, "-o", out, "--stac", "--confidence", check=True)
    path = tmp_path / "rgb.json"
    item = pystac.Item.from_file(str(path))
    assert item.id == "rgb" and item.datetime == datetime(2017, 6, 13, 16, 50, 43, tzinfo=timezone.utc)
    with rasterio.open(out) as dst:
        west, south, east, north = transform_bounds(dst.crs, "EPSG:4326", *dst.bounds)
    assert item.bbox == pytest.approx([west, south, east, north], abs=1e-6)
    ring = np.array(item.geometry["coordinates"][0])
    assert ring[0].tolist() == ring[-1].tolist() and len(ring) == 65
    assert ring[:, 0].min() == pytest.approx(west, abs=1e-6) and ring[:, 1].max() == pytest.approx(north, abs=1e-6)
    image = item.assets["image"]
    assert image.href.endswith("rgb.tif") and image.media_type == pystac.MediaType.GEOTIFF
    assert image.roles == ["data", "visual"] and "VH" in image.title
    assert item.assets["confidence"].href.endswith("rgb_confidence.tif")
    props = item.properties
    assert props["processing:software"] == {"sarcolor": __version__} and props["sarcolor:model"] == "default"
    assert props["sarcolor:input"] == str(rtc_item) and props["sarcolor:polarisation"] == "VH"
    assert props["sarcolor:input_scale"].startswith("intensity:") and props["platform"] == "SENTINEL-1A"
    assert "sarcolor 0.1.0 (model default at detail 1) from the VH band of" in props["processing:lineage"]
    assert props["proj:code"] == "EPSG:32633" and props["proj:shape"] == [120, 120]
    assert item.get_single_link("derived_from").href == str(rtc_item)
    assert not [p for p in tmp_path.glob(".rgb*")]  # no temporary file left


def test_stac_for_products_and_rasters_takes_the_time_their_manifest_or_names_carry(tmp_path):
    out = tmp_path / "mini.tif"
    run_cli("colorize", MINI, "-o", out, "--stac", "--cog", check=True)
    item = pystac.Item.from_file(str(tmp_path / "mini.json"))
    assert item.properties["start_datetime"] == "2021-01-19T03:16:53.799379Z"  # the manifest's acquisitionPeriod
    assert item.properties["end_datetime"] == "2021-01-19T03:17:18.797132Z" and item.datetime is None
    assert item.assets["image"].media_type == pystac.MediaType.COG
    west, south, east, north = item.bbox  # the data window of the miniature lies at 33.9-34.2 E, 17.8-18.1 S
    assert 33.85 < west < east < 34.25 and -18.1 < south < north < -17.8
    assert item.properties["proj:code"] == "EPSG:32736" and not item.get_links("derived_from")
    coast = tmp_path / "coast.tif"
    run_cli("colorize", COAST, "-o", coast, "--stac", check=True)  # its sar_tile tag names its product
    assert pystac.Item.from_file(str(tmp_path / "coast.json")).datetime == datetime(2020, 11, 7, 13, 52, 41, tzinfo=timezone.utc)


def test_stac_records_the_reference_image_as_a_source(tmp_path):
    """A GRD product coloured with a reference named as Sentinel-2 names are: a derived_from link to the reference,
    its path, sensing time and clear share among the properties; without one, none of them."""
    from test_reference import optical_over_the_grd_mini

    reference, _, _ = optical_over_the_grd_mini(tmp_path / "S2A_MSIL2A_20210114T073231_T36KWD.tif")
    out = tmp_path / "mini.tif"
    run_cli("colorize", MINI, "-o", out, "--stac", "--reference", reference, check=True)
    item = pystac.Item.from_file(str(tmp_path / "mini.json"))
    links = item.get_links("derived_from")
    assert [link.href for link in links] == [str(reference)]
    props = item.properties
    assert props["sarcolor:reference"] == str(reference)
    assert props["sarcolor:reference_date"] == "2021-01-14T07:32:31Z"
    assert props["sarcolor:reference_clear_share"] == 1.0  # the tile covers the whole footprint
    plain = tmp_path / "plain.tif"
    run_cli("colorize", MINI, "-o", plain, "--stac", check=True)
    props = pystac.Item.from_file(str(tmp_path / "plain.json")).properties
    assert not [key for key in props if key.startswith("sarcolor:reference")]


def test_stac_outputs_follow_the_rules_of_every_output(tmp_path, rtc_item):
    out = tmp_path / "rgb.tif"
    (tmp_path / "rgb.json").write_text("{}")
    assert_clean_failure(run_cli("colorize", rtc_item, "-o", out, "--stac"), "output exists", out)
    assert (tmp_path / "rgb.json").read_text() == "{}"  # kept, and nothing else written
    run_cli("colorize", rtc_item, "-o", out, "--stac", "--overwrite", check=True)
    assert json.loads((tmp_path / "rgb.json").read_text())["type"] == "Feature"
    stale_item, young_item = tmp_path / ".rgb.json.k3j_9a0q.probe", tmp_path / ".rgb.json.abcdefgh.probe"
    for path in (stale_item, young_item):  # a killed run's temporary Item, and one a run may be writing now
        path.write_text("{")
    os.utime(stale_item, (time.time() - 3600, time.time() - 3600))
    run_cli("colorize", rtc_item, "-o", out, "--stac", "--overwrite", check=True)
    assert not stale_item.exists() and young_item.exists()
    png = tmp_path / "rgb.png"
    assert_clean_failure(run_cli("colorize", rtc_item, "-o", png, "--stac"), "--stac describes a georeferenced GeoTIFF", png)
    timeless = tmp_path / "scene.tif"
    shutil.copy(rtc_item.parent / "vh.tif", timeless)
    no_time = tmp_path / "no_time.tif"
    result = run_cli("colorize", timeless, "-o", no_time, "--stac")  # found once the input is open: the last line
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: --stac: no acquisition time known for")
    assert not no_time.exists() and not (tmp_path / "no_time.json").exists()
    over_input = copy.copy(rtc_item.with_suffix(".tif"))  # item.tif's item would be item.json: the input itself
    assert_clean_failure(run_cli("colorize", rtc_item, "-o", over_input, "--stac", "--overwrite"), "inputs are never modified", over_input)


def test_a_renamed_product_given_by_a_relative_path_is_described_from_its_manifest(tmp_path):
    """A product folder renamed by its user carries no time in its name: its manifest's startTime and stopTime
    say it. The input is recorded as an absolute path, not relative to where the command ran."""
    shutil.copytree(MINI, tmp_path / "my scene.SAFE")
    run_cli("colorize", "my scene.SAFE", "-o", "rgb.tif", "--stac", check=True, cwd=tmp_path)
    props = pystac.Item.from_file(str(tmp_path / "rgb.json")).properties
    assert (props["start_datetime"], props["end_datetime"]) == ("2021-01-19T03:16:53.799379Z", "2021-01-19T03:17:18.797132Z")
    assert props["sarcolor:input"] == str(tmp_path / "my scene.SAFE")
    assert f"from the VH band of {tmp_path / 'my scene.SAFE'}; input scale" in props["processing:lineage"]


def test_a_warped_product_s_footprint_is_its_swath_not_the_utm_grid(tmp_path):
    """Warped to UTM, a rotated swath fills only part of its north-up grid: the Item's footprint is the swath's
    outline through the geolocation grid (the same as the unwarped output's), not the grid's rectangle."""
    run_cli("colorize", MINI, "-o", tmp_path / "utm.tif", "--stac", check=True)
    run_cli("colorize", MINI, "-o", tmp_path / "gcps.tif", "--warp", "none", "--stac", check=True)
    warped, unwarped = (pystac.Item.from_file(str(tmp_path / f"{name}.json")) for name in ("utm", "gcps"))
    assert warped.geometry == unwarped.geometry and warped.bbox == unwarped.bbox
    with rasterio.open(tmp_path / "utm.tif") as dst:
        grid = transform_bounds(dst.crs, "EPSG:4326", *dst.bounds)
        valid = dst.dataset_mask() > 0
    assert valid.mean() < 0.8  # the grid's masked corners, which the footprint leaves out
    lons, lats = np.array(warped.geometry["coordinates"][0]).T
    swath_area = 0.5 * abs(np.dot(lons[:-1], lats[1:]) - np.dot(lons[1:], lats[:-1]))
    grid_area = (grid[2] - grid[0]) * (grid[3] - grid[1])
    assert swath_area < 0.8 * grid_area


@pytest.mark.parametrize("self_link", [None, "https://planetarycomputer.microsoft.com/api/stac/v1/collections/sentinel-1-rtc/items/S1"])
def test_derived_from_a_search_result_points_to_the_item(tmp_path, rtc_item, self_link):
    """A search's results (a FeatureCollection) saved with one Item: derived_from names the Item, by its own URL
    when the API gave one, else by its place in the file, never the collection."""
    feature = json.loads(rtc_item.read_text())
    if self_link:  # as an API gives them: its own URL, absolute asset hrefs
        feature["links"].append({"rel": "self", "href": self_link, "type": "application/geo+json"})
        for asset in feature["assets"].values():
            asset["href"] = str(rtc_item.parent / asset["href"])
    search = rtc_item.parent / "search.json"
    search.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    run_cli("colorize", search, "-o", tmp_path / "rgb.tif", "--stac", check=True)
    item = pystac.Item.from_file(str(tmp_path / "rgb.json"))
    assert item.get_single_link("derived_from").href == (self_link or f"{search}#/features/0")
    assert item.properties["sarcolor:input"] == str(search)


@pytest.mark.parametrize("raster_bands", [True, False])
def test_an_8_bit_db_asset_is_read_by_its_scale_and_offset_or_as_a_db_stretch(rtc_item, tmp_path, bigearthnet_pair, raster_bands):
    """An Earth Engine-like export (-25..0 dB stretched to 0..255) as an item's asset: its raster:bands scale
    and offset give its dB; without them, auto reads it as the default stretch; both as the float dB file."""
    _, vh = bigearthnet_pair
    with rasterio.open(vh) as src:
        profile, db = src.profile.copy(), src.read(1)
    profile.update(dtype="uint8", nodata=None)
    eight_bit = np.rint((np.clip(db, -25, 0) + 25) / 25 * 255).astype(np.uint8)
    with rasterio.open(rtc_item.parent / "vh_8bit.tif", "w", **profile) as dst:
        dst.write(eight_bit[None])
    profile.update(dtype="float32")
    with rasterio.open(tmp_path / "vh_db.tif", "w", **profile) as dst:  # the dB the export holds, as floats
        dst.write((eight_bit * np.float32(25 / 255) - 25)[None])

    def stretched(data):
        data["assets"]["vh"]["href"] = "./vh_8bit.tif"
        data["assets"]["vh"]["raster:bands"] = [{"data_type": "uint8", "scale": 25 / 255, "offset": -25.0}] if raster_bands else []
    item = edited_item(rtc_item, rtc_item.parent / f"stretched_{raster_bands}.json", stretched)
    out, direct = tmp_path / "stretched_rgb.tif", tmp_path / "db_rgb.tif"
    result = run_cli("colorize", item, "-o", out, check=True)
    assert ("auto -> db: float values" if raster_bands else "auto -> db: 8-bit dB stretch") in said(result.stderr)
    run_cli("colorize", tmp_path / "vh_db.tif", "-o", direct, check=True)
    difference = np.abs(read_all(out)[0].astype(int) - read_all(direct)[0].astype(int))
    assert difference.mean() <= 0.05 and difference.max() <= 1
