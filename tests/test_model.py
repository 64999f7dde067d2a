"""The bundled default model: loads with no torch, carries its SAR convention, beats the baselines."""
import numpy as np
import pytest

from sarcolor.backends import default_model_path
from sarcolor.data import load_split
from sarcolor.evaluate import evaluate, lookup_table_baseline, mean_colour_baseline, model_predictor

from conftest import PAIRS

MEAN_COLOUR_VAL = {"psnr": 15.05, "ssim": 0.296}  # the trivial baseline on the full val split


def test_default_model_is_small_onnx_with_convention(model):
    assert default_model_path().suffix == ".onnx"
    assert default_model_path().stat().st_size < 30e6
    assert model.convention == {"polarisation": "VH", "quantity": "amplitude", "quantile": 0.99, "clip": 1.0}
    out = model(np.full((2, 1, 64, 80), 0.3, np.float32))
    assert out.shape == (2, 3, 64, 80) and 0 <= out.min() and out.max() <= 1


def test_default_model_output_varies_across_a_scene(model):
    val = load_split(PAIRS, "val")
    pred = model_predictor(model)(val[1])  # Texas: woodland, fields and a town
    assert pred.std(axis=(1, 2)).min() > 0.02  # not one flat colour


def test_default_model_beats_both_baselines_on_full_val(shared_pairs, model):
    train, val = load_split(shared_pairs, "train"), load_split(shared_pairs, "val")
    predictors = {"mean": mean_colour_baseline(train), "lut": lookup_table_baseline(train), "model": model_predictor(model)}
    means = evaluate(predictors, val, "val").means()
    assert means["mean"]["psnr"] == pytest.approx(MEAN_COLOUR_VAL["psnr"], abs=0.01)
    assert means["mean"]["ssim"] == pytest.approx(MEAN_COLOUR_VAL["ssim"], abs=0.001)
    # The committed model scored 16.71 dB / 0.310 / ΔE00 11.40 / SWD 4.82 (docs/evaluation).
    assert means["model"]["psnr"] > MEAN_COLOUR_VAL["psnr"] + 1.5
    assert means["model"]["ssim"] > MEAN_COLOUR_VAL["ssim"] + 0.01
    for baseline in ("mean", "lut"):
        assert means["model"]["delta_e00"] < means[baseline]["delta_e00"] - 2
        assert means["model"]["colour_swd"] < means[baseline]["colour_swd"] - 2
    assert means["model"]["colourfulness_ratio"] > 0.5
