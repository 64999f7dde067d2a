"""``sarcolor finetune``: adapt a model's colours to a user's own region on CPU, then export it.

One recipe, written as a run config (saved next to the checkpoint like any run's): start from the
bundled model's weights (``sarcolor/weights/default.pt``, the same network as ``default.onnx``) or
another checkpoint; refit its input standardisation and colour head in closed form on the region's train
pairs (``sarcolor.ridge``, kept only if that does better on the val split); train the colour path's head (not the frozen encoder,
not the detail gains) with squared error, for a wall-clock budget or until the val split stops
improving; refit the error head on errors made out of fold; then export the weights that did best on
val (the start included) to ONNX, with the confidence map calibrated on that val split, or marked
uncalibrated where the val split cannot show that it ranks the errors.

Tiles smaller than a crop (BigEarthNet's 120 px, a user's few-hundred-pixel PNGs) are trained on
whole, mirrored as colorize pads a small image (``data.pad``; the margins are context, not targets): on the
BigEarthNet pairs that beat random 96 px crops of them by 0.46 dB on held-out patches (experiments/README.md,
issue 25).
"""
from __future__ import annotations

import dataclasses
import logging
import math
import shutil
from importlib import resources
from pathlib import Path

from sarcolor.config import RunConfig, config_from_dict
from sarcolor.data import MARGIN
from sarcolor.errors import SarcolorError, write_failure
from sarcolor.io import check_output_target, check_outputs_apart_from_inputs

log = logging.getLogger(__name__)

# The colour path's trainable modules; the encoder stays frozen and the detail gains stay as trained. (Freeing
# only the colour head, or the mix and the head, did worse on held-out BigEarthNet patches; issue 25.)
COLOUR_MODULES = ("laterals", "mix", "colour_head")
CROP_MAX = 256
CROP_MULTIPLE = 32  # the lite0 model's size multiple
# A region's pairs are few: the run keeps the weights that do best on its val split (the closed-form start
# included), scored every VAL_EVERY steps, and stops after PATIENCE scores without improvement.
VAL_EVERY = 25
PATIENCE = 8
MAX_MINUTES = 7 * 24 * 60  # a week: a longer budget is a typo, not a plan


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
    if smallest_side < CROP_MULTIPLE:
        raise SarcolorError(f"the pairs in {data} are {smallest_side} px: fine-tuning needs tiles of at least {CROP_MULTIPLE} px")
    crop, pad = crop_and_pad(smallest_side)
    # The error head is refitted after training (refit_error_head), not trained on the colours' in-sample errors.
    loss = dataclasses.replace(
        base.loss, l1=0.0, mse=100.0, ssim=0.0, colour_swd=0.0, texture_swd=0.0, adversarial=0.0, shift_consistency=0.0,
        error_nll=0.0,
    )
    # Batches of 4: on the BigEarthNet pairs a step of 4 tiles moved held-out PSNR as far as a step of 8 and costs
    # a third of its time on a CPU (experiments/README.md).
    data_config = dataclasses.replace(base.data, root=str(data), crop_size=crop, pad=pad, batch_size=4, gain_jitter=0.1)
    train = dataclasses.replace(
        base.train, init_from=str(start), train_only=COLOUR_MODULES, steps=100_000, max_minutes=minutes, lr_g=5e-4,
        betas=(0.9, 0.99), lr_decay_start=0, ema_decay=0.99, checkpoint_every=50, sample_every=100_000, log_every=10,
        device="cpu", seed=0, val_every=VAL_EVERY, patience=PATIENCE, val_at_start=True, ridge_start=True,
    )
    # The bundled head runs at 1/8 resolution for speed; a region's small patches are fine-tuned with it at 1/4, as
    # it was trained before (same weights): on the BigEarthNet held-out patches 12.87 dB against 12.38-12.39 at 1/8
    # (experiments/README.md, session 13). A fine-tuned model therefore runs at the previous model's speed.
    model = dataclasses.replace(base.model, head_pool=1)
    return dataclasses.replace(base, out_dir=str(out_dir), model=model, loss=loss, data=data_config, train=train)


def crop_and_pad(smallest_side: int) -> tuple[int, int]:
    """Crop size and mirrored padding for tiles of ``smallest_side`` px: large tiles give random CROP_MAX crops;
    a smaller one is padded into one crop, a multiple of the model's size multiple, with colorize's margin where
    that fits in CROP_MAX."""
    if smallest_side >= CROP_MAX:
        return CROP_MAX, 0
    crop = min(CROP_MAX, -(-(smallest_side + 2 * MARGIN) // CROP_MULTIPLE) * CROP_MULTIPLE)
    return crop, -(-(crop - smallest_side) // 2)


def refit_error_head(checkpoint: Path, config: RunConfig) -> None:
    """The error head of ``checkpoint``'s weights refitted on the train split's out-of-fold errors
    (``sarcolor.ridge.fit_error_head``), measured on the features of the start model (``train.init_from``, its
    input standardisation refitted on the region), which never trained on these pairs. Rewrites the checkpoint."""
    from sarcolor.checkpoint import atomic_torch_save, load_weights, read_checkpoint, resolve_device
    from sarcolor.data import load_split, mirror_pad
    from sarcolor.ridge import fit_error_head, pair_crops

    def generator(path: Path, state: dict):
        from sarcolor.models import build_generator

        net = build_generator(config.model).eval()
        load_weights(net, state["ema"], path)
        return net

    cpu = resolve_device("cpu")
    state = read_checkpoint(checkpoint, cpu, ("ema",))
    adapted = generator(checkpoint, state)
    start = generator(Path(config.train.init_from), read_checkpoint(config.train.init_from, cpu, ("ema",)))
    pairs = [mirror_pad(p, config.data.pad) for p in load_split(config.data.root, config.data.train_split)]
    crops = pair_crops(pairs, config.data.crop_size, config.train.ridge_crops)
    start.fit_input_stats(crops.sar)
    if not fit_error_head(adapted, crops, reference=start):
        log.warning("one train pair: the error head is not refitted (it needs pairs to leave out)")
        return
    log.info("error head refitted on out-of-fold errors of %d train pairs", len(pairs))
    state["ema"] = {name: tensor.clone() for name, tensor in adapted.state_dict().items()}
    atomic_torch_save(state, checkpoint)


def plan_finetune(data: Path, output: Path, start: str = "default", minutes: float = 15.0, out_dir: Path | None = None,
                  overwrite: bool = False) -> RunConfig:
    """Check every path and option, then the run config of fine-tuning ``start`` on ``data`` for ``minutes``."""
    from sarcolor.data import load_split

    if output.suffix.lower() != ".onnx":
        raise SarcolorError(f"-o {output}: the fine-tuned model is written as .onnx")
    if not (math.isfinite(minutes) and 0 < minutes <= MAX_MINUTES):
        raise SarcolorError(f"need 0 < --minutes <= {MAX_MINUTES} (a week), got {minutes:g}")
    out_dir = out_dir or output.with_name(f"{output.stem}_run")
    start_path = start_checkpoint(start)
    check_outputs_apart_from_inputs([output, out_dir], [data, start_path])
    check_outputs_apart_from_inputs([output], [out_dir])  # the run folder is replaced as a whole by --overwrite
    check_output_target(output, overwrite)
    if out_dir.exists() and not overwrite:
        raise SarcolorError(f"run folder exists: {out_dir} (use --overwrite to replace it, or --out-dir)")
    pairs = load_split(data, "train") + load_split(data, "val")
    smallest = min(min(p.sar.shape) for p in pairs)
    return finetune_config(start_path, data, out_dir, minutes, smallest)


def run_finetune(config: RunConfig, output: Path, on_step=None) -> Path:
    """Train the planned run (a fresh run folder) and export it to ``output``, calibrated on its data's val split."""
    from sarcolor.checkpoint import BEST, LAST
    from sarcolor.export import export_onnx
    from sarcolor.train import Trainer

    out_dir = Path(config.out_dir)
    created = not out_dir.exists()
    for name in (LAST, BEST):  # --overwrite: a fresh run, not a resumed one
        (out_dir / name).unlink(missing_ok=True)
    log.info("fine-tuning for up to %g min (crops of %d px); run folder %s", config.train.max_minutes, config.data.crop_size, config.out_dir)
    try:
        try:
            Trainer(config).fit(on_step=on_step)
            if config.model.error_head:
                refit_error_head(out_dir / BEST, config)
        except OSError as exc:  # the run folder's logs and config on a full disk
            raise write_failure(out_dir, exc) from None
        return export_onnx(out_dir / BEST, output, calibrate=config.data.root)
    except BaseException:
        if created:  # a failed run leaves nothing behind (and a full disk gets its space back)
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
