import csv

import numpy as np
import pytest
import torch
from skimage.io import imread

from sarcolor.config import load_config
from sarcolor.data import CropSampler, load_split
from sarcolor.errors import SarcolorError
from sarcolor.checkpoint import LAST
from sarcolor.train import Trainer

from conftest import PAIRS, run_cli

SMALL = {
    "model.widths": [16, 32, 64], "model.depths": [1, 1, 1], "model.decoder_depths": [1, 1],
    "discriminator.base_channels": 8, "data.root": str(PAIRS), "data.crop_size": 64, "data.batch_size": 4,
    "train.checkpoint_every": 20, "train.sample_every": 30, "train.log_every": 5, "train.lr_g": 1e-3, "train.threads": 1,
}


def fixed_val_batch():
    sampler = CropSampler(load_split(PAIRS, "val"), 128, seed=123)
    sar, optical = sampler.batch(4)
    return torch.from_numpy(sar), torch.from_numpy(optical)


def val_l1(generator) -> float:
    sar, optical = fixed_val_batch()
    with torch.no_grad():
        return float((generator.eval()(sar) - optical).abs().mean())


def test_short_training_lowers_loss_and_resumes(tmp_path):
    config = load_config(None, {**SMALL, "out_dir": str(tmp_path / "run"), "train.steps": 60, "train.gan_start_step": 30})
    trainer = Trainer(config)
    before = val_l1(trainer.generator)
    trainer.fit()
    after = val_l1(trainer.generator)
    assert after < 0.95 * before, (before, after)
    for name in (LAST, "config.yaml", "samples.png", "loss_curves.png"):
        assert (tmp_path / "run" / name).is_file(), name
    samples = imread(tmp_path / "run" / "samples.png")
    assert samples.shape == (2 * 64 + 8, 3 * 64 + 2 * 8, 3)  # 2 val crops of crop_size: SAR | prediction | optical
    with open(tmp_path / "run" / "loss_log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == list(range(5, 61, 5))
    assert rows[-1]["d"] != "" and rows[0]["d"] == ""  # the discriminator joins at step 30

    # Resume: the reloaded state is the saved one, and training goes on from step 60.
    config_more = load_config(tmp_path / "run" / "config.yaml", {"train.steps": 70})
    resumed = Trainer(config_more)
    resumed.sampler = None
    resumed.load_checkpoint(tmp_path / "run" / LAST)
    assert resumed.step == 60
    for a, b in zip(resumed.ema.state_dict().values(), trainer.ema.state_dict().values()):
        torch.testing.assert_close(a, b)
    resumed.fit(resume=True)
    assert resumed.step == 70
    with open(tmp_path / "run" / "loss_log.csv") as f:
        assert int(list(csv.DictReader(f))[-1]["step"]) == 70


def test_checkpoint_survives_a_kill_mid_save(tmp_path, monkeypatch):
    config = load_config(None, {**SMALL, "out_dir": str(tmp_path / "run"), "train.steps": 20})
    trainer = Trainer(config)
    trainer.fit()
    good = (tmp_path / "run" / LAST).read_bytes()

    def dying_save(obj, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"half a checkp")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        trainer.save_checkpoint()
    assert (tmp_path / "run" / LAST).read_bytes() == good
    monkeypatch.undo()
    Trainer(config).load_checkpoint(tmp_path / "run" / LAST)


def test_bad_checkpoints_are_one_line_user_errors(tmp_path):
    """Truncated, foreign and mismatched checkpoints: the same errors for resume, init_from and colorize."""
    from sarcolor.backends import load_model

    config = load_config(None, {**SMALL, "out_dir": str(tmp_path / "run"), "train.steps": 5})
    Trainer(config).fit()
    truncated, foreign = tmp_path / "truncated.pt", tmp_path / "foreign.pt"
    truncated.write_bytes((tmp_path / "run" / LAST).read_bytes()[:5000])
    torch.save({"state_dict": {}}, foreign)
    wider = Trainer(load_config(None, {**SMALL, "model.widths": [24, 48, 96], "out_dir": str(tmp_path / "wider")}))
    with pytest.raises(SarcolorError, match="does not fit the configured model: Error"):
        wider.load_checkpoint(tmp_path / "run" / LAST)
    for load in (Trainer(config).load_checkpoint, load_model):
        with pytest.raises(SarcolorError, match=f"{truncated} is not a sarcolor training checkpoint .* torch cannot read it"):
            load(truncated)
        with pytest.raises(SarcolorError, match="foreign.pt is not a sarcolor training checkpoint .no .*ema"):
            load(foreign)
    with pytest.raises(SarcolorError, match="^train.init_from: .*truncated.pt is not a sarcolor training checkpoint"):
        wider.init_weights_from(truncated)


def test_fine_tune_from_another_architecture_with_texture_loss(tmp_path):
    """train.init_from carries over every tensor that matches (input statistics included) into a slimmer model."""
    source_config = load_config(None, {**SMALL, "out_dir": str(tmp_path / "source"), "train.steps": 10,
                                       "loss.adversarial": 0.0})
    source = Trainer(source_config)
    source.fit()
    slim = {**SMALL, "model.depths": [0, 1, 1], "model.decoder_depths": [1, 0], "loss.adversarial": 0.0,
            "loss.texture_swd": 50.0, "train.init_from": str(tmp_path / "source" / LAST)}
    tuned = Trainer(load_config(None, {**slim, "out_dir": str(tmp_path / "tuned"), "train.steps": 10}))
    tuned.sampler = CropSampler(load_split(PAIRS, "train"), 64)
    tuned.init_weights_from(tmp_path / "source" / LAST)
    source_weights, tuned_weights = source.ema.state_dict(), tuned.generator.state_dict()
    assert "enc1.0.dwconv.weight" in source_weights and "enc1.0.dwconv.weight" not in tuned_weights
    for name in ("input_mean", "stem.0.weight", "enc3.0.pw1.weight", "head.1.weight", "prior.0.weight"):
        torch.testing.assert_close(tuned_weights[name], source_weights[name])
    tuned.fit()
    with open(tmp_path / "tuned" / "loss_log.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows[-1]["texture"] != "" and float(rows[-1]["texture"]) > 0
    with pytest.raises(SarcolorError, match="init_from"):
        tuned.init_weights_from(tmp_path / "missing.pt")


def test_train_cli_refuses_to_clobber_and_exports(tmp_path):
    out = tmp_path / "run"
    overrides = ["--out-dir", str(out), "--steps", "10", "--data", str(PAIRS)]
    cfg = tmp_path / "small.yaml"
    # The Lee filter and the Lab loss train and export like the rest (the filter runs inside the ONNX graph).
    cfg.write_text("model: {widths: [16, 32, 64], depths: [1, 1, 1], decoder_depths: [1, 1], despeckle: lee}\n"
                   "loss: {colour_space: lab}\ndiscriminator: {base_channels: 8}\ndata: {crop_size: 64, batch_size: 2}\n")
    run_cli("train", "--config", cfg, *overrides, check=True)
    again = run_cli("train", "--config", cfg, *overrides)
    assert again.returncode != 0 and "use --resume" in again.stderr and "Traceback" not in again.stderr
    onnx_path = tmp_path / "small.onnx"
    run_cli("export", out / LAST, "-o", onnx_path, check=True)
    from sarcolor.backends import load_model

    onnx_model, torch_model = load_model(onnx_path), load_model(out / LAST)
    assert onnx_model.convention == torch_model.convention and onnx_model.convention["polarisation"] == "VH"
    x = np.random.default_rng(0).random((1, 1, 64, 96), dtype=np.float32)
    np.testing.assert_allclose(onnx_model(x), torch_model(x), atol=1e-5)
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {wdths: [1]}\n")
    result = run_cli("train", "--config", bad, "--out-dir", str(tmp_path / "r2"))
    assert result.returncode != 0 and "unknown config key" in result.stderr
    bad.write_text("model: {head: sharp}\n")
    result = run_cli("train", "--config", bad, "--out-dir", str(tmp_path / "r3"))
    assert result.returncode != 0 and "unknown model.head 'sharp'" in result.stderr and "Traceback" not in result.stderr
    bad.write_text("model: {despeckle: median}\n")
    result = run_cli("train", "--config", bad, "--out-dir", str(tmp_path / "r4"))
    assert result.returncode != 0 and "unknown model.despeckle 'median'" in result.stderr and "Traceback" not in result.stderr


def test_torchrun_ddp_on_cpu_with_gloo(tmp_path):
    """sarcolor train under torchrun: 2 CPU processes, gloo, one checkpoint and one log written by rank 0."""
    import os
    import subprocess
    import sys

    import yaml

    from sarcolor.config import config_to_dict

    config = load_config(None, {**SMALL, "out_dir": str(tmp_path / "ddp"), "train.steps": 10, "loss.adversarial": 1.0, "train.gan_start_step": 5})
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(config_to_dict(config)))
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "sarcolor", "train", "--config", str(path)],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "DistributedDataParallel over 2 processes (gloo)" in result.stderr
    state = torch.load(tmp_path / "ddp" / LAST, weights_only=False)
    assert state["step"] == 10
    with open(tmp_path / "ddp" / "loss_log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [5, 10] and rows[-1]["d"] != ""


class Payload:
    """Unpickling this runs code: what a malicious .pt file would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_checkpoint_that_would_run_code_is_refused_without_running_it(tmp_path):
    from sarcolor.backends import load_model

    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"config": {}, "ema": {}, "sar_convention": {}, "payload": Payload(marker)}, path)
    with pytest.raises(SarcolorError, match="is not a sarcolor training checkpoint"):
        load_model(path, "cpu")
    assert not marker.exists()
    result = run_cli("colorize", PAIRS / "sar" / "014_r512_c0.png", "-o", tmp_path / "out.png", "--model", path)
    assert result.returncode == 2 and "is not a sarcolor training checkpoint" in result.stderr and not marker.exists()


def test_resumed_run_logs_each_step_once_and_a_fresh_run_starts_a_fresh_log(tmp_path):
    run = tmp_path / "run"
    Trainer(load_config(None, {**SMALL, "out_dir": str(run), "train.steps": 20, "loss.adversarial": 0.0})).fit()
    log_path = run / "loss_log.csv"
    with open(log_path, "a") as f:  # a run killed at step 27 had logged steps 25 after its last checkpoint (20)
        f.write("25,1.0,0.5\n")
    config = load_config(run / "config.yaml", {"train.steps": 30})
    Trainer(config).fit(resume=True)
    with open(log_path) as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == list(range(5, 31, 5))
    (run / LAST).unlink()  # a run killed before its first checkpoint: the next fresh run starts over
    Trainer(load_config(run / "config.yaml", {"train.steps": 10})).fit()
    with open(log_path) as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [5, 10]


def test_resumed_run_ends_where_an_uninterrupted_run_ends(tmp_path):
    """Issue 14: resume was never compared with an uninterrupted run (weights, optimiser, crop stream, RNG)."""
    # The learning rates decay over the resumed part only: the schedule must continue across the restart.
    common = {**SMALL, "train.gan_start_step": 8, "train.checkpoint_every": 16, "train.sample_every": 1000,
              "train.lr_decay_start": 18}
    straight = Trainer(load_config(None, {**common, "out_dir": str(tmp_path / "straight"), "train.steps": 24}))
    straight.fit()
    Trainer(load_config(None, {**common, "out_dir": str(tmp_path / "split"), "train.steps": 16})).fit()
    resumed = Trainer(load_config(tmp_path / "split" / "config.yaml", {"train.steps": 24}))
    resumed.fit(resume=True)
    for name, value in straight.generator.state_dict().items():
        torch.testing.assert_close(resumed.generator.state_dict()[name], value, rtol=1e-5, atol=1e-6, msg=name)
    for name, value in straight.discriminator.state_dict().items():
        torch.testing.assert_close(resumed.discriminator.state_dict()[name], value, rtol=1e-5, atol=1e-6, msg=name)


def test_val_scores_keep_the_best_weights_and_stop_a_run_that_no_longer_improves(tmp_path):
    """train.val_every / train.patience (finetune's early stopping): best.pt holds the best-scoring weights."""
    frozen = {**SMALL, "train.gan_start_step": 1000, "train.lr_g": 0.0, "train.val_every": 10, "train.patience": 2,
              "out_dir": str(tmp_path / "run"), "train.steps": 100}
    trainer = Trainer(load_config(None, frozen))
    trainer.fit()
    assert trainer.step == 30  # scores at 10 (best), 20 and 30 (no better): patience 2 stops it
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert best["step"] == 10 and best["val_mse"] == pytest.approx(trainer.best_val)
    learning = {**frozen, "train.lr_g": 1e-3, "train.patience": 0, "train.steps": 25, "out_dir": str(tmp_path / "learning")}
    trainer = Trainer(load_config(None, learning))
    trainer.fit()
    best = torch.load(tmp_path / "learning" / "best.pt", weights_only=True)
    assert trainer.step == 25 and best["step"] in (10, 20, 25)  # the last weights are scored too


def test_learning_rates_decay_linearly_to_zero_for_both_networks(tmp_path):
    config = load_config(None, {**SMALL, "out_dir": str(tmp_path / "run"), "train.steps": 10, "train.lr_decay_start": 5,
                                "train.gan_start_step": 2, "train.lr_d": 4e-4, "train.sample_every": 1000})
    trainer = Trainer(config)
    seen = []
    trainer.fit(on_step=lambda step, logs: seen.append(
        (trainer.opt_g.param_groups[0]["lr"], trainer.opt_d.param_groups[0]["lr"])))
    factors = [1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2, 0.0]  # the rate the next step will use
    np.testing.assert_allclose(seen, [(1e-3 * f, 4e-4 * f) for f in factors], atol=1e-12)


def test_a_run_with_the_vgg16_loss_trains_on_it_and_logs_it(tmp_path):
    from sarcolor.perceptual import perceptual_unavailable

    if perceptual_unavailable():
        pytest.skip(perceptual_unavailable())
    config = load_config(None, {**SMALL, "out_dir": str(tmp_path), "train.steps": 5, "loss.adversarial": 0.0, "loss.vgg": 1.0})
    trainer = Trainer(config)
    assert trainer.vgg is not None and not any(p.requires_grad for p in trainer.vgg.parameters())
    trainer.fit()
    with open(tmp_path / "loss_log.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows[-1]["vgg"] != "" and 0 < float(rows[-1]["vgg"]) < 2
