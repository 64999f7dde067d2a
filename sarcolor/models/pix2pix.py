"""The reference pix2pix generator (U-Net-256, ngf=64, BatchNorm, dropout: ~54M parameters).

Kept as the baseline every SAR-colourisation seed repo uses: benchmarks time it beside ours.
"""
from __future__ import annotations

import torch
from torch import nn


class UNetBlock(nn.Module):
    def __init__(self, outer: int, inner: int, submodule: nn.Module | None = None, outermost: bool = False,
                 innermost: bool = False, dropout: bool = False, in_channels: int | None = None, out_channels: int | None = None):
        super().__init__()
        self.outermost = outermost
        in_channels = in_channels or outer
        down = [nn.Conv2d(in_channels, inner, 4, 2, 1, bias=False)]
        if outermost:
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner * 2, out_channels or outer, 4, 2, 1), nn.Tanh()]
            layers = down + [submodule] + up
        elif innermost:
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=False), nn.BatchNorm2d(outer)]
            layers = [nn.LeakyReLU(0.2, True)] + down + up
        else:
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=False), nn.BatchNorm2d(outer)]
            layers = [nn.LeakyReLU(0.2, True)] + down + [nn.BatchNorm2d(inner), submodule] + up
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class Pix2PixUNet(nn.Module):
    """U-Net-256 as in pix2pix; maps SAR in [0,1] to RGB in [0,1] (tanh rescaled). Input sides: multiples of 256."""

    multiple = 256

    def __init__(self, in_channels: int = 1, out_channels: int = 3, ngf: int = 64) -> None:
        super().__init__()
        block = UNetBlock(ngf * 8, ngf * 8, innermost=True)
        for _ in range(3):
            block = UNetBlock(ngf * 8, ngf * 8, block, dropout=True)
        block = UNetBlock(ngf * 4, ngf * 8, block)
        block = UNetBlock(ngf * 2, ngf * 4, block)
        block = UNetBlock(ngf, ngf * 2, block)
        self.model = UNetBlock(ngf, ngf, block, outermost=True, in_channels=in_channels, out_channels=out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.model(x * 2 - 1) + 1) / 2
