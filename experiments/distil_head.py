"""A cheaper head for the bundled model, distilled from it (issue 23: the model is three quarters of a scene's time).

The head (``mix`` and the colour, gain and error heads, at 1/4 resolution) is most of the model's cost in
onnxruntime; the frozen encoder, the speckle statistics and the lateral layers stay as they are. A student head
of another width and depth is trained to give the bundled head's outputs (colour logits, detail gains, error;
after the model's own fixed blurs) from the same inputs, cached once for the train split as it is and turned
and flipped. The student then replaces the head in a copy of the bundled checkpoint, which
``sarcolor export`` and ``sarcolor evaluate`` take as any other. Measured and not shipped: experiments/README.md,
sessions 12 and 13 (crops of a scene agree less than with the bundled head).

    T=sarcolor/weights/default.pt       # the teacher: the bundled model; for sessions 12-13's runs, the one before
                                        # the head at 1/8: git show b95790c:sarcolor/weights/default.pt > teacher.pt
    python experiments/distil_head.py cache $T                    # runs/distil/{train,val,edges_scene}.pt
    python experiments/distil_head.py train $T NAME WIDTH DEPTH [STEPS] [FROM.pt] [LR] [EDGE_WEIGHT] [OPTICAL_WEIGHT] [HEAD_POOL]
                                                  # runs/distil/NAME/{last.pt,config.yaml,log.jsonl}
    # session 12 (edge tiles then imitated the bundled head on the tile itself): s32x1_long 32 1 6000;
    # s32x1_edges 32 1 2000 runs/distil/s32x1_long/last.pt; s32x2_edges 32 2 1500 runs/distil/s32x1_edges/last.pt
    # session 13 (edge tiles with the whole scene's outputs): c32x2 32 2 1500 runs/distil/s32x2_edges/last.pt 1e-3;
    # c32x2b 32 2 1000 runs/distil/c32x2/last.pt 5e-4 3; c32x2c 32 2 750 runs/distil/c32x2b/last.pt 5e-4 3 1;
    # the head at 1/8 from the teacher's own weights: coarse8 64 2 1500 $T 1e-3 3 0 2;
    # coarse8b 64 2 750 runs/distil/coarse8/last.pt 5e-4 3 0 2; coarse8c 64 2 500 runs/distil/coarse8/last.pt 3e-4 3 0.2 2;
    # the shipped default.pt: 0.9 x coarse8 + 0.1 x coarse8c, weight by weight (experiments/README.md, session 13):
    python experiments/distil_head.py average runs/distil/coarse8/last.pt runs/distil/coarse8c/last.pt 0.1 runs/distil/mix10/last.pt
    sarcolor export runs/distil/NAME/last.pt -o runs/distil/NAME.onnx --calibrate ../shared/data/s1s2-pairs
    sarcolor evaluate --model runs/distil/NAME.onnx --data ../shared/data/s1s2-pairs
"""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
from rasterio.windows import Window

from sarcolor.backends import TorchModel
from sarcolor.checkpoint import atomic_torch_save
from sarcolor.config import config_from_dict, save_config
from sarcolor.data import load_split
from sarcolor.models import build_generator
from sarcolor.models.litecolor import LiteColorNet
from sarcolor.ridge import dihedral
from sarcolor.tiling import clip_window, mirror_window

ROOT = Path("../shared/data/s1s2-pairs")
OUT = Path("runs/distil")
TRANSFORMS = (0, 7)  # as they are, and turned three quarters and flipped (``ridge.dihedral``)
EDGE_TILES = 4  # per train scene
CROP, MARGIN = 96, 24  # 1/4-resolution crop, and the border left out of the loss: the gains' blur reaches 24 px
log = logging.getLogger("distil_head")


def blurred_heads(model: LiteColorNet, inputs: torch.Tensor) -> torch.Tensor:
    """The head's outputs at 1/4 resolution after the model's fixed blurs: logits, gains, raw error."""
    return torch.cat([h for h in model.blurred_heads(model.mix(model.pooled(inputs))) if h is not None], 1)


def edge_tile(
    scene: np.ndarray, rng: np.random.Generator, tile: int = 512, anchor: int = 32
) -> tuple[np.ndarray, Window, tuple[int, int, int, int]]:
    """A tile as ``colorize`` builds it at a crop's edge: a random crop of the scene (160 to 700 px a side), a tile
    window on the scene's grid (its origin a multiple of ``anchor`` in scene pixels, as tiles are anchored to the
    map grid) reaching past at least one of the crop's edges, mirrored there (``tiling.mirror_window``). Returns
    the tile, its window in scene pixels and the crop (row, column, height, width: what ``real_mask`` takes)."""
    h, w = (int(v) for v in rng.integers(160, 700, 2))
    r0, c0 = int(rng.integers(0, scene.shape[0] - h + 1)), int(rng.integers(0, scene.shape[1] - w + 1))
    crop = scene[r0 : r0 + h, c0 : c0 + w]

    def offset(start: int, size: int) -> int:  # tile origin relative to the crop, on the scene's grid
        low, high = -(-(start - tile // 2) // anchor), (start + size - tile // 2) // anchor
        return int(rng.integers(low, high + 1)) * anchor - start

    window = Window(offset(c0, w), offset(r0, h), tile, tile)
    inside = clip_window(window, h, w)
    return mirror_window(crop[inside.toslices()], window, inside), Window(c0 + window.col_off, r0 + window.row_off, tile, tile), (r0, c0, h, w)


def real_mask(scene_window: Window, crop: tuple[int, int, int, int], tile: int = 512) -> torch.Tensor:
    """(1, tile/4, tile/4): the 1/4-resolution places of a tile whose 4x4 pixels all lie inside the crop."""
    r0, c0, h, w = crop
    rows = np.arange(tile // 4) * 4 + scene_window.row_off
    cols = np.arange(tile // 4) * 4 + scene_window.col_off
    inside_rows = (rows >= r0) & (rows + 4 <= r0 + h)
    inside_cols = (cols >= c0) & (cols + 4 <= c0 + w)
    return torch.from_numpy(inside_rows[:, None] & inside_cols[None, :])[None]


@torch.no_grad()
def cache_edges(teacher_path: Path) -> None:
    """Tiles at crops' edges (``edge_tile``) of the train split, each with the bundled head's outputs for the
    *whole* scene at the same places (cached by ``cache``) and the mask of the crop's real places: a student
    learns to give a crop's places the colours the whole scene gives them (the crop-consistency tests), not
    to copy the bundled head's guess from mirrored ground."""
    teacher = TorchModel(teacher_path, device="cpu").generator
    whole = torch.load(OUT / "train.pt")["targets"]
    rng = np.random.default_rng(2)
    inputs, targets, masks = [], [], []
    for i, pair in enumerate(load_split(ROOT, "train")):
        for t, k in enumerate(TRANSFORMS):
            scene = dihedral(pair.sar, k).astype(np.float32) / 255.0
            for _ in range(EDGE_TILES // len(TRANSFORMS)):
                tile, window, crop = edge_tile(scene, rng)
                inputs.append(teacher.head_inputs(torch.from_numpy(np.ascontiguousarray(tile)[None, None]))[0].half())
                target = torch.zeros(whole.shape[1], 128, 128, dtype=torch.half)
                mask = real_mask(window, crop)
                r, c = window.row_off // 4, window.col_off // 4
                rows, cols = slice(max(0, -r), min(128, whole.shape[2] - r)), slice(max(0, -c), min(128, whole.shape[3] - c))
                target[:, rows, cols] = whole[i * len(TRANSFORMS) + t, :, rows.start + r : rows.stop + r, cols.start + c : cols.stop + c]
                targets.append(target)
                masks.append(mask)
        log.info("edges of %s cached", pair.id)
    torch.save({"inputs": torch.stack(inputs), "targets": torch.stack(targets), "masks": torch.stack(masks)}, OUT / "edges_scene.pt")


@torch.no_grad()
def cache(teacher_path: Path) -> None:
    teacher = TorchModel(teacher_path, device="cpu").generator
    OUT.mkdir(parents=True, exist_ok=True)
    for split, transforms in (("train", TRANSFORMS), ("val", (0,))):
        inputs, targets = [], []
        for pair in load_split(ROOT, split):
            for k in transforms:
                amplitude = torch.from_numpy(dihedral(pair.sar, k)[None, None].astype(np.float32) / 255.0)
                x = teacher.head_inputs(amplitude)
                inputs.append(x[0].half())
                targets.append(blurred_heads(teacher, x)[0].half())
            log.info("%s %s cached", split, pair.id)
        torch.save({"inputs": torch.stack(inputs), "targets": torch.stack(targets)}, OUT / f"{split}.pt")


def student_of(teacher_path: Path, width: int, depth: int, head_pool: int = 1) -> tuple[LiteColorNet, dict]:
    """The bundled model's architecture with a head of ``width`` and ``depth``, the bundled weights everywhere
    else, and its checkpoint dict (config changed to match)."""
    state = torch.load(teacher_path, map_location="cpu", weights_only=False)
    state["config"]["model"].update(head_width=width, head_depth=depth, head_pool=head_pool)
    student = build_generator(config_from_dict(state["config"]).model)
    kept = {k: v for k, v in state["ema"].items() if not k.startswith(("mix.", "colour_head", "gain_head", "error_head"))}
    missing, unexpected = student.load_state_dict(kept, strict=False)
    assert not unexpected and all(k.startswith(("mix.", "colour_head", "gain_head", "error_head")) for k in missing)
    return student, state


def head_parameters(model: LiteColorNet) -> list[torch.nn.Parameter]:
    heads = [model.mix, model.colour_head, model.gain_head, model.error_head]
    return [p for module in heads for p in module.parameters()]


def interior(t: torch.Tensor, margin: int) -> torch.Tensor:
    return t[..., margin : -margin or None, margin : -margin or None]


def loss_of(outputs: torch.Tensor, targets: torch.Tensor, scale: torch.Tensor, margin: int) -> torch.Tensor:
    """The squared error, each channel in units of its spread, of the head's outputs (``blurred_heads``) away from
    the crop's edges."""
    return (interior(outputs - targets, margin) / scale).square().mean()


def masked_loss(outputs: torch.Tensor, targets: torch.Tensor, masks: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The squared error at the places ``masks`` marks (a crop's real places; the rest is mirrored context)."""
    error = ((outputs - targets) / scale).square().mean(1, keepdim=True)
    return (error * masks).sum() / masks.sum().clamp_min(1)


def optical_quarters() -> torch.Tensor:
    """The train split's optical at the heads' 1/4 resolution, in the order and transforms of the ``cache``."""
    quarters = []
    for pair in load_split(ROOT, "train"):
        for k in TRANSFORMS:
            optical = torch.from_numpy(dihedral(pair.optical, k).astype(np.float32) / 255.0)[None]
            quarters.append(torch.nn.functional.avg_pool2d(optical, 4)[0].half())
    return torch.stack(quarters)


def smooth_error(model: LiteColorNet, outputs: torch.Tensor, optical: torch.Tensor, margin: int) -> torch.Tensor:
    """Squared error of the smooth colour (detail 0; the logits of the head's ``outputs``) at 1/4 resolution against
    the optical, away from the edges."""
    return interior(model.saturate(torch.sigmoid(outputs[:, :3])) - optical, margin).square().mean()


def train(teacher: Path, name: str, width: int, depth: int, steps: int = 3000, start_from: Path | None = None,
          lr: float = 2e-3, edge_weight: float = 1.0, optical_weight: float = 0.0, head_pool: int = 1, batch: int = 8) -> None:
    """Each step: a batch of crops of whole scenes (the loss away from the crops' edges, where the blurs would see
    past them), with ``optical_weight`` also the smooth colour's error against the optical there, and, when
    cached, a batch of edge tiles (the loss at the crop's real places, times ``edge_weight``). ``start_from``: a
    student checkpoint to continue."""
    torch.manual_seed(0)
    torch.set_num_threads(2)
    data, val = torch.load(OUT / "train.pt"), torch.load(OUT / "val.pt")
    edges = torch.load(OUT / "edges_scene.pt") if (OUT / "edges_scene.pt").exists() else None
    inputs, targets = data["inputs"], data["targets"]
    optical = optical_quarters() if optical_weight else None
    scale = targets.float().std((0, 2, 3), keepdim=True)[0]
    student, state = student_of(teacher, width, depth, head_pool)
    if start_from is not None:  # a shallower student's weights: the blocks it lacks start as identities
        missing, _ = student.load_state_dict(torch.load(start_from, map_location="cpu", weights_only=False)["ema"], strict=False)
        for key in missing:
            if key.endswith(".gamma"):
                student.get_parameter(key).data.zero_()
    params = head_parameters(student)
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, lr, total_steps=steps, pct_start=0.05)
    rng = np.random.default_rng(0)
    out = OUT / name
    out.mkdir(parents=True, exist_ok=True)
    start, size = time.time(), inputs.shape[-1]
    with (out / "log.jsonl").open("w") as log_file:
        for step in range(1, steps + 1):
            idx = torch.from_numpy(rng.integers(0, len(inputs), batch))
            # A head at 1/8 (head_pool 2) sees the crop on the scene's 1/8 grid: an even offset at 1/4.
            y, x = (head_pool * int(v) for v in rng.integers(0, (size - CROP) // head_pool + 1, 2))
            window = (idx, slice(None), slice(y, y + CROP), slice(x, x + CROP))
            outputs = blurred_heads(student, inputs[window].float())
            loss = loss_of(outputs, targets[window].float(), scale, MARGIN)
            if optical is not None:  # the train scenes' own colours, in units of the smooth model's squared error
                loss = loss + optical_weight * smooth_error(student, outputs, optical[window].float(), MARGIN) / 0.02
            if edges is not None:
                idx = torch.from_numpy(rng.integers(0, len(edges["inputs"]), batch // 2))
                edge_outputs = blurred_heads(student, edges["inputs"][idx].float())
                loss = loss + edge_weight * masked_loss(edge_outputs, edges["targets"][idx].float(), edges["masks"][idx].float(), scale)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            if step % 250 == 0 or step == steps:
                with torch.no_grad():
                    val_loss = float(np.mean([
                        loss_of(blurred_heads(student, val["inputs"][i : i + 1].float()), val["targets"][i : i + 1].float(), scale, MARGIN)
                        for i in range(len(val["inputs"]))
                    ]))
                record = {"step": step, "loss": loss.item(), "val": val_loss, "minutes": (time.time() - start) / 60}
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
                log.info("%s", record)
    state["ema"] = student.state_dict()
    state["config"]["out_dir"] = str(out)
    state["distilled_from"] = teacher.name
    atomic_torch_save(state, out / "last.pt")
    save_config(config_from_dict(state["config"]), out / "config.yaml")


def average(first: Path, second: Path, weight: float, out: Path) -> None:
    """A checkpoint whose weights are (1 - ``weight``) x ``first``'s + ``weight`` x ``second``'s (the rest: ``first``'s)."""
    a, b = (torch.load(p, map_location="cpu", weights_only=False) for p in (first, second))
    a["ema"] = {k: v * (1 - weight) + b["ema"][k] * weight if v.is_floating_point() else v for k, v in a["ema"].items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(a, out)


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if argv[0] == "cache":
        cache(Path(argv[1]))
        cache_edges(Path(argv[1]))
    elif argv[0] == "cache-edges":
        cache_edges(Path(argv[1]))
    elif argv[0] == "average":
        average(Path(argv[1]), Path(argv[2]), float(argv[3]), Path(argv[4]))
    elif argv[0] == "train":
        teacher, name, width, depth = Path(argv[1]), argv[2], int(argv[3]), int(argv[4])
        train(teacher, name, width, depth, *(int(v) for v in argv[5:6]), *(Path(v) for v in argv[6:7]),
              *(float(v) for v in argv[7:10]), *(int(v) for v in argv[10:11]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
