"""SarColorNet: a light SAR-to-RGB generator that does its work at 1/4 to 1/16 resolution.

Full-resolution convolutions are what make the pix2pix U-Net slow on a CPU. Here the input is
folded into channels (pixel unshuffle), processed by ConvNeXt-style blocks (depthwise 7x7 +
pointwise MLP) at 1/4, 1/8 and 1/16 resolution, and unfolded back with pixel shuffle.
Normalisation is a per-pixel LayerNorm over channels: it uses no batch or spatial statistics,
so a pixel's output does not depend on which tile it was computed in.
"""
from __future__ import annotations

import torch
from torch import nn

# Replicate padding: zero padding makes a dark frame around every tile that the model then colours.
PADDING = "replicate"


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of an NCHW tensor, independently at every pixel."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) * torch.rsqrt(var + self.eps)
        return x * self.weight[:, None, None] + self.bias[:, None, None]


class ConvNeXtBlock(nn.Module):
    def __init__(self, channels: int, expansion: int = 2, kernel_size: int = 7, dilation: int = 1) -> None:
        super().__init__()
        padding = dilation * (kernel_size // 2)
        self.dwconv = nn.Conv2d(
            channels, channels, kernel_size, padding=padding, dilation=dilation, groups=channels, padding_mode=PADDING
        )
        self.norm = ChannelLayerNorm(channels)
        self.pw1 = nn.Conv2d(channels, channels * expansion, 1)
        self.act = nn.GELU()
        self.pw2 = nn.Conv2d(channels * expansion, channels, 1)
        self.gamma = nn.Parameter(torch.full((channels, 1, 1), 0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw2(self.act(self.pw1(self.norm(self.dwconv(x)))))
        return x + self.gamma * y


def _stage(channels: int, depth: int, dilations: tuple[int, ...] = (1,)) -> nn.Sequential:
    return nn.Sequential(*[ConvNeXtBlock(channels, dilation=dilations[i % len(dilations)]) for i in range(depth)])


class Upsample(nn.Module):
    """1x1 conv to 4x channels, then pixel shuffle: x2 resolution, no transposed-conv checkerboard."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, out_channels * 4, 1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.proj(x))


class SarColorNet(nn.Module):
    """SAR (N,1,H,W) in [0,1] -> RGB (N,3,H,W) in [0,1]; H and W must be multiples of 16."""

    multiple = 16

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 3,
        widths: tuple[int, int, int] = (48, 96, 192),
        depths: tuple[int, int, int] = (1, 2, 4),
        decoder_depths: tuple[int, int] = (2, 1),
    ) -> None:
        super().__init__()
        c1, c2, c3 = widths
        self.stem = nn.Sequential(
            nn.PixelUnshuffle(4),
            nn.Conv2d(in_channels * 16, c1, 3, padding=1, padding_mode=PADDING),
            ChannelLayerNorm(c1),
        )
        self.enc1 = _stage(c1, depths[0])
        self.down2 = nn.Sequential(ChannelLayerNorm(c1), nn.Conv2d(c1, c2, 2, stride=2))
        self.enc2 = _stage(c2, depths[1])
        self.down3 = nn.Sequential(ChannelLayerNorm(c2), nn.Conv2d(c2, c3, 2, stride=2))
        self.enc3 = _stage(c3, depths[2], dilations=(1, 2))
        self.up2 = Upsample(c3, c2)
        self.dec2 = _stage(c2, decoder_depths[0])
        self.up1 = Upsample(c2, c1)
        self.dec1 = _stage(c1, decoder_depths[1])
        self.head = nn.Sequential(
            ChannelLayerNorm(c1),
            nn.Conv2d(c1 + in_channels * 16, out_channels * 16, 3, padding=1, padding_mode=PADDING),
            nn.PixelShuffle(4),
        )
        self.unshuffle = nn.PixelUnshuffle(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = self.enc1(self.stem(x))
        s2 = self.enc2(self.down2(s1))
        s3 = self.enc3(self.down3(s2))
        d2 = self.dec2(self.up2(s3) + s2)
        d1 = self.dec1(self.up1(d2) + s1)
        # The folded input rejoins at the head so full-resolution SAR structure reaches the output.
        return torch.sigmoid(self.head[2](self.head[1](torch.cat([self.head[0](d1), self.unshuffle(x)], 1))))
