"""The bundled models: load with no torch, carry their SAR convention, and meet the quality targets on val."""
import numpy as np
import pytest

from sarcolor.backends import BUNDLED_MODELS, bundled_model_path, default_model_path, load_model
from sarcolor.data import load_split
from sarcolor.errors import SarcolorError
from sarcolor.evaluate import evaluate, lookup_table_baseline, mean_colour_baseline, model_predictor

from conftest import PAIRS

MEAN_COLOUR_VAL = {"psnr": 15.05, "ssim": 0.296}  # the trivial baseline on the full val split
# pix2pix (54M U-Net-256 + PatchGAN, GAN + 100·L1) trained with the same 20-min CPU budget
# (experiments/pix2pix_same_budget.yaml), full val split: its checkpoint is too big to commit.
PIX2PIX_VAL = {"psnr": 14.55, "ssim": 0.116, "delta_e00": 17.77, "colour_swd": 5.14}


@pytest.fixture(scope="module")
def val_means(shared_pairs, model):
    train, val = load_split(shared_pairs, "train"), load_split(shared_pairs, "val")
    predictors = {"mean": mean_colour_baseline(train), "lut": lookup_table_baseline(train),
                  "default": model_predictor(model), "smooth": model_predictor(load_model("smooth"))}
    return evaluate(predictors, val, "val").means()


@pytest.mark.parametrize("name", list(BUNDLED_MODELS))
def test_bundled_models_are_small_onnx_with_convention(name):
    path = bundled_model_path(name)
    assert path.suffix == ".onnx" and path.stat().st_size < 30e6
    net = load_model(name)
    assert net.convention == {"polarisation": "VH", "quantity": "amplitude", "quantile": 0.99, "clip": 1.0}
    out = net(np.full((2, 1, 64, 80), 0.3, np.float32))
    assert out.shape == (2, 3, 64, 80) and 0 <= out.min() and out.max() <= 1
    assert default_model_path() == bundled_model_path("default")


def test_unknown_model_name_lists_the_bundled_ones():
    with pytest.raises(SarcolorError, match="bundled models: default, smooth"):
        load_model("sharpest")


def test_default_model_output_varies_across_a_scene(model):
    val = load_split(PAIRS, "val")
    pred = model_predictor(model)(val[1])  # Texas: woodland, fields and a town
    assert pred.std(axis=(1, 2)).min() > 0.02  # not one flat colour


def test_default_model_beats_pix2pix_with_real_colour_and_detail(val_means):
    """Issue 5: better than same-budget pix2pix on every error metric, colourfulness and sharpness near the real ones."""
    ours = val_means["default"]
    # The committed model scored 15.30 dB / 0.206 / ΔE00 13.80 / SWD 2.62, ratios 0.89 / 1.01, grid 2.2 (docs/evaluation).
    assert ours["psnr"] > PIX2PIX_VAL["psnr"] + 0.5 and ours["psnr"] > MEAN_COLOUR_VAL["psnr"]
    assert ours["ssim"] > PIX2PIX_VAL["ssim"] + 0.05
    assert ours["delta_e00"] < PIX2PIX_VAL["delta_e00"] - 2
    assert ours["colour_swd"] < PIX2PIX_VAL["colour_swd"] - 1
    assert 0.85 <= ours["colourfulness_ratio"] <= 1.15 and 0.85 <= ours["sharpness_ratio"] <= 1.15
    assert ours["grid_4px"] < 3  # the detail is the SAR's, not a stamped 4x4 pattern


def test_smooth_model_beats_both_baselines(val_means):
    assert val_means["mean"]["psnr"] == pytest.approx(MEAN_COLOUR_VAL["psnr"], abs=0.01)
    assert val_means["mean"]["ssim"] == pytest.approx(MEAN_COLOUR_VAL["ssim"], abs=0.001)
    smooth = val_means["smooth"]
    # The committed model scored 16.71 dB / 0.310 / ΔE00 11.40 / SWD 4.82 (docs/evaluation).
    assert smooth["psnr"] > MEAN_COLOUR_VAL["psnr"] + 1.5
    assert smooth["ssim"] > MEAN_COLOUR_VAL["ssim"] + 0.01
    for baseline in ("mean", "lut"):
        assert smooth["delta_e00"] < val_means[baseline]["delta_e00"] - 2
        assert smooth["colour_swd"] < val_means[baseline]["colour_swd"] - 2
