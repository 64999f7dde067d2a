"""Ablations of LiteColorNet's colour path on cached encoder outputs (session 8, experiments/README.md).

The frozen EfficientNet-Lite0's outputs for the 82 train scenes under the 8 flips/rotations are
computed once (5 GB with the images, float16 features), and only the trainable head is trained, on
crops of them aligned to the deepest tap's stride. This is not much faster than stage 1 (the head's
depthwise convolutions dominate a step on a CPU), but it changes what the head sees: features computed
on the whole scene, never a crop's edge, always at the scene's own lattice phase. ``shift=W`` adds the
agreement term between two lattice phases of each scene (``cache_shifted``), without crop edges.
A ``scene_context`` adds a zero-initialised per-scene vector to the head (not in LiteColorNet).

    python experiments/cached_head.py cache                       # writes runs/cache/{train,val}.pt
    python experiments/cached_head.py cache_shifted               # runs/cache/train_shifted.pt (for shift=W)
    python experiments/cached_head.py train NAME STEPS [key=value ...]   # runs/cache/NAME.pt + JSON lines
    python experiments/cached_head.py checkpoint NAME runs/smooth/last.pt  # runs/NAME/last.pt, a full model

Keys: width, depth, lateral, smoothing (the heads' blur, sigma at 1/4 resolution), ssim (weight of an SSIM
term beside the squared error), lr, batch, crop, every, scene_context (tap/stats), init (a stage-1
checkpoint), shift (weight of the agreement between the two lattice phases; 0 = no shifted copies).
The score is the val split at full resolution (1024², detail 0, saturation 1): PSNR, PSNR at 80 m, SSIM.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from sarcolor.data import load_split
from sarcolor.losses import ssim_loss
from sarcolor.metrics import psnr, psnr_pooled, ssim
from sarcolor.models.encoder import Lite0Encoder
from sarcolor.models.litecolor import LiteColorNet
from sarcolor.train import linear_decay, shift_disagreement
from sarcolor.novelty import STAT_NAMES, scene_statistics
from sarcolor.ridge import dihedral

ROOT = Path("../shared/data/s1s2-pairs")
CACHE = Path("runs/cache")
ALIGN = 64  # the stride of the deepest of the four taps, in SAR pixels
log = logging.getLogger("cached_head")


@torch.no_grad()
def cache_split(split: str, transforms: int, shifted: bool) -> None:
    """Encoder outputs of each scene under ``transforms`` flips/rotations; with ``shifted``, also of the same
    scene cut at a random offset of 1 to 31 px (another phase of the encoder's stride lattice)."""
    encoder = Lite0Encoder(taps=4)
    encoder.load_pretrained()
    encoder.eval()
    rng = np.random.default_rng(1)
    items = []

    def taps_of(sar: np.ndarray) -> list[torch.Tensor]:
        amplitude = torch.from_numpy(sar[None, None].astype(np.float32) / 255.0)
        return [t[0].half() for t in encoder(F.avg_pool2d(amplitude, 2))]

    for pair in load_split(ROOT, split):
        for k in range(transforms):
            sar = dihedral(pair.sar, k)
            item = {"sar": sar, "optical": dihedral(pair.optical, k), "taps": taps_of(sar)}
            if shifted:
                dy, dx = (int(v) for v in rng.integers(1, 32, size=2))
                size = sar.shape[0] - ALIGN
                item.update(shift=(dy, dx), shifted_taps=taps_of(sar[dy : dy + size, dx : dx + size]))
            items.append(item)
        log.info("%s %s cached", split, pair.id)
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.save(items, CACHE / f"{split}{'_shifted' if shifted else ''}.pt")


class CachedTapsNet(LiteColorNet):
    """LiteColorNet whose encoder outputs are given (``self.given_taps``) instead of computed.

    ``scene_context`` adds a zero-initialised term to the head's first layer, so that a trained stage 1
    loads and starts where it was: a per-scene vector ("tap": the scene's mean of the deepest tap; "stats":
    the novelty statistics of its SAR), the same for every crop of a scene.
    """

    def __init__(self, scene_context: str = "", **kwargs) -> None:
        super().__init__(pretrained=False, **kwargs)
        self.given_taps: list[torch.Tensor] = []
        self.scene_vector = torch.zeros(1, 1)
        width = self.mix[0].out_channels
        scene_channels = {"tap": self.laterals[-1].in_channels, "stats": len(STAT_NAMES)}.get(scene_context)
        self.scene_lateral = _zero(nn.Linear(scene_channels, width)) if scene_channels else None
        if self.scene_lateral is not None:
            self.mix[0].register_forward_hook(self._add_scene)

    def _add_scene(self, module: nn.Module, inputs: tuple, out: torch.Tensor) -> torch.Tensor:
        return out + self.scene_lateral(self.scene_vector)[:, :, None, None]

    def _raw_taps(self, amplitude: torch.Tensor) -> list[torch.Tensor]:
        return self.given_taps[: len(self.laterals)]


def _zero(layer: nn.Module) -> nn.Module:
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def crop_taps(taps: list[torch.Tensor], y: int, x: int, size: int) -> list[torch.Tensor]:
    """A scene's four taps over the SAR window (y, x, size, size); y, x multiples of ALIGN."""
    out = []
    for i, tap in enumerate(taps):
        stride = 8 * 2**i
        out.append(tap[:, y // stride : (y + size) // stride, x // stride : (x + size) // stride].float())
    return out


def scene_vectors(model: CachedTapsNet, items: list[dict], kind: str, train: list[dict]) -> None:
    """Each scene's vector: the mean of the deepest used tap, standardised like the tap ("tap"), or the
    novelty statistics of its SAR standardised over the training scenes ("stats")."""
    if kind == "stats":
        stats = [torch.from_numpy(scene_statistics(item["sar"] / 255.0)).float() for item in train[::8]]
        mean, std = torch.stack(stats).mean(0), torch.stack(stats).std(0).clamp_min(1e-3)
    i = len(model.laterals) - 1
    for item in items:
        if kind == "stats":
            item["scene"] = ((torch.from_numpy(scene_statistics(item["sar"] / 255.0)).float() - mean) / std)[None]
        else:
            tap = (item["taps"][i].float()[None] - getattr(model, f"tap_mean{i}")) / getattr(model, f"tap_std{i}")
            item["scene"] = tap.mean((2, 3))


def fit_stats(model: CachedTapsNet, items: list[dict], rng: np.random.Generator) -> None:
    """The input standardisation of a fresh head, from the first 256² of 64 cached scenes."""
    picks = [items[int(j)] for j in rng.choice(len(items), 64, replace=False)]
    model.given_taps = [torch.stack(level) for level in zip(*(crop_taps(item["taps"], 0, 0, 256) for item in picks))]
    sar = np.stack([item["sar"][None, :256, :256] for item in picks]).astype(np.float32) / 255.0
    model.fit_input_stats(torch.from_numpy(sar))  # LiteColorNet's own fit, on the given taps


def run(model: CachedTapsNet, crops: list[tuple], size: int) -> torch.Tensor:
    """Colours (detail 0) of same-sized crops (scene item, y, x[, shifted]): with ``shifted`` true, the crop
    at (y, x) of the scene's shifted cut, which starts ``item["shift"]`` px into the scene."""
    taps, sars = [], []
    for item, y, x, *shifted in crops:
        dy, dx = item["shift"] if shifted and shifted[0] else (0, 0)
        taps.append(crop_taps(item["shifted_taps" if dy else "taps"], y, x, size))
        sars.append(item["sar"][None, y + dy : y + dy + size, x + dx : x + dx + size])
    model.given_taps = [torch.stack(level) for level in zip(*taps)]
    if model.scene_lateral is not None:
        model.scene_vector = torch.cat([crop[0]["scene"] for crop in crops])
    sar = np.stack(sars)
    return model(torch.from_numpy(sar.astype(np.float32) / 255.0), torch.zeros(1))


@torch.no_grad()
def score(model: CachedTapsNet, val: list[dict]) -> dict[str, float]:
    rows = []
    for item in val:
        pred = run(model, [(item, 0, 0)], item["sar"].shape[0])[0, :3].numpy()
        real = item["optical"].astype(np.float32) / 255.0
        rows.append((psnr(pred, real), psnr_pooled(pred, real), ssim(pred, real)))
    means = np.mean(rows, 0)
    return {"psnr": float(means[0]), "psnr80": float(means[1]), "ssim": float(means[2])}


def train(name: str, steps: int, options: dict[str, str]) -> None:
    width, depth, lateral = int(options.get("width", 64)), int(options.get("depth", 2)), int(options.get("lateral", 32))
    lr, batch, crop = float(options.get("lr", 2e-3)), int(options.get("batch", 8)), int(options.get("crop", 256))
    every = int(options.get("every", 500))
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    scene = options.get("scene_context", "")
    smoothing, ssim_weight = float(options.get("smoothing", 2.0)), float(options.get("ssim", 0))
    model = CachedTapsNet(scene_context=scene, lateral_width=lateral, width=width, depth=depth, smoothing=smoothing)
    shift_weight = float(options.get("shift", 0))
    items = torch.load(CACHE / ("train_shifted.pt" if shift_weight else "train.pt"), weights_only=False)
    val = torch.load(CACHE / "val.pt", weights_only=False)
    if "init" in options:
        weights = torch.load(options["init"], map_location="cpu", weights_only=False)["ema"]
        model.load_state_dict({k: v for k, v in weights.items() if not k.startswith("encoder.")}, strict=False)
    else:
        fit_stats(model, items, rng)
    if model.scene_lateral is not None:
        scene_vectors(model, items, scene, items)
        scene_vectors(model, val, scene, items)
    trainable = [p for n, p in model.named_parameters() if not n.startswith(("gain_head", "error_head"))]
    optimizer = torch.optim.Adam(trainable, lr=lr, betas=(0.9, 0.99))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: linear_decay(step, steps, steps // 2))
    ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
    started, last = time.time(), score(model, val)
    print(json.dumps({"name": name, "step": 0, **last}), flush=True)
    for step in range(1, steps + 1):
        crops = []
        for _ in range(batch // 2 if shift_weight else batch):
            item = items[int(rng.integers(len(items)))]
            limit = item["sar"].shape[0] - crop - (ALIGN if shift_weight else 0)
            y, x = (int(v) * ALIGN for v in rng.integers(0, limit // ALIGN + 1, size=2))
            crops.append((item, y, x, False))
        if shift_weight:
            crops += [(item, y, x, True) for item, y, x, _ in crops]
        real = []
        for item, y, x, shifted in crops:
            dy, dx = item["shift"] if shifted else (0, 0)
            real.append(item["optical"][:, y + dy : y + dy + crop, x + dx : x + dx + crop])
        pred = run(model, crops, crop)
        target = torch.from_numpy(np.stack(real).astype(np.float32) / 255.0)
        loss = 100.0 * F.mse_loss(pred, target)
        if ssim_weight:
            loss = loss + ssim_weight * ssim_loss(pred, target)
        if shift_weight:
            shifts = [item["shift"] for item, _, _, shifted in crops if shifted]
            loss = loss + shift_weight * shift_disagreement(pred, shifts)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        with torch.no_grad():
            for k, v in model.state_dict().items():
                ema[k].mul_(0.995).add_(v, alpha=0.005) if v.dtype.is_floating_point else ema[k].copy_(v)
        if step % every == 0 or step == steps:
            live = {k: v.clone() for k, v in model.state_dict().items()}
            model.load_state_dict(ema)
            last = score(model, val)
            model.load_state_dict(live)
            print(json.dumps({"name": name, "step": step, "minutes": round((time.time() - started) / 60, 1), **last}), flush=True)
    torch.save({"options": options, "state": ema, **last}, CACHE / f"{name}.pt")


def to_checkpoint(name: str, base: str) -> None:
    """runs/NAME/last.pt: the stage-1 checkpoint ``base`` with its head replaced by the cached run NAME's
    (only for runs without the additions, which LiteColorNet does not have)."""
    run_state = torch.load(CACHE / f"{name}.pt", weights_only=False)["state"]
    checkpoint = torch.load(base, map_location="cpu", weights_only=False)
    for key in ("generator", "ema"):
        for k in checkpoint[key]:
            if k in run_state and not k.startswith("encoder."):
                checkpoint[key][k] = run_state[k].clone()
    extra = [k for k in run_state if k not in checkpoint["ema"]]
    if extra:
        raise SystemExit(f"{name} has weights LiteColorNet lacks: {extra}")
    checkpoint["config"]["out_dir"] = f"runs/{name}"
    out = Path("runs") / name
    out.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, out / "last.pt")
    log.info("wrote %s", out / "last.pt")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(int(dict(a.split("=", 1) for a in sys.argv[4:] if "=" in a).get("threads", 1)))
    if sys.argv[1] == "cache":
        cache_split("val", 1, shifted=False)
        cache_split("train", 8, shifted=False)
    elif sys.argv[1] == "cache_shifted":
        cache_split("train", 4, shifted=True)
    elif sys.argv[1] == "checkpoint":
        to_checkpoint(sys.argv[2], sys.argv[3])
    else:
        train(sys.argv[2], int(sys.argv[3]), dict(a.split("=", 1) for a in sys.argv[4:]))


if __name__ == "__main__":
    main()
