"""Training: generator (+ optional PatchGAN) with configurable losses, EMA, checkpoints, resume and DDP under torchrun."""
from __future__ import annotations

import copy
import csv
import functools
import logging
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.optim.lr_scheduler import LambdaLR

from sarcolor import ddp
from sarcolor.checkpoint import BEST, LAST, RESUME_KEYS, SAR_CONVENTION, atomic_torch_save, load_weights, read_checkpoint, resolve_device
from sarcolor.config import RunConfig, config_to_dict, save_config
from sarcolor.data import CropSampler, Pair, load_split, mirror_pad, real_pixels
from sarcolor.errors import SarcolorError
from sarcolor.figures import grid, loss_curves, save_png, strip
from sarcolor.io import check_outputs_apart_from_inputs
from sarcolor.losses import check_loss_config, discriminator_loss, generator_loss
from sarcolor.models import build_discriminator, build_generator
from sarcolor.perceptual import load_vgg16

log = logging.getLogger(__name__)

# The generators' input standardisation buffers (fit_input_stats), by name without a tap number.
STANDARDISATION = {"context_mean", "context_std", "tap_mean", "tap_std", "input_mean", "input_std"}


def is_standardisation(name: str) -> bool:
    return name.rsplit(".", 1)[-1].rstrip("0123456789") in STANDARDISATION

VAL_CROPS = 32  # at most this many val pairs' centre crops score the generator
LOG_FIELDS = ["step", "seconds", "g", "d", "l1", "mse", "ssim", "swd", "texture", "vgg", "adv", "fm", "shift", "error_nll"]


def trim_log(path: Path, last_step: int) -> None:
    """Drop the rows a killed run logged after its last checkpoint, so a resumed run does not repeat them."""
    if not path.is_file():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    kept = rows[:1] + [row for row in rows[1:] if row and row[0].isdigit() and int(row[0]) <= last_step]
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(kept)


def log_fields(path: Path) -> list[str]:
    """The columns of an existing loss log (a resumed run keeps its header), else LOG_FIELDS."""
    if path.is_file() and path.stat().st_size:
        with open(path, newline="") as f:
            return next(csv.reader(f))
    return LOG_FIELDS


def linear_decay(step: int, steps: int, decay_start: int) -> float:
    """Learning-rate factor: 1 until ``decay_start`` (0: never decay), then linearly down to 0 at ``steps``."""
    if not decay_start or step < decay_start:
        return 1.0
    return max(0.0, (steps - step) / max(1, steps - decay_start))


def shift_disagreement(fake: torch.Tensor, shifts: list[tuple[int, int]]) -> torch.Tensor:
    """Mean absolute difference, on their overlap, between predictions of crops and of their shifted copies."""
    n = len(shifts)
    total = fake.new_zeros(())
    for i, (dy, dx) in enumerate(shifts):
        first, second = fake[i, :, dy:, dx:], fake[n + i, :, : fake.shape[2] - dy, : fake.shape[3] - dx]
        total = total + (first - second).abs().mean()
    return total / n


class Trainer:
    def __init__(self, config: RunConfig) -> None:
        self.config = config
        tc = config.train
        if tc.threads:
            torch.set_num_threads(tc.threads)
        torch.manual_seed(tc.seed)
        self.rank, self.world_size, self.device = ddp.join_process_group(resolve_device(tc.device))
        self.out_dir = Path(config.out_dir)
        check_loss_config(config.loss)
        # A run that starts from a checkpoint takes the encoder from it (init_weights_from), not from ImageNet.
        self.generator = build_generator(config.model, pretrained=not tc.init_from).to(self.device)
        self.ema = copy.deepcopy(self.generator).eval().requires_grad_(False)
        trainable = self._select_trainable(tc.train_only)
        self.use_gan = config.loss.adversarial > 0
        self.discriminator = build_discriminator(config.discriminator).to(self.device) if self.use_gan else None
        self.vgg = load_vgg16().to(self.device) if config.loss.vgg else None
        self.opt_g = torch.optim.Adam(trainable, lr=tc.lr_g, betas=tuple(tc.betas))
        self.opt_d = (
            torch.optim.Adam(self.discriminator.parameters(), lr=tc.lr_d, betas=tuple(tc.betas)) if self.use_gan else None
        )
        self.schedule_g: LambdaLR | None = None
        self.schedule_d: LambdaLR | None = None  # made when the discriminator starts (train.gan_start_step)
        self.step = 0
        self.sampler: CropSampler | None = None
        # What the training step runs: the modules themselves, or their DDP wrappers under torchrun.
        self.g_train, self.d_train = self.generator, self.discriminator

    def _select_trainable(self, only: tuple[str, ...]) -> list[torch.nn.Parameter]:
        """The generator parameters to optimise: those under the ``train.train_only`` module names, or all
        that require a gradient (a frozen pretrained encoder does not)."""
        if only:
            names = [name for name, _ in self.generator.named_modules() if name]
            unknown = [prefix for prefix in only if prefix not in names]
            if unknown:
                raise SarcolorError(f"train.train_only: no module {', '.join(unknown)} in the generator")
            for name, param in self.generator.named_parameters():
                param.requires_grad_(name.startswith(tuple(f"{prefix}." for prefix in only)))
        return [param for param in self.generator.parameters() if param.requires_grad]

    @property
    def is_main(self) -> bool:
        """Only the first process writes checkpoints, logs and pictures."""
        return self.rank == 0

    def _schedule(self, optimizer: torch.optim.Optimizer, lr: float) -> LambdaLR:
        """Linear learning-rate decay (train.lr_decay_start) from the current step on: a resumed run continues
        the schedule. The base rate comes from the config, not from the optimiser's saved (decayed) rate."""
        tc = self.config.train
        factor = functools.partial(linear_decay, steps=tc.steps, decay_start=tc.lr_decay_start)
        for group in optimizer.param_groups:
            group["initial_lr"] = lr
        return LambdaLR(optimizer, lambda done, start=self.step: factor(start + done))

    # -- checkpoints -------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "step": self.step,
            "config": config_to_dict(self.config),
            "sar_convention": SAR_CONVENTION,
            "generator": self.generator.state_dict(),
            "ema": self.ema.state_dict(),
            "discriminator": self.discriminator.state_dict() if self.discriminator else None,
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict() if self.opt_d else None,
            "sampler_rng": self.sampler.rng.bit_generator.state if self.sampler else None,
            "torch_rng": torch.get_rng_state(),
        }

    def save_checkpoint(self) -> Path:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        save_config(self.config, self.out_dir / "config.yaml")
        path = self.out_dir / LAST
        atomic_torch_save(self.state(), path)
        return path

    def load_checkpoint(self, path: Path) -> None:
        state = read_checkpoint(path, self.device, RESUME_KEYS)
        load_weights(self.generator, state["generator"], path)
        load_weights(self.ema, state["ema"], path)
        self.opt_g.load_state_dict(state["opt_g"])
        if self.discriminator is not None and state.get("discriminator") is not None:
            load_weights(self.discriminator, state["discriminator"], path)
            self.opt_d.load_state_dict(state["opt_d"])
        self.step = int(state["step"])
        if self.sampler is not None and state.get("sampler_rng") is not None:
            self.sampler.rng.bit_generator.state = state["sampler_rng"]
        torch.set_rng_state(state["torch_rng"])
        log.info("resumed from %s at step %d", path, self.step)

    # -- one step ------------------------------------------------------------------------------
    def train_step(self, sar: torch.Tensor, optical: torch.Tensor, shifts: list[tuple[int, int]] | None = None,
                   real: torch.Tensor | None = None) -> dict[str, float]:
        """One update; with ``shifts`` the second half of the batch is the first half shifted by them. ``real``
        (N,1,H,W) bool: where the pixels are real; elsewhere (mirrored margins) the prediction is not scored."""
        lc, tc = self.config.loss, self.config.train
        fake = self.g_train(sar)
        if real is not None:  # the margins count as no error (the mean shrinks by a constant factor)
            fake = torch.cat([torch.where(real, fake[:, :3], optical), fake[:, 3:]], 1)
        gan_on = self.use_gan and self.step >= tc.gan_start_step
        logs: dict[str, float] = {}
        if gan_on:
            if self.schedule_d is None:
                self.schedule_d = self._schedule(self.opt_d, tc.lr_d)
            self.opt_d.zero_grad(set_to_none=True)
            real_out = self.d_train(sar, optical)
            fake_out = self.d_train(sar, fake.detach())
            loss_d = discriminator_loss(real_out, fake_out, lc.gan_mode)
            loss_d.backward()
            self.opt_d.step()
            self.schedule_d.step()
            # Real-pair features for feature matching, taken before this D update (no second pass).
            real_out = [[f.detach() for f in scale] for scale in real_out]
            logs["d"] = float(loss_d.detach())
        self.opt_g.zero_grad(set_to_none=True)
        if gan_on:
            # The unwrapped discriminator: this pass updates only G, so D needs no gradient sync.
            self.discriminator.requires_grad_(False)
            fake_out = self.discriminator(sar, fake)
            self.discriminator.requires_grad_(True)
            loss_g, terms = generator_loss(lc, fake, optical, fake_out, real_out, vgg=self.vgg)
        else:
            loss_g, terms = generator_loss(lc, fake, optical, vgg=self.vgg)
        if shifts:
            shift_term = shift_disagreement(fake, shifts)
            loss_g = loss_g + lc.shift_consistency * shift_term
            terms["shift"] = float(shift_term.detach())
        loss_g.backward()
        self.opt_g.step()
        self.schedule_g.step()
        self._update_ema()
        logs.update(g=float(loss_g.detach()), **terms)
        return logs

    @torch.no_grad()
    def _update_ema(self) -> None:
        decay = min(self.config.train.ema_decay, (1 + self.step) / (10 + self.step))
        for e, p in zip(self.ema.parameters(), self.generator.parameters()):
            e.lerp_(p, 1 - decay)
        for e, b in zip(self.ema.buffers(), self.generator.buffers()):  # e.g. BatchNorm running statistics
            e.copy_(b)

    # -- pictures -------------------------------------------------------------------------------
    @staticmethod
    def sample_crops(pairs: list[Pair], size: int, count: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fixed centre crops of the first val pairs: the same pictures at every save; with where they are real
        (not mirrored margin)."""
        sars, opticals, reals = [], [], []
        for pair in pairs[:count]:
            h, w = pair.sar.shape
            y, x = (h - size) // 2, (w - size) // 2
            sars.append(pair.sar[None, y : y + size, x : x + size])
            opticals.append(pair.optical[:, y : y + size, x : x + size])
            reals.append(real_pixels(pair, y, x, size))
        return np.stack(sars), np.stack(opticals), np.stack(reals)

    @torch.no_grad()
    def save_pictures(self, samples: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        """samples.png (SAR | EMA prediction | optical per fixed val crop) and loss_curves.png."""
        sar, optical, _ = samples
        pred = self.ema(torch.from_numpy(sar.astype(np.float32) / 255.0).to(self.device))[:, :3].cpu().numpy()
        pred = np.rint(np.clip(pred, 0, 1) * 255).astype(np.uint8)
        rows = [strip([s[0], p, o]) for s, p, o in zip(sar, pred, optical)]
        save_png(grid(rows), self.out_dir / "samples.png")
        loss_curves(self.out_dir / "loss_log.csv", self.out_dir / "loss_curves.png")

    def init_weights_from(self, path: Path) -> None:
        """Fine-tune start: copy the generator tensors of another run that match by name and shape.

        The architecture may differ (blocks added or removed): what has no match keeps its fresh
        initialisation, and the log says how much was carried over.
        """
        source = read_checkpoint(path, self.device, ("ema",), context="train.init_from: ")["ema"]
        target = self.generator.state_dict()
        matched = {k: v for k, v in source.items() if k in target and target[k].shape == v.shape}
        if not matched:
            raise SarcolorError(f"train.init_from: {path} shares no weights with this model")
        if hasattr(self.generator, "encoder") and any(k.startswith("encoder.") and k not in matched for k in target):
            self.generator.encoder.load_pretrained()  # the checkpoint has no (or another) encoder: ImageNet's
        self.generator.load_state_dict(matched, strict=False)
        if any(is_standardisation(k) and k not in matched for k in target):
            self._fit_input_stats()  # the checkpoint's input standardisation does not fit this model
        self.ema.load_state_dict(self.generator.state_dict())
        log.info("initialised %d of %d generator tensors from %s (%d there unused)",
                 len(matched), len(target), path, len(source) - len(matched))

    def _fit_input_stats(self) -> None:
        """Input standardisation from 64 training crops drawn with their own seed (not the training stream)."""
        if not hasattr(self.generator, "fit_input_stats"):
            return
        sampler = CropSampler(self.sampler.pairs, self.sampler.crop_size, seed=self.config.train.seed + 1)
        sar, _ = sampler.batch(64)
        self.generator.fit_input_stats(torch.from_numpy(sar).to(self.device))
        self.ema.load_state_dict(self.generator.state_dict())

    @torch.no_grad()
    def _val_score(self, crops: tuple[np.ndarray, np.ndarray, np.ndarray], generator: torch.nn.Module | None = None) -> float:
        """Squared error of the colours of ``generator`` (the EMA generator) on the real pixels of fixed val crops."""
        sar, optical = (torch.from_numpy(a.astype(np.float32) / 255.0).to(self.device) for a in crops[:2])
        real = torch.from_numpy(crops[2]).to(self.device).expand_as(optical)
        return float((((generator or self.ema)(sar)[:, :3] - optical) ** 2)[real].mean())

    def _closed_form_start(self, pairs: list[Pair], val_crops: tuple[np.ndarray, np.ndarray] | None) -> None:
        """train.ridge_start: the colour head's closed-form start on train crops, chosen on the val crops."""
        from sarcolor.ridge import closed_form_start, pair_crops

        if val_crops is None:
            raise SarcolorError("train.ridge_start needs train.val_every (the val split picks the start)")
        crops = pair_crops(pairs, self.config.data.crop_size, self.config.train.ridge_crops).to(self.device)
        generator = self.generator.eval()
        chosen = closed_form_start(generator, crops, lambda model: self._val_score(val_crops, model))
        self.ema.load_state_dict(generator.state_dict())
        log.info("fine-tune start: %s", chosen)

    def _no_longer_improving(self, crops: tuple[np.ndarray, np.ndarray]) -> bool:
        """Score on val, keep the best weights as best.pt; True once ``train.patience`` scores did not improve."""
        stop = False
        if self.is_main:
            score = self._val_score(crops)
            if score < self.best_val:
                self.best_val, self.scores_since_best = score, 0
                atomic_torch_save({**self.state(), "val_mse": score}, self.out_dir / BEST)
            else:
                self.scores_since_best += 1
            log.debug("step %d: val squared error %.5f (best %.5f)", self.step, score, self.best_val)
            stop = bool(self.config.train.patience) and self.scores_since_best >= self.config.train.patience
        return ddp.rank0_decides(stop, self.device, self.world_size)

    def _out_of_time(self, started: float) -> bool:
        """Wall-clock budget check; under DDP every process follows rank 0's clock."""
        if not self.config.train.max_minutes:
            return False
        late = time.perf_counter() - started > 60 * self.config.train.max_minutes
        return ddp.rank0_decides(late, self.device, self.world_size)

    # -- loop ------------------------------------------------------------------------------------
    def fit(self, resume: bool = False, on_step: Callable[[int, dict], None] | None = None) -> Path:
        dc, tc = self.config.data, self.config.train
        check_outputs_apart_from_inputs([self.out_dir], [Path(dc.root)])
        pairs = [mirror_pad(p, dc.pad) for p in load_split(dc.root, dc.train_split)]
        log.info("training on %d pairs from %s (%s split)", len(pairs), dc.root, dc.train_split)
        self.sampler = CropSampler(pairs, dc.crop_size, dc.gain_jitter, seed=tc.seed)
        val_pairs = [mirror_pad(p, dc.pad) for p in load_split(dc.root, dc.val_split)]
        val_side = min(dc.crop_size, *(min(p.sar.shape) for p in val_pairs))
        samples = self.sample_crops(val_pairs, val_side)
        val_crops = self.sample_crops(val_pairs, val_side, count=VAL_CROPS) if tc.val_every else None
        self.best_val, self.scores_since_best = float("inf"), 0
        started = time.perf_counter()  # the budget counts the closed-form start too
        last = self.out_dir / LAST
        if resume:
            if not last.is_file():
                raise SarcolorError(f"--resume: no checkpoint at {last}")
            self.load_checkpoint(last)
        elif last.exists():
            raise SarcolorError(f"{last} exists: use --resume to continue it, or choose another out_dir")
        else:
            if tc.init_from:
                self.init_weights_from(Path(tc.init_from))
            else:
                self._fit_input_stats()
            if tc.ridge_start:
                self._closed_form_start(pairs, val_crops)
        if self.world_size > 1:
            # Each process draws its own crops; the effective batch is world_size x batch_size.
            self.sampler.rng = np.random.default_rng([tc.seed, self.rank, self.step])
            self.g_train, self.d_train = ddp.wrap(self.generator, self.device), ddp.wrap(self.discriminator, self.device)
            if self.is_main:
                log.info("DistributedDataParallel over %d processes (%s) on %s",
                         self.world_size, torch.distributed.get_backend(), self.device.type)
        self.schedule_g, self.schedule_d = self._schedule(self.opt_g, tc.lr_g), None
        if self.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            save_config(self.config, self.out_dir / "config.yaml")
        if resume and tc.val_every and (self.out_dir / BEST).is_file():  # a resumed run keeps its best so far
            self.best_val = float(read_checkpoint(self.out_dir / BEST, self.device, ("val_mse",))["val_mse"])
        elif tc.val_every and tc.val_at_start and not resume:
            self._no_longer_improving(val_crops)
        log_path = self.out_dir / "loss_log.csv"
        if self.is_main:
            if resume:
                trim_log(log_path, self.step)
            elif log_path.exists():
                log_path.unlink()  # a fresh run starts a fresh log, not the tail of a killed run's
        self.generator.train()
        with open(log_path if self.is_main else os.devnull, "a", newline="") as log_file:
            writer = csv.DictWriter(log_file, fieldnames=log_fields(log_path), extrasaction="ignore", restval="")
            if log_file.tell() == 0 and self.is_main:
                writer.writeheader()
            while self.step < tc.steps:
                shifts = None
                if self.config.loss.shift_consistency:
                    sar, optical, shifts = self.sampler.shifted_batch(dc.batch_size, dc.shift_max)
                    real = None
                else:
                    sar, optical, real = self.sampler.masked_batch(dc.batch_size)
                    real = torch.from_numpy(real).to(self.device) if dc.pad else None
                logs = self.train_step(torch.from_numpy(sar).to(self.device), torch.from_numpy(optical).to(self.device), shifts, real)
                self.step += 1
                if self.step % tc.log_every == 0 or self.step == tc.steps:
                    row = {"step": self.step, "seconds": round(time.perf_counter() - started, 2), **logs}
                    writer.writerow(row)
                    log_file.flush()
                if self.is_main and (self.step % tc.checkpoint_every == 0 or self.step == tc.steps):
                    self.save_checkpoint()
                if self.is_main and (self.step % tc.sample_every == 0 or self.step == tc.steps):
                    self.save_pictures(samples)
                if on_step:
                    on_step(self.step, logs)
                if tc.val_every and self.step % tc.val_every == 0 and self._no_longer_improving(val_crops):
                    log.info("stopping at step %d: no better on val for %d scores (best squared error %.5f, in %s)",
                             self.step, tc.patience, self.best_val, BEST)
                    if self.is_main:
                        self.save_checkpoint()
                    break
                if self._out_of_time(started):
                    log.info("stopping at step %d: train.max_minutes (%g) reached", self.step, tc.max_minutes)
                    if self.is_main:
                        self.save_checkpoint()
                        self.save_pictures(samples)
                    break
        if tc.val_every and self.step % tc.val_every:
            self._no_longer_improving(val_crops)  # the last weights are scored too: best.pt always exists
        ddp.leave_process_group(self.world_size)
        return last
