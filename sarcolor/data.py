"""Paired SAR/optical data: the pairs folder layout, split handling, random crops and augmentation.

Layout (as ../shared/data/s1s2-pairs): ``sar/ID.png`` (grey, normalised VH amplitude),
``opt/ID.png`` (RGB), ``split.json`` with lists of ids per split. Splits are spatially disjoint
blocks fixed in split.json; nothing here ever draws a random split.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sarcolor.errors import SarcolorError, first_line
from sarcolor.readers.raster import read_plain_image

# The mirrored margin colorize gives an image smaller than its tile (half its default tile overlap): a model
# fine-tuned on small tiles sees them padded the same way.
MARGIN = 32


@dataclass
class Pair:
    id: str
    sar: np.ndarray  # (H, W) uint8
    optical: np.ndarray  # (3, H, W) uint8
    sar_path: Path  # the SAR file itself: models score it through the colorize read path (infer.predict_raster)
    margin: int = 0  # mirrored pixels around the real images on every side (mirror_pad): context, not a target


def split_ids(root: str | Path, split: str) -> list[str]:
    root = Path(root)
    split_file = root / "split.json"
    if not split_file.is_file():
        raise SarcolorError(f"{root} is not a pairs folder: {split_file} is missing")
    try:
        splits = json.loads(split_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SarcolorError(f"{split_file} is not JSON: {first_line(exc)}") from None
    if not isinstance(splits, dict) or not all(isinstance(ids, list) for ids in splits.values()):
        raise SarcolorError(f"{split_file} must map split names to lists of pair ids")
    if split not in splits:
        raise SarcolorError(f"split {split!r} not in {split_file} (has: {', '.join(splits)})")
    if not splits[split]:
        raise SarcolorError(f"split {split!r} in {split_file} is empty")
    return [str(pair_id) for pair_id in splits[split]]


def load_pair(root: str | Path, pair_id: str) -> Pair:
    root = Path(root)
    sar_path = root / "sar" / f"{pair_id}.png"
    sar = read_plain_image(sar_path)
    optical = read_plain_image(root / "opt" / f"{pair_id}.png")
    if sar.shape[0] != 1 or optical.shape[0] != 3 or sar.shape[1:] != optical.shape[1:]:
        raise SarcolorError(f"pair {pair_id}: expected grey SAR and RGB optical of one size, got {sar.shape} and {optical.shape}")
    return Pair(pair_id, sar[0], optical, sar_path)


def load_split(root: str | Path, split: str) -> list[Pair]:
    return [load_pair(root, pair_id) for pair_id in split_ids(root, split)]


def mirror_pad(pair: Pair, pad: int) -> Pair:
    """The pair with ``pad`` mirrored pixels added on every side of both images."""
    if not pad:
        return pair
    sar = np.pad(pair.sar, pad, mode="symmetric")
    optical = np.pad(pair.optical, ((0, 0), (pad, pad), (pad, pad)), mode="symmetric")
    return dataclasses.replace(pair, sar=sar, optical=optical, margin=pair.margin + pad)


def real_pixels(pair: Pair, y: int, x: int, size: int) -> np.ndarray:
    """(1, size, size) bool for the window at (y, x): True on the pair's real pixels, False on its mirrored margins."""
    (h, w), m = pair.sar.shape, pair.margin
    rows, cols = np.arange(y, y + size), np.arange(x, x + size)
    return (((rows >= m) & (rows < h - m))[:, None] & ((cols >= m) & (cols < w - m))[None])[None]


def augment(sar: np.ndarray, optical: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The same random flip and 90-degree rotation on both (..., H, W) arrays."""
    k = int(rng.integers(4))
    sar, optical = np.rot90(sar, k, axes=(-2, -1)), np.rot90(optical, k, axes=(-2, -1))
    if rng.random() < 0.5:
        sar, optical = sar[..., ::-1], optical[..., ::-1]
    return sar, optical


class CropSampler:
    """Draws batches of random, augmented crops: SAR (N,1,S,S) and RGB (N,3,S,S) float32 in [0,1]."""

    def __init__(self, pairs: list[Pair], crop_size: int, gain_jitter: float = 0.0, seed: int = 0) -> None:
        if not pairs:
            raise SarcolorError("no training pairs")
        smallest = min(min(p.sar.shape) for p in pairs)
        if crop_size > smallest:
            raise SarcolorError(f"crop size {crop_size} is larger than the smallest image ({smallest} px)")
        self.pairs = pairs
        self.crop_size = crop_size
        self.gain_jitter = gain_jitter
        self.rng = np.random.default_rng(seed)

    def crop(self, extra: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One random augmented crop of crop_size + extra px: SAR, RGB and where its pixels are real (not margin)."""
        pair = self.pairs[int(self.rng.integers(len(self.pairs)))]
        h, w = pair.sar.shape
        s = self.crop_size + extra
        y, x = int(self.rng.integers(h - s + 1)), int(self.rng.integers(w - s + 1))
        window = (slice(None), slice(y, y + s), slice(x, x + s))
        optical_real = np.concatenate([pair.optical[window], real_pixels(pair, y, x, s)])
        sar, optical_real = augment(pair.sar[None][window], optical_real, self.rng)
        sar = sar.astype(np.float32) / 255.0
        if self.gain_jitter:
            gain = float(np.exp(self.rng.uniform(-1, 1) * np.log1p(self.gain_jitter)))
            sar = np.clip(sar * gain, 0.0, 1.0)
        return sar, optical_real[:3].astype(np.float32) / 255.0, optical_real[3:] > 0

    def batch(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        sar, optical, _ = self.masked_batch(size)
        return sar, optical

    def masked_batch(self, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A batch and where its pixels are real (N,1,S,S): mirrored margins are context, not targets."""
        crops = [self.crop() for _ in range(size)]
        return tuple(np.stack([c[k] for c in crops]) for k in range(3))

    def shifted_batch(self, size: int, shift_max: int) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
        """``size`` crops followed by the same places shifted by (dy, dx) in [1, shift_max) px: 2 x size crops
        and the shifts, for a loss that asks both to agree where they overlap."""
        sars, opticals, shifts = [[], []], [[], []], []
        s = self.crop_size
        for _ in range(size):
            sar, optical, _ = self.crop(extra=shift_max)
            dy, dx = (int(v) for v in self.rng.integers(1, shift_max, size=2))
            for k, (y, x) in enumerate(((0, 0), (dy, dx))):
                sars[k].append(sar[:, y : y + s, x : x + s])
                opticals[k].append(optical[:, y : y + s, x : x + s])
            shifts.append((dy, dx))
        return np.stack(sars[0] + sars[1]), np.stack(opticals[0] + opticals[1]), shifts
