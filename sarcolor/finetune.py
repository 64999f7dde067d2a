"""``sarcolor finetune``: adapt a model's colours to a user's own region on CPU, then export it.

One recipe, written as a run config (saved next to the checkpoint like any run's): start from the
bundled model's weights (``sarcolor/weights/default.pt``, the same network as ``default.onnx``) or
another checkpoint, train the colour path's head (not the frozen encoder, not the detail gains) on
the pairs folder's train split with squared error, and the error head on the new errors, for a
wall-clock budget or until the val split stops improving; then export the weights that did best on
val to ONNX, calibrated on that val split.
"""
from __future__ import annotations

import dataclasses
import logging
from importlib import resources
from pathlib import Path

from sarcolor.config import RunConfig, config_from_dict
from sarcolor.errors import SarcolorError
from sarcolor.io import check_output_target

log = logging.getLogger(__name__)

# The colour path's trainable modules; the encoder stays frozen and the detail gains stay as trained.
COLOUR_MODULES = ("laterals", "mix", "colour_head")
CROP_MAX = 256
# A region's pairs are few: the run keeps the weights that do best on its val split, scored every
# VAL_EVERY steps, and stops after PATIENCE scores without improvement (before the time budget, often).
VAL_EVERY = 50
PATIENCE = 8


def bundled_checkpoint() -> Path:
    """The torch weights of the bundled model (what default.onnx was exported from)."""
    return Path(str(resources.files("sarcolor") / "weights" / "default.pt"))


def start_checkpoint(start: str) -> Path:
    if start in ("default", "smooth"):
        return bundled_checkpoint()
    path = Path(start)
    if not path.is_file():
        raise SarcolorError(f"--from {start}: not a bundled model name (default) nor a checkpoint file")
    return path


def finetune_config(start: Path, data: Path, out_dir: Path, minutes: float, smallest_side: int) -> RunConfig:
    """The fine-tuning run: the start checkpoint's model, this data, the colour head, ``minutes`` of training."""
    from sarcolor.checkpoint import read_checkpoint, resolve_device

    base = config_from_dict(read_checkpoint(start, resolve_device("cpu"), ("config",), "--from: ")["config"])
    if base.model.arch != "lite0":
        raise SarcolorError(f"--from {start}: fine-tuning needs a lite0 model (this one is {base.model.arch})")
    crop = min(CROP_MAX, smallest_side // 32 * 32)
    if crop < 64:
        raise SarcolorError(f"the pairs in {data} are {smallest_side} px: fine-tuning needs tiles of at least 64 px")
    modules = COLOUR_MODULES + (("error_head",) if base.model.error_head else ())
    loss = dataclasses.replace(
        base.loss, l1=0.0, mse=100.0, ssim=0.0, colour_swd=0.0, texture_swd=0.0, adversarial=0.0, shift_consistency=0.0,
        error_nll=1.0 if base.model.error_head else 0.0,
    )
    data_config = dataclasses.replace(base.data, root=str(data), crop_size=crop, batch_size=8, gain_jitter=0.1)
    train = dataclasses.replace(
        base.train, init_from=str(start), train_only=modules, steps=100_000, max_minutes=minutes, lr_g=5e-4,
        betas=(0.9, 0.99), lr_decay_start=0, ema_decay=0.99, checkpoint_every=50, sample_every=100_000, log_every=10,
        device="cpu", seed=0, val_every=VAL_EVERY, patience=PATIENCE,
    )
    return dataclasses.replace(base, out_dir=str(out_dir), loss=loss, data=data_config, train=train)


def plan_finetune(data: Path, output: Path, start: str = "default", minutes: float = 15.0, out_dir: Path | None = None,
                  overwrite: bool = False) -> RunConfig:
    """Check every path and option, then the run config of fine-tuning ``start`` on ``data`` for ``minutes``."""
    from sarcolor.data import load_split

    if output.suffix.lower() != ".onnx":
        raise SarcolorError(f"-o {output}: the fine-tuned model is written as .onnx")
    check_output_target(output, overwrite)
    if minutes <= 0:
        raise SarcolorError("need --minutes > 0")
    out_dir = out_dir or output.with_name(f"{output.stem}_run")
    if out_dir.exists() and not overwrite:
        raise SarcolorError(f"run folder exists: {out_dir} (use --overwrite to replace it, or --out-dir)")
    pairs = load_split(data, "train") + load_split(data, "val")
    smallest = min(min(p.sar.shape) for p in pairs)
    return finetune_config(start_checkpoint(start), data, out_dir, minutes, smallest)


def run_finetune(config: RunConfig, output: Path, on_step=None) -> Path:
    """Train the planned run (a fresh run folder) and export it to ``output``, calibrated on its data's val split."""
    from sarcolor.checkpoint import BEST, LAST
    from sarcolor.export import export_onnx
    from sarcolor.train import Trainer

    for name in (LAST, BEST):  # --overwrite: a fresh run, not a resumed one
        (Path(config.out_dir) / name).unlink(missing_ok=True)
    log.info("fine-tuning for up to %g min (crops of %d px); run folder %s", config.train.max_minutes, config.data.crop_size, config.out_dir)
    Trainer(config).fit(on_step=on_step)
    return export_onnx(Path(config.out_dir) / BEST, output, calibrate=config.data.root)
