"""Sentinel-1 GRD products as downloaded (issue 21): band choice, sigma0 calibration, geometry, errors.

The committed miniature (tests/data/grd_mini, made by scripts/make_grd_fixture.py) is the real S1A IW
GRDH 1SDV product's metadata cut to 576 x 576 px across the IW1/IW2 boundary, its VH band holding the
coast example's real texture as chosen sigma0 values. The full-size real product of
../shared/data/s1-products is used where present.
"""
from __future__ import annotations

import re
import shutil
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.warp import transform as transform_points

from sarcolor.errors import SarcolorError
from sarcolor.readers import open_input

from conftest import ROOT, read_all, run_cli
from test_cli import assert_clean_failure

MINI = next((ROOT / "tests" / "data" / "grd_mini").glob("*.SAFE"))
VH = "s1a-iw-grd-vh-20210119t031653-20210119t031718-036201-043ed0-002"


sys.path.insert(0, str(ROOT / "scripts"))
import make_grd_fixture as FIXTURE  # noqa: E402  (the script that builds the miniature product)


def table(path: Path, vector_tag: str, values_tag: str) -> dict[int, dict[int, float]]:
    """{line: {pixel: value}} straight from a calibration or noise XML."""
    out = {}
    for vector in ET.parse(path).getroot().iter(vector_tag):
        pixels = [int(p) for p in vector.findtext("pixel").split()]
        out[int(vector.findtext("line"))] = dict(zip(pixels, map(float, vector.findtext(values_tag).split())))
    return out


def azimuth_noise(path: Path, swath: str, line: float) -> float:
    for vector in ET.parse(path).getroot().iter("noiseAzimuthVector"):
        if vector.findtext("swath") == swath:
            lines = [int(v) for v in vector.findtext("line").split()]
            return float(np.interp(line, lines, [float(v) for v in vector.findtext("noiseAzimuthLut").split()]))
    raise KeyError(swath)


def between(a: float, b: float, t: float) -> float:
    return a + t * (b - a)


def hand_sigma0(safe: Path, dn: int, line: int, pixel: int, noise_pixels: tuple[int, int], swath: str) -> float:
    """sigma0 = (DN² - noise) / A² for a pixel on a calibration node (line, pixel), computed by hand from the XML:
    the range noise interpolated linearly between its two vectors around ``line`` and, along the pixels, between
    ``noise_pixels``; times the swath's azimuth noise at ``line``."""
    calibration = table(safe / f"annotation/calibration/calibration-{VH}.xml", "calibrationVector", "sigmaNought")
    noise = table(safe / f"annotation/calibration/noise-{VH}.xml", "noiseRangeVector", "noiseRangeLut")
    gain = calibration[line][pixel]
    before, after = max(l for l in noise if l <= line), min(l for l in noise if l > line)
    p0, p1 = noise_pixels
    along = [between(noise[l][p0], noise[l][p1], (pixel - p0) / (p1 - p0) if p1 != p0 else 0.0) for l in (before, after)]
    range_noise = between(*along, (line - before) / (after - before))
    total = range_noise * azimuth_noise(safe / f"annotation/calibration/noise-{VH}.xml", swath, line)
    return (dn**2 - total) / gain**2


def calibrated(scene, rows, cols) -> np.ndarray:
    """The reader's sigma0 over consecutive ``rows`` x ``cols``."""
    rows, cols = np.asarray(rows), np.asarray(cols)
    raw = scene.reader.src.read(1, window=((rows[0], rows[-1] + 1), (cols[0], cols[-1] + 1)))
    return scene.reader.calibration.values(raw, rows, cols)


def test_calibrated_sigma0_equals_a_hand_computation_from_the_xml():
    """Two pixels on calibration nodes, one per sub-swath: IW1 (noise on its pixel node) and IW2 (noise between
    two pixel nodes); lines between two noise vectors. Mini row r is line 4000 + r of the real product."""
    with open_input(MINI) as scene:
        dn = scene.reader.src.read(1)
        for row, col, noise_pixels, swath in ((45, 60, (60, 60), "IW1"), (45, 300, (283, 323), "IW2")):
            assert dn[row, col] > 0
            got = calibrated(scene, [row], [col])[0, 0]
            assert got == pytest.approx(hand_sigma0(MINI, int(dn[row, col]), row, col, noise_pixels, swath), rel=1e-5)


def test_calibrated_sigma0_gives_back_the_chosen_values_within_0_1_db():
    """The fixture's DNs were made from chosen sigma0 (the coast example's texture, median -18 dB) through the real
    tables; sigma0 read back differs only by the rounding of DNs to integers, as a real product's."""
    chosen = FIXTURE.example_sigma0()[:512, :512]
    with open_input(MINI) as scene:
        got = calibrated(scene, np.arange(32, 544), np.arange(32, 544))
    above = chosen >= 10 ** -2.0  # -20 dB and up; darker pixels are a few DN above the noise floor
    error_db = 10 * np.log10(got[above] / chosen[above])
    assert above.mean() > 0.8
    assert np.abs(error_db).max() <= 0.1 and abs(error_db.mean()) < 0.005


def test_pixels_under_the_noise_floor_are_a_tenth_of_the_noise_not_zero():
    """Noise removal leaves water and shadow at or below 0; they read as the darkest sigma0, not as no signal, so the
    out-of-domain check does not take a real product for a damaged image."""
    rows, cols = np.arange(40, 50), np.arange(280, 300)
    with open_input(MINI) as scene:
        calibration = scene.reader.calibration
        noise = calibration.noise(rows, cols)
        quiet = np.maximum(np.sqrt(noise) * 0.5, 1).astype(np.uint16)  # DN² a quarter of the noise
        got = calibration.values(quiet, rows, cols)
        gain = calibration.sigma.at(rows, cols)
    np.testing.assert_allclose(got, 0.1 * noise / gain**2, rtol=1e-5)
    assert (got > 0).all()


def test_the_cross_polarisation_band_is_chosen_calibrated_and_reported(tmp_path):
    out = tmp_path / "mini.tif"
    result = run_cli("colorize", MINI, "-o", out, check=True)
    assert "VH band chosen" in result.stderr and "(the product has VV, VH)" in result.stderr
    assert "sigma0 from its calibration table, thermal noise removed (range and azimuth tables)" in " ".join(result.stderr.split())
    with rasterio.open(out) as dst:
        tags = dst.tags()
        assert tags["SARCOLOR_POLARISATION"] == "VH" and tags["SARCOLOR_INPUT"] == MINI.name.removesuffix(".SAFE")
        assert "not terrain-corrected" in tags["SARCOLOR_GEOMETRY"]
        assert tags["SARCOLOR_INPUT_SCALE"].startswith("intensity: GRD product")


def geolocation_grid(safe: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(lines, pixels, lon[line, pixel], lat[line, pixel]) of the VH annotation's geolocation grid."""
    points = ET.parse(safe / f"annotation/{VH}.xml").getroot().iter("geolocationGridPoint")
    rows = [(int(p.findtext("line")), int(p.findtext("pixel")), float(p.findtext("longitude")), float(p.findtext("latitude"))) for p in points]
    lines, pixels = sorted({r[0] for r in rows}), sorted({r[1] for r in rows})
    lon, lat = np.zeros((len(lines), len(pixels))), np.zeros((len(lines), len(pixels)))
    for line, pixel, x, y in rows:
        lon[lines.index(line), pixels.index(pixel)], lat[lines.index(line), pixels.index(pixel)] = x, y
    return np.array(lines), np.array(pixels), lon, lat


def grid_lonlat(safe: Path, line: float, pixel: float) -> tuple[float, float]:
    """A pixel's longitude and latitude, bilinear between the four geolocation grid points around it."""
    lines, pixels, lon, lat = geolocation_grid(safe)
    i, j = np.searchsorted(lines, line) - 1, np.searchsorted(pixels, pixel) - 1
    t, u = (line - lines[i]) / (lines[i + 1] - lines[i]), (pixel - pixels[j]) / (pixels[j + 1] - pixels[j])
    return tuple(
        float(between(between(v[i, j], v[i, j + 1], u), between(v[i + 1, j], v[i + 1, j + 1], u), t)) for v in (lon, lat)
    )


def test_the_output_lands_at_the_annotation_coordinates_in_utm_at_10_m(tmp_path):
    out = tmp_path / "mini.tif"
    run_cli("colorize", MINI, "-o", out, check=True)
    with rasterio.open(out) as dst:
        assert dst.crs.to_epsg() == 32736  # 33.9-34.2 E, 17.7-18.3 S: UTM zone 36 south
        assert (dst.transform.a, dst.transform.e) == (10.0, -10.0)
        assert dst.transform.c % 10 == 0 and dst.transform.f % 10 == 0
        mask = dst.dataset_mask() > 0
        rows, cols = np.nonzero(mask)
        x, y = dst.xy(rows.mean(), cols.mean(), offset="ul")
    # The data window (mini rows and columns 32-543): its centre and its area (512 x 512 pixels of the area the
    # geolocation grid gives them on the map, 10.15 x 10.14 m) where the annotation puts them.
    corners = [grid_lonlat(MINI, line, pixel) for line, pixel in ((32, 32), (32, 544), (544, 32))]
    (x0, x1, x2), (y0, y1, y2) = transform_points("EPSG:4326", "EPSG:32736", *zip(*corners))
    area = abs((x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0))
    assert mask.sum() * 100.0 == pytest.approx(area, rel=0.01)
    lon, lat = grid_lonlat(MINI, 288.0, 288.0)
    (ex,), (ey,) = transform_points("EPSG:4326", "EPSG:32736", [lon], [lat])
    assert np.hypot(x - ex, y - ey) < 15.0  # metres
    no_warp = tmp_path / "gcps.tif"
    run_cli("colorize", MINI, "-o", no_warp, "--warp", "none", check=True)
    with rasterio.open(no_warp) as dst:
        gcps, crs = dst.gcps
        assert crs.to_epsg() == 4326 and len(gcps) == 12 and (dst.width, dst.height) == (576, 576)
        assert not dst.dataset_mask()[:32].any() and dst.dataset_mask()[32:544, 32:544].all()  # DN 0 is nodata


def zip_product(safe: Path, path: Path, folder_entries: bool, compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for item in sorted(safe.rglob("*")):
            name = f"{safe.name}/{item.relative_to(safe).as_posix()}"
            if item.is_dir():
                if folder_entries:
                    archive.writestr(name + "/", "")
            else:
                archive.write(item, name)
    return path


def test_manifest_and_zips_as_downloaded_give_the_folder_s_output(tmp_path):
    reference = tmp_path / "folder.tif"
    run_cli("colorize", MINI, "-o", reference, check=True)
    with_entries = zip_product(MINI, tmp_path / f"{MINI.stem}.zip", folder_entries=True)
    without_entries = zip_product(MINI, tmp_path / "renamed.zip", folder_entries=False)
    for i, source in enumerate((MINI / "manifest.safe", with_entries, without_entries)):
        out = tmp_path / f"out{i}.tif"
        run_cli("colorize", source, "-o", out, check=True)
        np.testing.assert_array_equal(read_all(out)[0], read_all(reference)[0])


def test_a_folder_of_products_and_rasters_is_colourised_scene_by_scene(tmp_path):
    """A folder as analysts fill it: a .SAFE folder, a .zip as downloaded and a GeoTIFF; each product's colours are
    written as NAME.tif, the same as colourising it alone."""
    scenes = tmp_path / "scenes"
    shutil.copytree(MINI, scenes / MINI.name)
    zip_product(MINI, scenes / "second.zip", folder_entries=True)
    shutil.copy(ROOT / "examples" / "s1_vh_coast_california.tif", scenes / "coast.tif")
    run_cli("colorize", MINI, "-o", tmp_path / "alone.tif", check=True)
    run_cli("colorize", scenes, "-o", tmp_path / "rgb", check=True)
    assert sorted(p.name for p in (tmp_path / "rgb").iterdir()) == sorted([f"{MINI.stem}.tif", "second.tif", "coast.tif"])
    for name in (f"{MINI.stem}.tif", "second.tif"):
        np.testing.assert_array_equal(read_all(tmp_path / "rgb" / name)[0], read_all(tmp_path / "alone.tif")[0])


def cut_short(path: Path, size: int) -> None:
    path.write_bytes(path.read_bytes()[:size])


def edited_copy(tmp_path: Path, edit) -> Path:
    copy = tmp_path / MINI.name
    shutil.copytree(MINI, copy)
    edit(copy)
    return copy


def replace_in_manifest(old: str, new: str):
    def edit(safe: Path) -> None:
        manifest = safe / "manifest.safe"
        manifest.write_text(manifest.read_text().replace(old, new))
    return edit


@pytest.mark.parametrize("edit, expected", [
    (replace_in_manifest("<s1sarl1:transmitterReceiverPolarisation>VH</s1sarl1:transmitterReceiverPolarisation>", ""),
     "has VV polarisation only: the models expect the cross-polarisation (VH or HV)"),
    (replace_in_manifest("<s1sarl1:productType>GRD<", "<s1sarl1:productType>SLC<"), "is a Sentinel-1 SLC product; sarcolor reads GRD products"),
    (lambda safe: (safe / f"measurement/{VH}.tiff").unlink(), "the VH measurement file is missing"),
    (lambda safe: (safe / "manifest.safe").unlink(), "has no manifest.safe"),
    (lambda safe: (safe / f"annotation/{VH}.xml").unlink(), f"the VH annotation file is missing (annotation/{VH}.xml): incomplete download?"),
    (lambda safe: (safe / f"measurement/{VH}.tiff").write_bytes(b""), f"measurement/{VH}.tiff is empty (0 bytes): incomplete download?"),
    (lambda safe: cut_short(safe / f"measurement/{VH}.tiff", 20000),
     f"measurement/{VH}.tiff is cut short (20000 bytes, its image needs 251386): incomplete download?"),
    (lambda safe: (safe / f"measurement/{VH}.tiff").write_text("<html>Service unavailable</html>"), f"measurement/{VH}.tiff is not a readable TIFF"),
])
def test_unusable_products_are_one_line_errors(tmp_path, edit, expected):
    product = edited_copy(tmp_path, edit)
    out = tmp_path / "out.tif"
    assert_clean_failure(run_cli("colorize", product, "-o", out), expected, out)


def to_horizontal(safe: Path) -> None:
    """The product as if transmitted in H: VV -> HH, VH -> HV in file names, manifest and annotations."""
    for path in sorted(safe.rglob("*"), key=lambda p: -len(p.parts)):
        if path.is_file() and path.suffix in (".safe", ".xml"):
            text = path.read_text()
            for old, new in (("-vv-", "-hh-"), ("-vh-", "-hv-"), (">VV<", ">HH<"), (">VH<", ">HV<"), ("grdvv", "grdhh"), ("grdvh", "grdhv")):
                text = text.replace(old, new)
            path.write_text(text)
        renamed = path.name.replace("-vv-", "-hh-").replace("-vh-", "-hv-")
        if renamed != path.name:
            path.rename(path.with_name(renamed))


def test_an_hh_hv_product_gives_its_hv_band(tmp_path):
    product = edited_copy(tmp_path, to_horizontal)
    result = run_cli("colorize", product, "-o", tmp_path / "out.tif", "--warp", "none", check=True)
    assert "HV band chosen" in result.stderr and "(the product has HH, HV)" in result.stderr
    np.testing.assert_array_equal(read_all(tmp_path / "out.tif")[0], read_all(colorized_mini(tmp_path))[0])


def to_single_vv(safe: Path) -> None:
    """The product as a single-polarisation 1SSV one whose VV band holds the texture: VV and VH swapped in file
    names, manifest and annotations, then the (now empty) VH files and the manifest's entries for them removed."""
    swaps = (("-vv-", "-vh-"), (">VV<", ">VH<"), ("grdvv", "grdvh"))
    for path in sorted(safe.rglob("*"), key=lambda p: -len(p.parts)):
        if path.is_file() and path.suffix in (".safe", ".xml"):
            text = path.read_text()
            for a, b in swaps:
                text = text.replace(a, "\0").replace(b, a).replace("\0", b)
            path.write_text(text)
        swapped = path.name.replace("-vv-", "\0").replace("-vh-", "-vv-").replace("\0", "-vh-")
        if swapped != path.name:
            path.rename(path.with_name(swapped))
    for path in list(safe.rglob("*-vh-*")):
        path.unlink()
    manifest = safe / "manifest.safe"
    text = manifest.read_text().replace("<s1sarl1:transmitterReceiverPolarisation>VH</s1sarl1:transmitterReceiverPolarisation>", "")
    for tag in ("dataObject", "metadataObject", "xfdu:contentUnit"):  # the VH entries, whole
        text = re.sub(rf"<{tag}\b[^>]*grdvh[^>]*>.*?</{tag}>", "", text, flags=re.S)
    manifest.write_text(text)


def test_a_single_vv_product_needs_allow_co_pol_and_gets_the_co_pol_warning(tmp_path):
    product = edited_copy(tmp_path, to_single_vv)
    out = tmp_path / "out.tif"
    assert_clean_failure(run_cli("colorize", product, "-o", out, "--warp", "none"),
                         "has VV polarisation only: the models expect the cross-polarisation (VH or HV), so use a "
                         "dual-polarisation product (1SDV or 1SDH), or --allow-co-pol to colourise VV anyway", out)
    result = run_cli("colorize", product, "-o", out, "--warp", "none", "--allow-co-pol", check=True)
    assert "VV band chosen, on request (the product has VV)" in result.stderr
    assert "VV colourised on request (--allow-co-pol)" in result.stderr
    rgb, _ = read_all(out)
    with rasterio.open(out) as dst:
        assert dst.tags()["SARCOLOR_POLARISATION"] == "VV"
        assert "VV colourised on request (--allow-co-pol)" in dst.tags()["SARCOLOR_WARNING"]
    np.testing.assert_array_equal(rgb, read_all(colorized_mini(tmp_path))[0])  # the same texture, read as VV


def colorized_mini(tmp_path: Path) -> Path:
    out = tmp_path / "mini_gcps.tif"
    run_cli("colorize", MINI, "-o", out, "--warp", "none", check=True)
    return out


def test_truncated_zip_and_product_options_are_one_line_errors(tmp_path):
    whole = zip_product(MINI, tmp_path / "whole.zip", folder_entries=True)
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    out = tmp_path / "out.tif"
    assert_clean_failure(run_cli("colorize", truncated, "-o", out), "is not a readable zip", out)
    assert_clean_failure(run_cli("colorize", MINI, "-o", out, "--band", "2"), "--band is for rasters", out)
    assert_clean_failure(run_cli("colorize", MINI, "-o", out, "--input-scale", "db"), "calibrated from its own tables", out)


def uncompressed_measurement(tmp_path: Path) -> Path:
    """The miniature with its VH measurement stored as real products store it: an uncompressed TIFF."""
    def edit(safe: Path) -> None:
        tiff = safe / "measurement" / f"{VH}.tiff"
        with rasterio.open(tiff) as src:
            dn = src.read()
        profile = dict(driver="GTiff", width=src.width, height=src.height, count=1, dtype=dn.dtype)
        with rasterio.open(tiff, "w", **profile) as dst:
            dst.write(dn)
    return edited_copy(tmp_path, edit)


def flip_byte(zip_path: Path, member_suffix: str) -> None:
    """Flip one byte in the middle of a member's (compressed) data, as a damaged download would."""
    with zipfile.ZipFile(zip_path) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith(member_suffix))
    with open(zip_path, "r+b") as f:
        f.seek(info.header_offset + 26)
        name_length, extra_length = map(int, np.frombuffer(f.read(4), "<u2"))
        f.seek(info.header_offset + 30 + name_length + extra_length + info.compress_size // 2)
        byte = f.read(1)[0]
        f.seek(-1, 1)
        f.write(bytes([byte ^ 0x10]))


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_a_zip_whose_vh_member_fails_its_crc_is_refused(tmp_path, compression):
    """GDAL reads zip members without checking their CRC: a damaged VH member was coloured, exit 0."""
    safe = uncompressed_measurement(tmp_path)
    product = zip_product(safe, tmp_path / "product.zip", folder_entries=True, compression=compression)
    intact = tmp_path / "intact.tif"
    run_cli("colorize", product, "-o", intact, "--warp", "none", check=True)
    np.testing.assert_array_equal(read_all(intact)[0], read_all(colorized_mini(tmp_path))[0])
    out = tmp_path / "out.tif"
    for member in (f"measurement/{VH}.tiff", f"annotation/{VH}.xml"):  # the files GDAL reads
        damaged = Path(shutil.copy(product, tmp_path / "damaged.zip"))
        flip_byte(damaged, member)
        result = run_cli("colorize", damaged, "-o", out)
        assert_clean_failure(result, f"{member} is damaged", out)
        assert result.returncode == 2 and "download the product again" in result.stderr


# -- the full-size real product ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def full_product(tmp_path_factory):
    """The real product unzipped, with sparse full-size measurements: VH holds the coast texture at lines
    8000-8511, samples 12000-12511 (IW2), VV is empty."""
    if not FIXTURE.REAL_PRODUCT.is_file():
        pytest.skip(f"real product not found at {FIXTURE.REAL_PRODUCT} (../shared/data/s1-products)")
    safe = FIXTURE.extract_product(FIXTURE.REAL_PRODUCT, tmp_path_factory.mktemp("full"))
    FIXTURE.write_measurement(safe, "VH", FIXTURE.example_sigma0(), 8000, 12000)
    FIXTURE.write_measurement(safe, "VV")
    return safe


def test_full_size_product_reads_its_band_gcps_and_sigma0(full_product, tmp_path):
    chosen = FIXTURE.example_sigma0()
    for source in (full_product, zip_product(full_product, tmp_path / "full.zip", folder_entries=False)):
        with open_input(source) as scene:
            assert (scene.reader.width, scene.reader.height) == (25931, 16854)
            assert len(scene.src.gcps[0]) == 210 and scene.pixel_spacing == 10.0
            got = calibrated(scene, np.arange(8000, 8512), np.arange(12000, 12512))
            assert scene.reader.scale_decision.scale == "intensity"
        above = chosen >= 10 ** -2.0
        assert np.abs(10 * np.log10(got[above] / chosen[above])).max() <= 0.1
    # On a calibration node (line 8090, pixel 12040: IW2), noise between pixel nodes 12023 and 12063.
    with open_input(full_product) as scene:
        dn = int(scene.reader.src.read(1, window=((8090, 8091), (12040, 12041)))[0, 0])
        got = calibrated(scene, [8090], [12040])[0, 0]
    assert dn > 0
    assert got == pytest.approx(hand_sigma0(full_product, dn, 8090, 12040, (12023, 12063), "IW2"), rel=1e-5)


def test_warp_follows_every_gcp_of_the_real_geolocation_grid(full_product, tmp_path):
    """The product's 210 GCPs on a raster 20 times coarser (200 m pixels), a bright dot on each: warped to UTM at
    50 m, each dot lands where its GCP's longitude and latitude say."""
    from rasterio.control import GroundControlPoint
    from rasterio.crs import CRS

    from sarcolor.warp import WarpTarget, warp_raster

    with open_input(full_product) as scene:
        gcps, gcp_crs = scene.src.gcps
    f = 20
    height, width = 16854 // f + 1, 25931 // f + 1
    scaled = [GroundControlPoint(row=g.row / f, col=g.col / f, x=g.x, y=g.y, z=g.z) for g in gcps]
    inside = [g for g in scaled if 2 <= g.row <= height - 3 and 2 <= g.col <= width - 3]
    dots = np.zeros((height, width))
    for g in inside:  # split between the 2 x 2 pixel centres around the GCP, so the dot's centroid is the GCP
        r, c = g.row - 0.5, g.col - 0.5
        (r0, c0), (tr, tc) = (int(r), int(c)), (r - int(r), c - int(c))
        dots[r0 : r0 + 2, c0 : c0 + 2] += 255 * np.outer([1 - tr, tr], [1 - tc, tc])
    path = tmp_path / "dots.tif"
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=3, dtype="uint8") as dst:
        dst.write(np.stack([np.rint(dots).astype(np.uint8)] * 3))
        dst.gcps = (scaled, gcp_crs)
    warp_raster(path, tmp_path / "warped.tif", WarpTarget(CRS.from_epsg(32736), 50.0))
    misses = []
    with rasterio.open(tmp_path / "warped.tif") as dst:
        warped = dst.read(1).astype(float)
        xs, ys = transform_points(gcp_crs, dst.crs, [g.x for g in inside], [g.y for g in inside])
        for g, x, y in zip(inside, xs, ys):
            r, c = dst.index(x, y)
            patch = warped[r - 40 : r + 41, c - 40 : c + 41]  # 2 km around where the dot belongs
            rows, cols = np.mgrid[r - 40 : r + 41, c - 40 : c + 41]
            cx, cy = dst.xy((patch * rows).sum() / patch.sum(), (patch * cols).sum() / patch.sum())
            misses.append(np.hypot(cx - x, cy - y))
    # Metres, for source pixels of 200 m. A thin-plate spline through GCPs at terrain height bends sharply around
    # the highest ones (up to 1.9 km among neighbours at a few hundred metres), smearing their dots by up to 0.7 km;
    # GDAL's default polynomial misses by 138 m at the median and 1.7 km at worst.
    assert len(misses) > 150 and np.median(misses) < 30.0 and max(misses) < 1000.0


# -- dual-polarisation stacks and side-by-side files (issue 21 item 3) -------------------------------


def write_stack(path: Path, vv: Path, vh: Path, descriptions: tuple[str | None, str | None], vh_first: bool = False) -> Path:
    """The two real patches as one two-band GeoTIFF with the given band descriptions (in band order)."""
    with rasterio.open(vv) as a, rasterio.open(vh) as b:
        profile = a.profile.copy()
        bands = [b.read(1), a.read(1)] if vh_first else [a.read(1), b.read(1)]
    profile.update(count=2)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.stack(bands))
        for i, description in enumerate(descriptions, 1):
            if description:
                dst.set_band_description(i, description)
    return path


@pytest.fixture(scope="module")
def vh_colours(bigearthnet_pair, tmp_path_factory) -> Path:
    """The VH file colourised directly: what every way of giving the same VH band must give."""
    out = tmp_path_factory.mktemp("vh") / "vh_rgb.tif"
    run_cli("colorize", bigearthnet_pair[1], "-o", out, check=True)
    return out


@pytest.mark.parametrize("descriptions, vh_first", [
    (("VV", "VH"), False),
    (("VH", "VV"), True),
    (("Sigma0_VV_db", "Sigma0_VH_db"), False),  # SNAP's names
])
def test_a_vv_vh_stack_gives_its_vh_band_without_band(tmp_path, bigearthnet_pair, vh_colours, descriptions, vh_first):
    vv, vh = bigearthnet_pair
    stack = write_stack(tmp_path / "S1_dual.tif", vv, vh, descriptions, vh_first)
    vh_band = 1 if vh_first else 2
    with open_input(stack) as scene, rasterio.open(vh) as direct:
        assert scene.reader.band == vh_band
        np.testing.assert_array_equal(scene.reader.src.read(scene.reader.band), direct.read(1))
    out = tmp_path / "out.tif"
    result = run_cli("colorize", stack, "-o", out, check=True)
    said = " ".join(result.stderr.split())
    assert f"band {vh_band} of 2 ('{descriptions[vh_band - 1]}'): the VH band, the cross-polarisation the models expect" in said
    rgb, profile = read_all(out)
    expected, expected_profile = read_all(vh_colours)
    np.testing.assert_array_equal(rgb, expected)
    assert profile["crs"] == expected_profile["crs"] and profile["transform"] == expected_profile["transform"]
    with rasterio.open(out) as dst:
        assert dst.tags()["SARCOLOR_POLARISATION"] == "VH"


def test_either_file_of_a_side_by_side_pair_gives_the_vh_colours(tmp_path, bigearthnet_pair, vh_colours):
    vv, vh = bigearthnet_pair
    for given in (vv, vh):
        out = tmp_path / f"from_{given.stem[-2:]}.tif"
        result = run_cli("colorize", given, "-o", out, check=True)
        np.testing.assert_array_equal(read_all(out)[0], read_all(vh_colours)[0])
        said = " ".join(result.stderr.split())
        if given == vv:
            assert f"{vh.name}, the VH file beside the VV one given: the models expect VH" in said
        else:
            assert "its only band, VH" in said
    with open_input(vv) as scene, rasterio.open(vh) as direct:
        assert Path(scene.src.name).name == vh.name
        np.testing.assert_array_equal(scene.reader.src.read(1), direct.read(1))


def test_a_folder_with_both_files_of_a_pair_colours_the_scene_once(tmp_path, bigearthnet_pair, vh_colours):
    """X_VV.tif beside X_VH.tif is one scene: one output, named after the VH file it is coloured from; with
    --band each file is its own scene again (band 1 of X_VV.tif is VV)."""
    vv, vh = bigearthnet_pair
    folder, out = tmp_path / "pair", tmp_path / "out"
    folder.mkdir()
    shutil.copy(vv, folder / vv.name)
    shutil.copy(vh, folder / vh.name)
    result = run_cli("colorize", folder, "-o", out, check=True)
    assert sorted(p.name for p in out.iterdir()) == [vh.name]
    np.testing.assert_array_equal(read_all(out / vh.name)[0], read_all(vh_colours)[0])
    said = " ".join(result.stderr.split())
    assert f"{vv.name}: taken as {vh.name}'s co-pol partner" in said
    run_cli("colorize", folder, "-o", tmp_path / "by_band", "--band", "1", "--allow-co-pol", check=True)
    assert sorted(p.name for p in (tmp_path / "by_band").iterdir()) == sorted([vv.name, vh.name])


def test_the_vh_file_read_beside_the_input_is_never_an_output(tmp_path, bigearthnet_pair):
    vv, vh = bigearthnet_pair
    folder = tmp_path / "pair"
    folder.mkdir()
    shutil.copy(vv, folder / vv.name)
    shutil.copy(vh, folder / vh.name)
    before = (folder / vh.name).read_bytes()
    result = run_cli("colorize", folder / vv.name, "-o", folder / vh.name, "--overwrite")
    assert result.returncode == 2 and "inputs are never modified" in result.stderr.strip().splitlines()[-1]
    assert (folder / vh.name).read_bytes() == before


def test_a_vv_only_input_needs_allow_co_pol_and_warns(tmp_path, bigearthnet_pair):
    vv, _ = bigearthnet_pair
    alone = tmp_path / vv.name
    shutil.copy(vv, alone)
    out = tmp_path / "vv_rgb.tif"
    assert_clean_failure(run_cli("colorize", alone, "-o", out),
                         "its band is VV (co-polarisation), but the models expect VH: give the VH band or file, or --allow-co-pol", out)
    result = run_cli("colorize", alone, "-o", out, "--allow-co-pol", check=True)
    said = " ".join(result.stderr.split())
    assert "VV colourised on request (--allow-co-pol): the models expect VH" in said
    with rasterio.open(out) as dst:
        assert "VV colourised on request" in dst.tags()["SARCOLOR_WARNING"]
        assert dst.tags()["SARCOLOR_POLARISATION"] == "VV"
    stack_out = tmp_path / "b1.tif"  # the VV band of a described stack, picked by hand
    stack = write_stack(tmp_path / "dual.tif", vv, bigearthnet_pair[1], ("VV", "VH"))
    assert_clean_failure(run_cli("colorize", stack, "-o", stack_out, "--band", "1"), "band 1 is VV (co-polarisation)", stack_out)


def test_the_real_vv_db_scene_is_refused_without_the_flag(tmp_path):
    real = ROOT.parent / "shared" / "data" / "s1-products" / "S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif"
    if not real.is_file():
        pytest.skip(f"real pyroSAR VV scene not found at {real} (../shared/data/s1-products)")
    out = tmp_path / "out.tif"
    assert_clean_failure(run_cli("colorize", real, "-o", out), "is VV (co-polarisation)", out)
    with open_input(real, allow_co_pol=True) as scene:
        assert "VV colourised on request" in scene.reader.scale_decision.warning
        assert scene.reader.scale_decision.scale == "db"


def test_ambiguous_stacks_are_one_line_errors(tmp_path, bigearthnet_pair):
    vv, vh = bigearthnet_pair
    out = tmp_path / "out.tif"
    twice = write_stack(tmp_path / "twice.tif", vv, vh, ("VH", "VH"))
    assert_clean_failure(run_cli("colorize", twice, "-o", out), "several bands name a cross-polarisation", out)
    run_cli("colorize", twice, "-o", out, "--band", "2", check=True)  # --band settles it
    out.unlink()
    contradicting = tmp_path / "scene_VH.tif"
    write_stack(contradicting, vv, vh, ("VV", None))
    with rasterio.open(contradicting) as src:
        profile, band = src.profile.copy(), src.read(1)
    profile.update(count=1)
    with rasterio.open(contradicting, "w", **profile) as dst:
        dst.write(band[None])
        dst.set_band_description(1, "VV")
    assert_clean_failure(run_cli("colorize", contradicting, "-o", out), "its name says VH but its band says VV", out)


def test_an_unnamed_stack_is_refused_and_the_api_chooses_as_the_cli(tmp_path, bigearthnet_pair, model):
    vv, vh = bigearthnet_pair
    unnamed = write_stack(tmp_path / "stack.tif", vv, vh, (None, None))
    with pytest.raises(SarcolorError, match="has 2 bands and none names its polarisation: give --band N"):
        with open_input(unnamed):
            pass
    with open_input(unnamed, band=2) as scene:
        assert scene.reader.band == 2
    xr = pytest.importorskip("xarray", reason="the api extra is not installed")
    del xr
    from sarcolor.api import colorize

    stack = write_stack(tmp_path / "dual.tif", vv, vh, ("VV", "VH"))
    from_stack = colorize(stack, model="default")
    from_file = colorize(vh, model="default")
    np.testing.assert_array_equal(from_stack.values, from_file.values)
