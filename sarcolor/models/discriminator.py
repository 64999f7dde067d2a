"""PatchGAN discriminator (pix2pix's NLayerDiscriminator), optionally at several scales."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class PatchDiscriminator(nn.Module):
    """Classifies overlapping patches of (SAR, RGB) pairs; returns every layer's features."""

    def __init__(self, in_channels: int = 4, base_channels: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(in_channels, base_channels, 4, 2, 1), nn.LeakyReLU(0.2))]
        channels = base_channels
        for i in range(1, n_layers + 1):
            out = base_channels * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            layers.append(
                nn.Sequential(
                    nn.Conv2d(channels, out, 4, stride, 1),
                    nn.InstanceNorm2d(out, affine=True),
                    nn.LeakyReLU(0.2),
                )
            )
            channels = out
        layers.append(nn.Conv2d(channels, 1, 4, 1, 1))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return features


class MultiScaleDiscriminator(nn.Module):
    """One PatchGAN per scale (full, 1/2, 1/4 ...), as in pix2pixHD; the list holds each one's features."""

    def __init__(self, in_channels: int = 4, base_channels: int = 64, n_layers: int = 3, scales: int = 1) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            PatchDiscriminator(in_channels, base_channels, n_layers) for _ in range(scales)
        )

    def forward(self, sar: torch.Tensor, rgb: torch.Tensor) -> list[list[torch.Tensor]]:
        x = torch.cat([sar, rgb], 1)
        outputs = []
        for i, disc in enumerate(self.discriminators):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(disc(x))
        return outputs
