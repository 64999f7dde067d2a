import numpy as np
import pytest
from skimage.color import rgb2lab

from sarcolor import metrics
from sarcolor.data import load_pair, load_split
from sarcolor.evaluate import evaluate, lookup_table_baseline, mean_colour_baseline, model_predictor

from conftest import PAIRS


@pytest.fixture(scope="module")
def real():
    return load_pair(PAIRS, "014_r512_c0").optical.astype(np.float64) / 255.0


@pytest.fixture(scope="module")
def other():
    return load_pair(PAIRS, "253_r0_c512").optical.astype(np.float64) / 255.0


def test_identical_images(real):
    m = metrics.all_metrics(real, real)
    assert m["psnr"] == np.inf and m["mse"] == 0
    assert m["ssim"] == pytest.approx(1.0)
    assert m["delta_e00"] == pytest.approx(0.0, abs=1e-9)
    assert m["colour_swd"] == pytest.approx(0.0, abs=1e-9)
    assert m["colourfulness_ratio"] == pytest.approx(1.0) and m["sharpness_ratio"] == pytest.approx(1.0)


def test_psnr_and_mse_against_direct_formula(real, other):
    mse = np.mean((real - other) ** 2)
    assert metrics.mse(other, real) == pytest.approx(mse)
    assert metrics.psnr(other, real) == pytest.approx(10 * np.log10(1 / mse))
    shifted = np.clip(real, 0, 0.9) + 0.1
    assert metrics.psnr(shifted, np.clip(real, 0, 0.9)) == pytest.approx(20.0, abs=1e-6)


def reference_ssim(a: np.ndarray, b: np.ndarray, win: int = 7) -> float:
    """Wang et al.'s SSIM written out: 7x7 uniform windows, sample covariances, K1 0.01, K2 0.03, range 1,
    the window-wide border left out, mean over pixels and channels (what scikit-image computes)."""
    from scipy.ndimage import uniform_filter

    c1, c2, n = 0.01**2, 0.03**2, win * win
    values = []
    for x, y in zip(a, b):
        mx, my = uniform_filter(x, win), uniform_filter(y, win)
        vx = (uniform_filter(x * x, win) - mx * mx) * n / (n - 1)
        vy = (uniform_filter(y * y, win) - my * my) * n / (n - 1)
        cxy = (uniform_filter(x * y, win) - mx * my) * n / (n - 1)
        s = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
        pad = (win - 1) // 2
        values.append(s[pad:-pad, pad:-pad].mean())
    return float(np.mean(values))


def test_ssim_matches_the_formula_and_is_symmetric(real, other):
    s = metrics.ssim(other, real)
    assert s == pytest.approx(reference_ssim(other, real), abs=1e-6)
    assert s == pytest.approx(metrics.ssim(real, other)) and s < 0.6


def test_colourfulness_against_hasler_suesstrunk(real):
    r, g, b = real
    rg, yb = r - g, 0.5 * (r + g) - b
    expected = np.sqrt(rg.var() + yb.var()) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    assert metrics.colourfulness(real) == pytest.approx(expected)
    grey = np.repeat(real.mean(0, keepdims=True), 3, 0)
    assert metrics.colourfulness(grey) == pytest.approx(0.0, abs=1e-12)


def test_delta_e_of_a_uniform_lightness_shift():
    # A pure lightness change of dL at L=50 has CIEDE2000 = dL exactly (S_L = 1 there).
    grey50 = np.full((3, 8, 8), 0.4663)  # sRGB grey with L* ~ 50
    grey55 = np.full((3, 8, 8), 0.5187)  # L* ~ 55
    l50 = rgb2lab(np.moveaxis(grey50, 0, -1))[0, 0, 0]
    l55 = rgb2lab(np.moveaxis(grey55, 0, -1))[0, 0, 0]
    assert metrics.delta_e00(grey55, grey50) == pytest.approx(l55 - l50, rel=0.02)


def test_sharpness_ratio_drops_for_a_blurred_image(real):
    from scipy.ndimage import uniform_filter

    blurred = uniform_filter(real, size=(1, 5, 5))
    assert metrics.sharpness(blurred) < 0.75 * metrics.sharpness(real)


def test_grid_score_flags_a_4px_stamp_and_not_real_texture(real):
    """A fixed pattern repeated on every 4x4 block (what a pixel-shuffle head learns under a texture loss)."""
    stamp = np.random.default_rng(0).normal(0, 0.03, (4, 4))
    h, w = real.shape[1:]
    stamped = np.clip(real + np.tile(stamp, (h // 4, w // 4))[None], 0, 1)
    assert metrics.periodic_artefact(real) < 3
    assert metrics.periodic_artefact(stamped) > 10 * metrics.periodic_artefact(real)
    assert metrics.sharpness(stamped) > metrics.sharpness(real)  # why sharpness alone cannot be trusted


def test_colour_swd_grows_with_a_colour_shift(real):
    tinted = np.clip(real + np.array([0.1, 0, -0.1])[:, None, None], 0, 1)
    assert metrics.colour_swd(tinted, real) > 3 * metrics.colour_swd(np.clip(real + 0.002, 0, 1), real)


def test_baselines_on_real_pairs():
    train, val = load_split(PAIRS, "train"), load_split(PAIRS, "val")
    result = evaluate({"mean": mean_colour_baseline(train), "lut": lookup_table_baseline(train)}, val, "val")
    means = result.means()
    assert len(result.rows) == 4
    mean_colour = np.mean([p.optical.reshape(3, -1).mean(1) for p in train], axis=0) / 255
    quantised = np.rint(mean_colour * 255) / 255  # evaluate scores the 8-bit image users get
    expected = np.mean([10 * np.log10(1 / np.mean((p.optical / 255 - quantised[:, None, None]) ** 2)) for p in val])
    assert means["mean"]["psnr"] == pytest.approx(expected, abs=1e-6)  # float32 images in evaluate
    assert means["mean"]["sharpness_ratio"] == pytest.approx(0.0, abs=1e-6)
    assert means["lut"]["sharpness_ratio"] > 0.05


def test_evaluate_cli_writes_the_report_with_a_compared_model(tmp_path):
    import csv
    import json

    from conftest import run_cli
    from sarcolor.backends import default_model_path

    out = tmp_path / "report"
    result = run_cli("evaluate", "--data", PAIRS, "--out", out, "--json", "--compare", f"again={default_model_path()}", check=True)
    means = json.loads(result.stdout)
    assert list(means) == ["mean colour", "lookup table", "again", "sarcolor"]
    assert means["again"] == means["sarcolor"]  # the same model under two names scores the same
    for name in ("report.md", "report.html", "metrics.csv", "metrics.json", "metrics.png", "strips/014_r512_c0.png", "strips/253_r0_c512.png"):
        assert (out / name).is_file(), name
    with open(out / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["method"] == "sarcolor"]
    assert sorted(r["id"] for r in rows) == ["014_r512_c0", "253_r0_c512"]
    assert np.mean([float(r["psnr"]) for r in rows]) == pytest.approx(means["sarcolor"]["psnr"], abs=1e-3)
    assert "| sarcolor |" in (out / "report.md").read_text()
    # The confidence section, scored from the same predictions as the colours: as measured on its own.
    from sarcolor.backends import load_model
    from sarcolor.confidence import ErrorBlocks

    direct = ErrorBlocks.measure(model_predictor(load_model("default")), load_split(PAIRS, "val"))
    with open(out / "metrics.json") as f:
        confidence = json.load(f)["confidence"]
    assert confidence["blocks"] == direct.actual.size and confidence["spearman"] == pytest.approx(direct.spearman(), abs=1e-6)
    assert "## Confidence map" in (out / "report.md").read_text()
    bad = run_cli("evaluate", "--data", PAIRS, "--compare", "nopath")
    assert bad.returncode != 0 and "--compare takes NAME=PATH" in bad.stderr
