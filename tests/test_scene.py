"""Scene-scale features: COG output, --warp, real BigEarthNet Sentinel-1 inputs, Dask, DDP training."""
import shutil

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.warp import reproject, transform_bounds

from conftest import COAST, FIELDS, read_all, run_cli, run_cli_process
from test_cli import assert_clean_failure, write_gcp_example


def test_cog_output_is_cloud_optimised_with_overviews(tmp_path, coast_rgb):
    plain, cog = coast_rgb, tmp_path / "cog.tif"
    run_cli("colorize", COAST, "-o", cog, "--cog", check=True)
    with rasterio.open(cog) as dst, rasterio.open(COAST) as src:
        assert dst.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert dst.overviews(1) == [2]
        assert dst.crs == src.crs and dst.transform == src.transform
    np.testing.assert_array_equal(read_all(cog)[0], read_all(plain)[0])
    assert_clean_failure(run_cli("colorize", COAST, "-o", tmp_path / "x.png", "--cog"), "--cog needs a .tif output", tmp_path / "x.png")


def test_warp_reprojects_to_the_asked_crs(tmp_path, coast_rgb):
    out = tmp_path / "wgs84.tif"
    run_cli("colorize", COAST, "-o", out, "--warp", "EPSG:4326", check=True)
    with rasterio.open(out) as dst, rasterio.open(COAST) as src:
        assert dst.crs.to_epsg() == 4326
        expected = transform_bounds(src.crs, dst.crs, *src.bounds)
        assert np.allclose(dst.bounds, expected, atol=abs(dst.transform.a) * 2)
        mask = dst.dataset_mask()
        assert mask.mean() > 0.9 * 255 and (dst.read(1)[mask > 0] > 0).all()
        warped, dst_crs, dst_transform = dst.read().astype(np.float32), dst.crs, dst.transform
    # The same pixels as reprojecting the unwarped output (issue 14: a 180° turn passed this test).
    with rasterio.open(coast_rgb) as src:
        expected = np.zeros_like(warped)
        reproject(src.read(), expected, src_transform=src.transform, src_crs=src.crs,
                  dst_transform=dst_transform, dst_crs=dst_crs, resampling=Resampling.bilinear)
    inner = mask[None].repeat(3, 0) > 0
    inner[:, :2], inner[:, -2:], inner[:, :, :2], inner[:, :, -2:] = False, False, False, False
    assert np.abs(warped - expected)[inner].mean() < 1.0
    assert_clean_failure(run_cli("colorize", COAST, "-o", tmp_path / "bad.tif", "--warp", "EPSG:99999999"), "is not a CRS", tmp_path / "bad.tif")


def test_warp_of_a_gcp_only_input_uses_its_gcps(tmp_path):
    path, gcps = write_gcp_example(tmp_path / "gcp.tif")
    out = tmp_path / "gcp_warped.tif"
    run_cli("colorize", path, "-o", out, "--warp", "EPSG:4326", check=True)
    with rasterio.open(out) as dst:
        assert dst.crs.to_epsg() == 4326 and not dst.gcps[0]
        left, bottom, right, top = dst.bounds
        assert left == pytest.approx(-117.8, abs=2e-4) and top == pytest.approx(33.6, abs=2e-4)
        assert right == pytest.approx(-117.8 + 511e-4, abs=3e-4) and bottom == pytest.approx(33.6 - 511e-4, abs=3e-4)


# -- real Sentinel-1 products: BigEarthNet patches (float32 sigma0 in dB, VV and VH) ----------


def test_dual_pol_db_input_uses_the_chosen_band(bigearthnet_pair, tmp_path):
    vv, vh = bigearthnet_pair
    with rasterio.open(vv) as a, rasterio.open(vh) as b:
        profile = a.profile.copy()
        stacked = np.stack([a.read(1), b.read(1)])
    assert stacked.dtype == np.float32 and stacked.min() < 0  # real sigma0 in dB
    profile.update(count=2)
    dual = tmp_path / "vv_vh.tif"
    with rasterio.open(dual, "w", **profile) as dst:
        dst.write(stacked)
    out_dual, out_vh = tmp_path / "dual_rgb.tif", tmp_path / "vh_rgb.tif"
    result = run_cli("colorize", dual, "-o", out_dual, "--band", "2", check=True)
    assert "auto -> db" in result.stderr
    run_cli("colorize", vh, "-o", out_vh, check=True)
    rgb, out_profile = read_all(out_dual)
    np.testing.assert_array_equal(rgb, read_all(out_vh)[0])
    assert out_profile["crs"] == profile["crs"] and out_profile["transform"] == profile["transform"]
    assert rgb.shape == (3, 120, 120)
    assert_clean_failure(run_cli("colorize", dual, "-o", tmp_path / "b3.tif", "--band", "3"), "has 2 band(s)", tmp_path / "b3.tif")


def test_db_linear_and_uint16_amplitude_give_the_same_colours(bigearthnet_pair, tmp_path):
    _, vh = bigearthnet_pair
    with rasterio.open(vh) as src:
        profile = src.profile.copy()
        db = src.read(1)
    intensity = (10 ** (db / 10)).astype(np.float32)
    amplitude = np.sqrt(intensity)
    dn = np.clip(np.rint(amplitude / amplitude.max() * 60000), 1, 65535).astype(np.uint16)  # GRD-like DN, no zeros
    outputs = {}
    for name, data, scale in (("db", db, "db"), ("intensity", intensity, "intensity"), ("uint16", dn, "auto")):
        path = tmp_path / f"{name}.tif"
        with rasterio.open(path, "w", **{**profile, "dtype": str(data.dtype)}) as dst:
            dst.write(data[None])
        out = tmp_path / f"{name}_rgb.tif"
        run_cli("colorize", path, "-o", out, "--input-scale", scale, check=True)
        outputs[name] = read_all(out)[0].astype(int)
    assert np.abs(outputs["db"] - outputs["intensity"]).max() <= 1
    assert np.abs(outputs["db"] - outputs["uint16"]).max() <= 2


# -- many scenes on Dask ----------------------------------------------------------------------


def test_dask_local_cluster_colourises_a_folder_and_reports_a_bad_scene(tmp_path):
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    scenes, out = tmp_path / "scenes", tmp_path / "out"
    scenes.mkdir()
    for path in (COAST, FIELDS):
        shutil.copy(path, scenes / path.name)
    (scenes / "broken.tif").write_bytes(b"II*\x00 truncated")
    # In a process of its own: the run starts a local cluster of worker processes and shuts it down.
    result = run_cli_process("colorize", scenes, "-o", out, "--workers", "2", "--model", "smooth")  # a bundled name reaches the workers
    assert result.returncode != 0 and "1 of 3 scene(s) failed" in result.stderr
    assert "broken.tif" in result.stderr and "Traceback" not in result.stderr
    assert "Scheduler" not in result.stderr  # Dask's own INFO chatter (and shutdown tracebacks) stay quiet
    assert sorted(p.name for p in out.iterdir()) == sorted([COAST.name, FIELDS.name])
    single = tmp_path / "single.tif"
    run_cli("colorize", COAST, "-o", single, "--model", "smooth", check=True)
    np.testing.assert_array_equal(read_all(out / COAST.name)[0], read_all(single)[0])
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    rerun = run_cli_process("colorize", scenes, "-o", out, "--workers", "1")
    assert "skipped" in rerun.stderr and "1 of 1 scene(s) failed" in rerun.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_real_db_patches_pass_the_training_data_check_unless_read_as_normalised(bigearthnet_pair, tmp_path):
    """Issue 13: a real Sentinel-1 patch from Europe, read right, is like the training scenes' radar
    statistics; the same file read with the wrong --input-scale is flagged."""
    _, vh = bigearthnet_pair
    right = run_cli("colorize", vh, "-o", tmp_path / "right.tif", check=True)
    assert "training data" not in right.stderr
    wrong = run_cli("colorize", vh, "-o", tmp_path / "wrong.tif", "--input-scale", "normalized", check=True)
    assert "unlike the model's training data" in wrong.stderr
