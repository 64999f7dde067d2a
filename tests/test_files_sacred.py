"""Issue 24: the user's files are sacred. Inputs are never modified, outputs appear whole or not at all,
and every mistake is one line of error. Data-loss checks compare file contents (hashes), not exit codes."""
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from conftest import COAST, FIELDS, PAIRS, mounted_tmpfs, run_cli
from test_cli import assert_clean_failure, current_umask, tiled_example
from test_pairs import example_pair, write_geotiff


def digest(path: Path) -> dict[str, str]:
    """The SHA-256 of a file, or of every file under a folder, by relative path."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path.parent)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def sar_and_optical_folders(root: Path) -> tuple[Path, Path]:
    """Two folders of real pairs with matching names, as a user keeps them."""
    sar, optical = root / "s", root / "o"
    sar.mkdir(parents=True)
    optical.mkdir()
    for pair_id in ("003_r384_c384", "014_r512_c0"):
        shutil.copy(PAIRS / "sar" / f"{pair_id}.png", sar)
        shutil.copy(PAIRS / "opt" / f"{pair_id}.png", optical)
    return sar, optical


def assert_failed_with(result, error_line: str) -> None:
    """Exit 2, no traceback, and the error as the last line (warnings the run logged before it may precede it)."""
    assert result.returncode == 2 and "Traceback" not in result.stderr + result.stdout
    assert result.stderr.strip().splitlines()[-1].startswith(error_line), result.stderr


# -- data loss ---------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["s", ".", "s/inner"], ids=["is", "contains", "inside"])
def test_pairs_never_replaces_its_input_folder(tmp_path, target):
    """`pairs f2/s f2/o -o f2/s --overwrite` deleted the user's SAR images."""
    sar, optical = sar_and_optical_folders(tmp_path / "f2")
    before = digest(tmp_path / "f2")
    output = (tmp_path / "f2" / target).resolve() if target == "." else tmp_path / "f2" / target
    result = run_cli("pairs", sar, optical, "-o", output, "--overwrite")
    assert_clean_failure(result, "inputs are never modified")
    assert digest(tmp_path / "f2") == before


def test_colorize_confidence_never_replaces_its_input(tmp_path):
    """Input c4/a_confidence.tif, -o c4/a.tif --confidence --overwrite replaced the input by the map."""
    source = tmp_path / "a_confidence.tif"
    shutil.copy(COAST, source)
    before = digest(tmp_path)
    result = run_cli("colorize", source, "-o", tmp_path / "a.tif", "--confidence", "--overwrite")
    assert_clean_failure(result, f"output {source} is the input {source}", tmp_path / "a.tif")
    assert digest(tmp_path) == before


def test_same_run_outputs_that_collide_are_refused_before_any_work(tmp_path):
    """a.tif's confidence map and a_confidence.tif's image would both be out/a_confidence.tif."""
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    shutil.copy(COAST, scenes / "a.tif")
    shutil.copy(FIELDS, scenes / "a_confidence.tif")
    out = tmp_path / "out"
    result = run_cli("colorize", scenes, "-o", out, "--confidence", "--overwrite")
    assert_clean_failure(
        result, f"the confidence map of a.tif and the image of a_confidence.tif would both be written to {out / 'a_confidence.tif'}",
    )
    assert not out.exists()


def test_colorize_into_its_own_folder_is_refused(tmp_path):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    shutil.copy(COAST, scenes / "a.tif")
    before = digest(scenes)
    for output in (scenes, scenes / "rgb"):
        assert_clean_failure(run_cli("colorize", scenes, "-o", output, "--overwrite"), "inputs are never modified")
    assert digest(scenes) == before


def test_an_output_and_its_confidence_map_appear_together_or_not_at_all(tmp_path, small_disk):
    """On a full disk the RGB failed but a complete confidence map was left; with --overwrite over an existing
    pair the old RGB stayed beside the new scene's map."""
    big = tiled_example(tmp_path / "big.tif")
    out = small_disk / "a.tif"
    # (GDAL's compression threads print libtiff's own "No space left" line before sarcolor's error line)
    assert_failed_with(run_cli("-q", "colorize", big, "-o", out, "--confidence"), f"error: cannot write {out}: no space left on device")
    assert list(small_disk.iterdir()) == []
    run_cli("colorize", COAST, "-o", out, "--confidence", check=True)
    pair = digest(small_disk)
    assert sorted(pair) == ["small/a.tif", "small/a_confidence.tif"]
    result = run_cli("colorize", big, "-o", out, "--confidence", "--overwrite")
    assert result.returncode == 2 and "no space left on device" in result.stderr
    assert digest(small_disk) == pair  # the old pair, whole: no new map beside the old image, no temp file


def finetune(*args):
    """A fine-tuning run of a few seconds on the bundled example pairs."""
    return run_cli("-q", "finetune", "--data", PAIRS, "--minutes", "0.05", *args)


def test_finetune_on_a_full_disk_keeps_the_old_model_and_leaves_nothing(tmp_path):
    """-o small/m.onnx on a full disk: 'unexpected OSError' and a 2 MB small/.m.onnx.tmp left behind."""
    with mounted_tmpfs(tmp_path / "small", "5m") as small:
        model = small / "m.onnx"
        shutil.copy(COAST, model)  # stands in for the old model that --overwrite would replace
        with open(small / "filler", "wb") as filler:  # leaves under 2 MB: the new 3.2 MB model does not fit
            filler.write(b"\0" * 3 * 2**20)
        before = digest(small)
        result = finetune("-o", model, "--out-dir", tmp_path / "run", "--overwrite")
        assert_failed_with(result, f"error: cannot write {model}: no space left on device")
        assert digest(small) == before
    assert not (tmp_path / "run").exists()


def test_finetune_with_its_run_folder_on_a_full_disk_leaves_nothing(tmp_path, small_disk):
    """'unexpected RuntimeError: . unexpected pos …' and m_run/.last.pt.tmp left behind."""
    run = small_disk / "m_run"
    result = finetune("-o", tmp_path / "m.onnx", "--out-dir", run)
    assert_failed_with(result, f"error: cannot write {run}")
    assert "no space left on device" in result.stderr and not (tmp_path / "m.onnx").exists()
    assert list(small_disk.iterdir()) == []


def test_pairs_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, small_disk):
    """'unexpected CPLE_AppDefinedError: libpng: Write Error'."""
    sar, optical = tiled_example(tmp_path / "sar.tif", repeat=4), tmp_path / "opt.tif"
    with rasterio.open(sar) as src:
        rgb = np.tile(example_pair("014_r512_c0")[1], (1, 4, 4))
        write_geotiff(optical, rgb, src.crs, src.transform)
    out = small_disk / "pairs"
    assert_clean_failure(run_cli("-q", "pairs", sar, optical, "-o", out), f"cannot write {out}: no space left on device", out)
    assert list(small_disk.iterdir()) == []


# -- wrong answers and unclear errors ----------------------------------------------------------


@pytest.mark.parametrize("minutes", ["nan", "inf", "1e12", "0", "-1"])
def test_finetune_refuses_budgets_that_are_no_budget(tmp_path, minutes):
    result = run_cli("finetune", "--data", PAIRS, "-o", tmp_path / "n.onnx", "--minutes", minutes)
    assert_clean_failure(result, "need 0 < --minutes <= 10080 (a week)", tmp_path / "n.onnx", tmp_path / "n_run")


@pytest.mark.parametrize("content", [b"not a checkpoint\n", None], ids=["text", "onnx"])
def test_finetune_from_a_file_that_is_no_checkpoint(tmp_path, content):
    start = tmp_path / ("notes.pt" if content else "model.onnx")
    if content:
        start.write_bytes(content)
    else:
        shutil.copy(Path(__file__).parents[1] / "sarcolor" / "weights" / "default.onnx", start)
    result = run_cli("finetune", "--data", PAIRS, "-o", tmp_path / "m.onnx", "--from", start, "--minutes", "1")
    assert_clean_failure(result, f"--from: {start} is not a sarcolor training checkpoint (.pt)", tmp_path / "m.onnx")
    assert "weights_only" not in result.stderr


def rgba_geotiff(path: Path, rgb: np.ndarray) -> Path:
    """RGB plus an alpha band, as GDAL writes 4-band uint8 imagery (the alpha marks a 40-px nodata border)."""
    alpha = np.full(rgb.shape[1:], 255, np.uint8)
    alpha[:40] = 0
    write_geotiff(path, np.concatenate([rgb, alpha[None]]))
    with rasterio.open(path, "r+") as dst:
        dst.colorinterp = [rasterio.enums.ColorInterp.red, rasterio.enums.ColorInterp.green,
                           rasterio.enums.ColorInterp.blue, rasterio.enums.ColorInterp.alpha]
    return path


@pytest.mark.parametrize("bands", [[], ["--rgb-bands", "1,2,3"]], ids=["default", "explicit"])
def test_pairs_reads_an_rgba_optical_geotiff(tmp_path, bands):
    """'The VRT already has an alpha band' even with --rgb-bands 1,2,3."""
    _, rgb = example_pair("014_r512_c0")
    sar = write_geotiff(tmp_path / "sar.tif", example_pair("014_r512_c0")[0])
    optical = rgba_geotiff(tmp_path / "opt.tif", rgb)
    out = tmp_path / "pairs"
    run_cli("pairs", sar, optical, "-o", out, "--tile", "128", "--block-tiles", "1", *bands, check=True)
    split = json.loads((out / "split.json").read_text())
    tiles = split["train"] + split["val"]
    rows, cols = (side // 128 for side in rgb.shape[1:])
    assert sorted(tiles) == sorted(f"r{128 * r}_c{128 * c}" for r in range(1, rows) for c in range(cols))  # the alpha
    # says 40 rows of the top tiles have no data: they are dropped
    with rasterio.open(out / "opt" / "r128_c128.png") as tile:
        written = tile.read()
    scale = np.quantile(rgb[:, 40:].reshape(3, -1).astype(float), 0.99, axis=1)
    expected = np.rint(np.clip(rgb[:, 128:256, 128:256] / scale[:, None, None], 0, 1) * 255)
    assert np.abs(written.astype(float) - expected).max() <= 1


@pytest.mark.parametrize("block_tiles", ["0", "-2"])
def test_pairs_refuses_blocks_of_no_tiles(tmp_path, block_tiles):
    sar, optical = sar_and_optical_folders(tmp_path)
    result = run_cli("pairs", sar, optical, "-o", tmp_path / "p", "--block-tiles", block_tiles)
    assert_clean_failure(result, "need --tile >= 32, --block-tiles >= 1", tmp_path / "p")


def test_pairs_overwrite_replaces_only_a_pairs_folder(tmp_path):
    """-o EXISTING_FILE --overwrite gave 'unexpected NotADirectoryError'; a folder of other things is not deleted."""
    sar, optical = sar_and_optical_folders(tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    assert_clean_failure(run_cli("pairs", sar, optical, "-o", notes, "--overwrite"), f"output {notes} is a file")
    assert notes.read_text() == "mine"
    other = tmp_path / "work"
    other.mkdir()
    (other / "thesis.tex").write_text("mine")
    assert_clean_failure(run_cli("pairs", sar, optical, "-o", other, "--overwrite"), "is a folder that is not a pairs folder")
    assert (other / "thesis.tex").read_text() == "mine"


def test_pairs_folders_get_the_usual_mode(tmp_path):
    """pairs folders were created with mode 0700."""
    sar, optical = sar_and_optical_folders(tmp_path)
    out = tmp_path / "p"
    run_cli("pairs", sar, optical, "-o", out, "--tile", "128", check=True)
    for folder in (out, out / "sar", out / "opt"):
        assert folder.stat().st_mode & 0o777 == 0o777 & ~current_umask()


def test_pairs_refuses_two_images_of_one_name(tmp_path):
    """A SAR folder holding b.png and b.tif dropped one of them without a word."""
    sar, optical = sar_and_optical_folders(tmp_path)
    shutil.copy(sar / "014_r512_c0.png", sar / "014_r512_c0.tif")
    result = run_cli("pairs", sar, optical, "-o", tmp_path / "p")
    assert_clean_failure(result, f"014_r512_c0.png and 014_r512_c0.tif in {sar} share a name", tmp_path / "p")


def test_sar_preview_is_shown_in_db_stretched():
    """The page showed linear amplitude: 95 % of the coast example's preview sat in the darkest quarter."""
    from sarcolor.readers.raster import SarReader, open_raster

    with open_raster(COAST) as src:
        grey = SarReader(src).preview(1024)
        amplitude = src.read(1).astype(float)
    assert (grey < 64).mean() < 0.3
    assert 0.015 < (grey == 0).mean() < 0.03 and 0.015 < (grey == 255).mean() < 0.03  # a 2-98 % stretch
    # brightness follows dB: the median pixel's grey is where its dB sits between the 2 % and 98 % quantiles
    db = 20 * np.log10(np.maximum(amplitude / 255.0, 1e-4))
    low, mid, high = np.quantile(db, [0.02, 0.5, 0.98])
    assert abs(np.median(grey) - 255 * (mid - low) / (high - low)) < 3
