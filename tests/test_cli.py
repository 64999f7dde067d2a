import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.control import GroundControlPoint

from sarcolor.readers.raster import SarReader

from conftest import COAST, EXAMPLES, FIELDS, PAIRS, mounted_tmpfs, read_all, run_cli, run_cli_process
from test_io import example_normalised, write_variant


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def assert_clean_failure(result, expected_text, *absent_outputs):
    assert result.returncode != 0
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert expected_text in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    for path in absent_outputs:
        assert not path.exists()
    leftovers = [p for path in absent_outputs for p in path.parent.glob(f".{path.name}*")]
    assert not leftovers


def test_colorize_geotiff_keeps_georeferencing(coast_rgb):
    out = coast_rgb
    rgb, profile = read_all(out)
    with rasterio.open(COAST) as src:
        assert profile["crs"] == src.crs and profile["crs"].to_epsg() == 3395
        assert profile["transform"] == src.transform
        assert (profile["width"], profile["height"]) == (src.width, src.height)
    assert rgb.shape == (3, 512, 512) and rgb.dtype == np.uint8
    assert profile["tiled"] and profile["compress"] == "deflate"
    with rasterio.open(out) as dst:
        assert dst.colorinterp[:3] == (rasterio.enums.ColorInterp.red, rasterio.enums.ColorInterp.green, rasterio.enums.ColorInterp.blue)
    assert np.abs(rgb[0].astype(int) - rgb[2].astype(int)).mean() > 2  # colour, not grey
    assert list(out.parent.iterdir()) == [out]
    assert out.stat().st_mode & 0o777 == 0o666 & ~current_umask()


def test_colorized_example_shows_the_scene(coast_rgb):
    rgb, _ = read_all(coast_rgb)
    assert rgb.std(axis=(1, 2)).min() > 5  # sea, beach and town are not one colour


def test_png_output_and_input_untouched(tmp_path, coast_rgb):
    before = COAST.read_bytes()
    out = tmp_path / "coast.png"
    run_cli("colorize", COAST, "-o", out, check=True)
    rgb, profile = read_all(out)
    assert profile["driver"] == "PNG" and rgb.shape == (3, 512, 512)
    np.testing.assert_array_equal(read_all(coast_rgb)[0], rgb)
    assert COAST.read_bytes() == before


def test_nodata_becomes_mask_and_alpha(tmp_path):
    data = example_normalised() * 0.5
    data[:64] = np.nan
    src = write_variant(tmp_path / "nan.tif", data[None].astype(np.float32), nodata=None)
    run_cli("colorize", src, "-o", tmp_path / "nan_rgb.tif", "--input-scale", "amplitude", check=True)
    with rasterio.open(tmp_path / "nan_rgb.tif") as dst:
        mask = dst.dataset_mask()
        rgb = dst.read()
    assert (mask[:64] == 0).all() and (mask[64:] == 255).all()
    assert (rgb[:, :64] == 0).all()
    run_cli("colorize", src, "-o", tmp_path / "nan_rgb.png", "--input-scale", "amplitude", check=True)
    rgba, _ = read_all(tmp_path / "nan_rgb.png")
    assert rgba.shape[0] == 4 and (rgba[3, :64] == 0).all() and (rgba[3, 64:] == 255).all()


def write_gcp_example(path):
    """The coast example georeferenced only by four GCPs in EPSG:4326, as a GRD measurement file is."""
    data = (example_normalised() * 255).astype(np.uint8)
    gcps = [GroundControlPoint(row=r, col=c, x=-117.8 + c * 1e-4, y=33.6 - r * 1e-4, z=0.0) for r in (0, 511) for c in (0, 511)]
    with rasterio.open(path, "w", driver="GTiff", width=512, height=512, count=1, dtype="uint8") as dst:
        dst.write(data[None])
        dst.gcps = (gcps, rasterio.crs.CRS.from_epsg(4326))
    return path, gcps


def test_gcps_are_kept(tmp_path):
    path, gcps = write_gcp_example(tmp_path / "gcp.tif")
    run_cli("colorize", path, "-o", tmp_path / "gcp_rgb.tif", check=True)
    with rasterio.open(tmp_path / "gcp_rgb.tif") as dst:
        out_gcps, crs = dst.gcps
    assert crs.to_epsg() == 4326
    assert [(g.row, g.col, g.x, g.y) for g in out_gcps] == [(g.row, g.col, g.x, g.y) for g in gcps]


def test_folder_input(tmp_path):
    out_dir = tmp_path / "out"
    run_cli("colorize", EXAMPLES, "-o", out_dir, check=True)
    assert sorted(p.name for p in out_dir.iterdir()) == sorted([COAST.name, FIELDS.name])
    again = run_cli("colorize", EXAMPLES, "-o", out_dir)
    assert again.returncode == 0 and "skipped" in again.stderr


def test_existing_output_is_kept_without_overwrite(tmp_path):
    out = tmp_path / "exists.tif"
    out.write_bytes(b"precious")
    result = run_cli("colorize", COAST, "-o", out)
    assert_clean_failure(result, "output exists")
    assert out.read_bytes() == b"precious"
    run_cli("colorize", COAST, "-o", out, "--overwrite", check=True)
    assert read_all(out)[0].shape == (3, 512, 512)


@pytest.mark.parametrize(
    "make_input,expected",
    [
        (lambda d: d / "missing.tif", "input not found"),
        (lambda d: (d / "notes.tif").write_text("these are not pixels") and d / "notes.tif", "cannot read"),
        (lambda d: (d / "cut.tif").write_bytes(COAST.read_bytes()[:5000]) and d / "cut.tif", "cannot read"),
        (lambda d: write_variant(d / "allnan.tif", np.full((1, 512, 512), np.nan, np.float32)), "no valid pixels"),
        (lambda d: COAST, "has 1 band(s); --band 3"),
    ],
    ids=["missing", "not-an-image", "truncated-tiff", "all-nan", "bad-band"],
)
def test_bad_inputs_fail_cleanly(tmp_path, make_input, expected):
    source = make_input(tmp_path)
    out = tmp_path / "result.tif"
    args = ["--band", "3"] if expected.startswith("has 1 band") else []
    assert_clean_failure(run_cli("colorize", source, "-o", out, *args), expected, out)


def test_bad_output_and_options_fail_cleanly(tmp_path):
    assert_clean_failure(run_cli("colorize", COAST, "-o", tmp_path / "x.bmp"), "unknown extension", tmp_path / "x.bmp")
    assert_clean_failure(run_cli("colorize", COAST, "-o", tmp_path / "no" / "x.tif"), "output folder does not exist")
    assert_clean_failure(run_cli("colorize", COAST, "-o", tmp_path / "x.tif", "--tile", "100"), "multiple of 32", tmp_path / "x.tif")
    assert_clean_failure(run_cli("colorize", COAST, "-o", tmp_path / "x.tif", "--batch-size", "0"), "need --batch-size >= 1", tmp_path / "x.tif")
    assert_clean_failure(run_cli("evaluate", "--data", PAIRS, "--tile", "100", "--no-baselines"), "multiple of 32 for this model")
    assert_clean_failure(run_cli("colorize", COAST, "-o", tmp_path / "x.tif", "--model", tmp_path / "none.onnx"), "model not found")
    bad_model = tmp_path / "bad.onnx"
    bad_model.write_text("junk")
    assert_clean_failure(run_cli("colorize", COAST, "-o", tmp_path / "x.tif", "--model", bad_model), "cannot load model", tmp_path / "x.tif")


def test_more_user_errors_are_one_line_and_leave_nothing(tmp_path):
    """Issue 14: these were 'unexpected ...' errors, a hang, or left an output folder behind."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):  # root ignores permissions: use a folder nobody can write, /proc
        locked = Path("/proc")
    assert_clean_failure(run_cli("colorize", COAST, "-o", locked / "x.tif"), "not writable")
    assert_clean_failure(run_cli("export", COAST, "-o", tmp_path / "missing" / "x.onnx"), "output folder does not exist")
    # Every command that writes checks its target the same way, before any work.
    assert_clean_failure(run_cli("export", COAST, "-o", locked / "x.onnx"), "not writable")
    assert_clean_failure(run_cli("finetune", "--data", PAIRS, "-o", locked / "x.onnx"), "not writable")
    assert_clean_failure(run_cli("pairs", COAST, COAST, "-o", locked / "pairs"), "not writable")
    fifo = tmp_path / "pipe.tif"
    os.mkfifo(fifo)
    assert_clean_failure(run_cli("colorize", fifo, "-o", tmp_path / "y.tif"), "not a regular file")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".hidden.tif").write_bytes(COAST.read_bytes())
    assert_clean_failure(run_cli("colorize", empty, "-o", tmp_path / "out"), "no images")
    assert not (tmp_path / "out").exists()


def test_png_output_prints_no_georeferencing_warning(tmp_path):
    result = run_cli("colorize", PAIRS / "sar" / "014_r512_c0.png", "-o", tmp_path / "x.png", check=True)
    assert "Warning" not in result.stderr and "georeferenc" not in result.stderr


def test_detail_strength_is_checked_and_changes_the_output(tmp_path, coast_rgb):
    assert_clean_failure(run_cli("colorize", COAST, "-o", tmp_path / "x.tif", "--detail", "2"), "--detail must be in [0, 1]", tmp_path / "x.tif")
    run_cli("colorize", COAST, "-o", tmp_path / "smooth.tif", "--detail", "0", check=True)
    run_cli("colorize", COAST, "-o", tmp_path / "named.tif", "--model", "smooth", check=True)
    smooth, named = (read_all(tmp_path / f"{n}.tif")[0] for n in ("smooth", "named"))
    full = read_all(coast_rgb)[0]
    np.testing.assert_array_equal(smooth, named)
    assert np.abs(np.diff(full.astype(int), axis=-1)).mean() > 2 * np.abs(np.diff(smooth.astype(int), axis=-1)).mean()


def tiled_example(path: Path, repeat: int = 2) -> Path:
    """The 512² coast example repeated ``repeat`` x ``repeat`` (2: a 1024² GeoTIFF, 1.3 MB of output)."""
    with rasterio.open(COAST) as src:
        profile, sar = src.profile, src.read()
    profile.update(width=512 * repeat, height=512 * repeat)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.tile(sar, (1, repeat, repeat)))
    return path


def test_full_disk_fails_and_keeps_the_existing_output(tmp_path):
    """Issue 14: GDAL's write errors on a full disk were logged, then 'wrote' and exit 0, over a good file.
    A 500 KB disk holding the coast example's output (320 KB) has room for the free-space check of another
    512² output (112 KB), not for the output itself (the fields example's, 300 KB and more in any format)."""
    with mounted_tmpfs(tmp_path / "small", "500k") as small_disk:
        out = small_disk / "x.tif"
        run_cli("colorize", COAST, "-o", out, check=True)
        good = out.read_bytes()
        for target, extra in ((out, ["--overwrite"]), (small_disk / "y.png", []), (small_disk / "z.tif", ["--cog"])):
            result = run_cli("colorize", FIELDS, "-o", target, *extra)
            assert result.returncode == 2 and "Traceback" not in result.stderr
            assert result.stderr.strip().splitlines()[-1].startswith(f"error: cannot write {target}: no space left on device")
            assert sorted(p.name for p in small_disk.iterdir()) == ["x.tif"]  # no temp file left, no partial output
        assert out.read_bytes() == good
        with open(small_disk / "filler", "wb") as f:  # fill the disk: GDAL crashed in close() on a 100 % full disk
            try:
                f.write(b"\0" * 2**21)
            except OSError:
                pass
        result = run_cli_process("-q", "colorize", COAST, "-o", small_disk / "w.tif")  # a crash must not take pytest down
        assert_clean_failure(result, "not enough free space", small_disk / "w.tif")


@pytest.mark.parametrize("name, extra", [("z.tif", ["--cog"]), ("y.png", [])])
def test_a_disk_that_fills_during_the_conversion_is_the_one_line_no_space_error(tmp_path, name, extra):
    """A 500 KB disk holds the coast example's GeoTIFF (320 KB) but not the COG or PNG made from it beside it: GDAL's
    own error from the copy ('TIFFRewriteDirectory', 'libpng: Write Error') was an unexpected error, exit 1."""
    with mounted_tmpfs(tmp_path / "small", "500k") as disk:
        out = disk / name
        result = run_cli("colorize", COAST, "-o", out, *extra)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines()[-1] == f"error: cannot write {out}: no space left on device"
        assert list(disk.iterdir()) == []  # no temp file left, no partial output


def test_sigterm_mid_run_removes_the_temporary_output(tmp_path):
    """Issue 14: SIGTERM (a service manager's stop) left the temporary output behind, unlike Ctrl-C."""
    big = tiled_example(tmp_path / "big.tif", repeat=8)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "x.tif"
    process = subprocess.Popen([sys.executable, "-m", "sarcolor", "colorize", big, "-o", out], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list(out_dir.glob(".x.tif.*.tif")) and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be interrupted"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr
    assert list(out_dir.iterdir()) == []


def test_stale_temporary_outputs_of_a_killed_run_are_removed(tmp_path):
    """Issue 14: temp files of a SIGKILLed run stayed forever; the next run on the same target removes them."""
    out = tmp_path / "x.tif"
    stale = [tmp_path / ".x.tif.k3j_9a0q.tif", tmp_path / ".x.tif.k3j_9a0q.tif.aux.xml", tmp_path / ".x.tif.zz00aa11.png"]
    young = tmp_path / ".x.tif.abcdefgh.tif"  # may belong to a run writing right now
    others = [tmp_path / ".x.tif.notes", tmp_path / ".y.tif.k3j_9a0q.tif", tmp_path / "x.tif.k3j_9a0q.tif"]
    for path in [*stale, young, *others]:
        path.write_bytes(b"partial")
    hour_ago = time.time() - 3600
    for path in [*stale, *others]:
        os.utime(path, (hour_ago, hour_ago))
    run_cli("colorize", COAST, "-o", out, check=True)
    assert sorted(tmp_path.iterdir()) == sorted([out, young, *others])


def test_db_scale_on_amplitude_data_is_one_clean_line(tmp_path):
    """Issue 14: --input-scale db on uint16 amplitude printed numpy RuntimeWarnings before its error."""
    with rasterio.open(COAST) as src:
        amplitude = (src.read().astype(np.uint16) * 100 + 1)
    source = write_variant(tmp_path / "amplitude.tif", amplitude)
    result = run_cli("colorize", source, "-o", tmp_path / "x.tif", "--input-scale", "db")
    assert_clean_failure(result, "not sigma0 in dB", tmp_path / "x.tif")


@pytest.mark.parametrize(
    "split_text, expected",
    [
        ('{"train": [], "val": ["014_r512_c0"]}', "split 'train' in"),
        ('{"train": ["003_r384_c384"], "val": []}', "split 'val' in"),
        ("{not json", "is not JSON"),
        ('["003_r384_c384"]', "must map split names to lists of pair ids"),
    ],
    ids=["empty-train", "empty-val", "not-json", "not-a-mapping"],
)
def test_evaluate_bad_split_files_are_one_line_errors(tmp_path, split_text, expected):
    """Issue 14: 'unexpected IndexError', 'unexpected JSONDecodeError', or exit 0 with a table of NaN."""
    pairs = tmp_path / "pairs"
    shutil.copytree(PAIRS, pairs)
    (pairs / "split.json").write_text(split_text)
    assert_clean_failure(run_cli("evaluate", "--data", pairs, "--no-perceptual"), expected)


def grid_origin(path: Path) -> tuple[int, int]:
    """Where colorize starts its tiles: the file's first pixel on its map grid."""
    with rasterio.open(path) as src:
        return SarReader(src).grid_origin


def test_cli_output_is_the_models_prediction_channel_for_channel(tmp_path, model):
    """Issue 14: swapping R and B on the way to 8 bits passed every CLI test."""
    from sarcolor.tiling import predict_array

    out = tmp_path / "fields.tif"
    run_cli("colorize", FIELDS, "-o", out, check=True)
    with rasterio.open(FIELDS) as src:
        sar = src.read(1).astype(np.float32) / 255.0
    expected = predict_array(model, sar, tile=512, overlap=32, multiple=model.multiple, origin=grid_origin(FIELDS))[:3]
    expected = np.rint(np.clip(expected, 0, 1) * 255)
    written = read_all(out)[0].astype(np.float32)
    assert np.abs(written - expected).max() <= 1
    assert np.abs(written[0] - written[2]).mean() > 2  # a swap of R and B would show


def invalid_top_rows(tmp_path: Path, kind: str) -> tuple[Path, list[str]]:
    """The fields example with its top 64 rows invalid in one of the ways real products mark it."""
    with rasterio.open(FIELDS) as src:
        grey = src.read(1)
    amplitude = grey.astype(np.uint16) * 40 + 1  # uint16 amplitude, as a GRD
    if kind == "declared-nodata":
        data = amplitude.copy()
        data[:64] = 65535
        return write_variant(tmp_path / "nodata.tif", data[None], like=FIELDS, nodata=65535), []
    if kind == "grd-zero-border":  # no nodata declared: uint16 0 is the GRD border fill
        data = amplitude.copy()
        data[:64] = 0
        return write_variant(tmp_path / "border.tif", data[None], like=FIELDS, nodata=None), []
    if kind == "internal-mask":
        path = tmp_path / "masked.tif"
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
            write_variant(path, amplitude[None], like=FIELDS, nodata=None)
            with rasterio.open(path, "r+") as dst:
                mask = np.full(grey.shape, 255, np.uint8)
                mask[:64] = 0
                dst.write_mask(mask)
        return path, []
    if kind == "alpha":  # grey + alpha PNG: band 1 is the SAR, band 2 says where it is valid
        alpha = np.full(grey.shape, 255, np.uint8)
        alpha[:64] = 0
        path = tmp_path / "alpha.png"
        with rasterio.open(path, "w", driver="PNG", width=512, height=512, count=2, dtype="uint8") as dst:
            dst.write(np.stack([grey, alpha]))
            dst.colorinterp = [rasterio.enums.ColorInterp.gray, rasterio.enums.ColorInterp.alpha]
        return path, []
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["declared-nodata", "grd-zero-border", "internal-mask", "alpha"])
@pytest.mark.parametrize("suffix", [".tif", ".png", ".jpg"])
def test_invalid_pixels_are_masked_in_every_output_format(tmp_path, kind, suffix):
    """Issue 14: declared nodata, internal masks, alpha, the uint16 zero border and JPEG output had no CLI test."""
    source, extra = invalid_top_rows(tmp_path, kind)
    out = tmp_path / f"out{suffix}"
    run_cli("colorize", source, "-o", out, *extra, check=True)
    with rasterio.open(out) as dst:
        rgb = dst.read([1, 2, 3])
        valid = dst.dataset_mask() if suffix != ".jpg" else None
    if valid is not None:  # GeoTIFF mask or PNG alpha
        assert (valid[:64] == 0).all() and (valid[64:] == 255).all()
    black = (rgb[:, :60] <= (12 if suffix == ".jpg" else 0)).all()  # JPEG blurs the edge of black a little
    assert black and rgb[:, 68:].mean() > 40


def test_a_long_strip_streams_through_every_window_like_the_in_memory_path(tmp_path, model):
    """Issue 14: long strip streaming was never exercised: 10 strips of tiles, read and written window by window
    (each strip is read, blended with the next and written alone, whatever their number)."""
    from sarcolor.tiling import predict_array

    with rasterio.open(COAST) as src:
        profile, sar = src.profile, src.read(1)
    tall = np.concatenate([sar, sar[::-1]] * 2)[:, :256]  # 2048 x 256, mirrored so each repeat joins smoothly
    profile.update(width=256, height=tall.shape[0])
    source = tmp_path / "tall.tif"
    with rasterio.open(source, "w", **profile) as dst:
        dst.write(tall[None])
    out = tmp_path / "tall_rgb.tif"
    run_cli("colorize", source, "-o", out, "--tile", "256", "--overlap", "32", check=True)
    expected = predict_array(model, tall / 255.0, tile=256, overlap=32, multiple=model.multiple, origin=grid_origin(source))
    expected = np.rint(np.clip(expected[:3], 0, 1) * 255)
    written, written_profile = read_all(out)
    assert written.shape == (3, 2048, 256) and written_profile["transform"] == profile["transform"]
    assert np.abs(written.astype(np.float32) - expected).max() <= 1
