"""SarColorNet: a light SAR-to-RGB generator that does its work at 1/4 to 1/16 resolution.

Full-resolution convolutions are what make the pix2pix U-Net slow on a CPU. Here the input is
folded into channels (pixel unshuffle) together with fixed despeckled multi-scale statistics
(SpeckleContext), processed by ConvNeXt-style blocks (depthwise 7x7 + pointwise MLP) at 1/4,
1/8 and 1/16 resolution, and brought back to full resolution on top of a per-pixel colour
prior computed from the statistics: by pixel shuffle (head "shuffle"), or (head "detail") as a
smooth colour plus learned per-place gains on full-resolution high-pass bands of the SAR.
Normalisation is a per-pixel LayerNorm over channels: it uses no batch or spatial statistics,
so a pixel's output does not depend on which tile it was computed in.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from sarcolor.errors import check_choice

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
        # Through channels-last layer_norm: onnxruntime runs it as one fused LayerNormalization,
        # where the explicit mean/variance reductions took a fifth of the model's CPU time.
        normed = F.layer_norm(x.permute(0, 2, 3, 1), (self.weight.numel(),), self.weight, self.bias, self.eps)
        return normed.permute(0, 3, 1, 2)


def log_amplitude(x: torch.Tensor) -> torch.Tensor:
    """Amplitude in [0, 1] to about [-1, 1] on a log scale (-40 dB floor): speckle and gain become additive."""
    return torch.log10(x.clamp_min(0) + 1e-2) + 1.0


def box_mean(x: torch.Tensor, size: int) -> torch.Tensor:
    """Mean over a size x size neighbourhood (odd size), same shape, edges replicated."""
    r = size // 2
    return F.avg_pool2d(F.pad(x, (r, r, r, r), mode="replicate"), size, stride=1)


def gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = int(3 * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


class SeparableBlur(nn.Module):
    """Fixed separable blur of every channel by a 1-D kernel of odd length (along x, then y), edges replicated."""

    def __init__(self, kernel: torch.Tensor, channels: int) -> None:
        super().__init__()
        self.radius = kernel.numel() // 2
        self.register_buffer("kernel_x", kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), persistent=False)
        self.register_buffer("kernel_y", kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r, groups = self.radius, self.kernel_x.shape[0]
        x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), self.kernel_x, groups=groups)
        return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), self.kernel_y, groups=groups)


class GaussianBlur(SeparableBlur):
    """Fixed separable Gaussian blur of every channel, edges replicated."""

    def __init__(self, sigma: float, channels: int) -> None:
        super().__init__(gaussian_kernel(sigma), channels)


class SpeckleContext(nn.Module):
    """Fixed (not learned) despeckled, multi-scale statistics of the SAR at 1/4 resolution.

    Per 4x4 block: log mean amplitude and the coefficient of variation (speckle vs texture);
    then the Gaussian-weighted mean and standard deviation of the log amplitude at each sigma
    (in 1/4-resolution pixels). Learning these from raw speckle takes a CNN thousands of steps;
    given them, it starts from what a tree model on the same statistics reaches in seconds.
    """

    def __init__(self, sigmas: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(4)
        self.sigmas = tuple(sigmas)
        # For the two blurred channels (log mean and its square); constant kernels in the ONNX export.
        self.blurs = nn.ModuleList(GaussianBlur(sigma, 2) for sigma in self.sigmas)

    @property
    def channels(self) -> int:
        return 2 + 2 * len(self.sigmas)

    def forward(self, amplitude: torch.Tensor) -> torch.Tensor:
        mean = self.pool(amplitude)
        std = torch.sqrt(F.relu(self.pool(amplitude * amplitude) - mean * mean) + 1e-8)
        log_mean = log_amplitude(mean)
        features = [log_mean, std / (mean + 1e-2)]
        both = torch.cat([log_mean, log_mean * log_mean], 1)
        for blur in self.blurs:
            blurred = blur(both)
            local_mean = blurred[:, :1]
            features += [local_mean, torch.sqrt(F.relu(blurred[:, 1:] - local_mean * local_mean) + 1e-8)]
        return torch.cat(features, 1)


class LeeFilter(nn.Module):
    """Lee's adaptive speckle filter on amplitude: flat areas are averaged, edges and point targets kept.

    Works on intensity (amplitude squared) in a window x window neighbourhood, with the speckle's
    coefficient of variation from the number of looks (Sentinel-1 IW GRDH: about 4.4).
    """

    def __init__(self, window: int = 7, looks: float = 4.4) -> None:
        super().__init__()
        self.window = window
        self.noise_cv2 = 1.0 / looks

    def forward(self, amplitude: torch.Tensor) -> torch.Tensor:
        intensity = amplitude * amplitude
        mean = box_mean(intensity, self.window)
        variance = F.relu(box_mean(intensity * intensity, self.window) - mean * mean)
        signal_variance = F.relu(variance - mean * mean * self.noise_cv2) / (1.0 + self.noise_cv2)
        weight = signal_variance / (variance + 1e-8)
        return torch.sqrt(F.relu(mean + weight * (intensity - mean)) + 1e-12)


class SarDetail(nn.Module):
    """Full-resolution high-pass bands of the log amplitude: the detail a 1/4-resolution trunk cannot carry.

    fine = log amplitude minus its 3x3 mean (single-pixel targets, speckle); mid = the 3x3 mean minus
    its 4x4-block mean, upsampled (edges, roads, field borders). The generator scales each band by
    gains it predicts per place and colour, so output texture follows the SAR's own structure.
    """

    bands = 2

    def forward(self, log_amp: torch.Tensor) -> torch.Tensor:
        smooth = box_mean(log_amp, 3)
        coarse = F.interpolate(F.avg_pool2d(smooth, 4), scale_factor=4.0, mode="bilinear", align_corners=False)
        return torch.cat([log_amp - smooth, smooth - coarse], 1)


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
    heads = ("shuffle", "detail")
    despeckle_filters = ("none", "lee")

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 3,
        widths: tuple[int, int, int] = (48, 96, 192),
        depths: tuple[int, int, int] = (1, 2, 4),
        decoder_depths: tuple[int, int] = (2, 1),
        log_input: bool = True,
        stem_norm: bool = False,
        context_sigmas: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0),
        prior_width: int = 64,
        head: str = "shuffle",
        despeckle: str = "none",
    ) -> None:
        super().__init__()
        check_choice("model.head", head, self.heads)
        check_choice("model.despeckle", despeckle, self.despeckle_filters)
        # Parameter-free, so checkpoints of either kind load into the other; it runs inside the model
        # (and its ONNX export) so a tile's despeckling sees the tile's overlap.
        self.despeckle = LeeFilter() if despeckle == "lee" else nn.Identity()
        c1, c2, c3 = widths
        self.out_channels = out_channels
        self.log_input = log_input
        self.context = SpeckleContext(context_sigmas) if context_sigmas else None
        context = self.context.channels if self.context else 0
        folded = in_channels * 16 * (2 if log_input else 1) + context
        # Fixed standardisation of the folded input, measured on training data (fit_input_stats) and
        # saved with the weights: unscaled inputs slowed learning several-fold (see experiments/).
        self.register_buffer("input_mean", torch.zeros(1, folded, 1, 1))
        self.register_buffer("input_std", torch.ones(1, folded, 1, 1))
        self.prior = None
        if prior_width and self.context is not None:
            # Colour prior: a per-pixel MLP on the context statistics at 1/4 resolution. It learns in a
            # few hundred steps what the U-Net trunk needs thousands for; the trunk adds a residual.
            self.context_slice = slice(folded - context, folded)
            self.prior = nn.Sequential(
                nn.Conv2d(context, prior_width, 1), nn.GELU(),
                nn.Conv2d(prior_width, prior_width, 1), nn.GELU(),
                nn.Conv2d(prior_width, out_channels, 1),
            )
        stem = [nn.Conv2d(folded, c1, 3, padding=1, padding_mode=PADDING)]
        # A LayerNorm straight after a linear stem divides out the local brightness of a one-band
        # input, which is most of what SAR tells about the ground: off by default (see experiments/).
        if stem_norm:
            stem.append(ChannelLayerNorm(c1))
        self.stem = nn.Sequential(*stem)
        self.enc1 = _stage(c1, depths[0])
        self.down2 = nn.Sequential(ChannelLayerNorm(c1), nn.Conv2d(c1, c2, 2, stride=2))
        self.enc2 = _stage(c2, depths[1])
        self.down3 = nn.Sequential(ChannelLayerNorm(c2), nn.Conv2d(c2, c3, 2, stride=2))
        self.enc3 = _stage(c3, depths[2], dilations=(1, 2))
        self.up2 = Upsample(c3, c2)
        self.dec2 = _stage(c2, decoder_depths[0])
        self.up1 = Upsample(c2, c1)
        self.dec1 = _stage(c1, decoder_depths[1])
        self.detail = SarDetail() if head == "detail" else None
        # shuffle: 16 sub-pixel values per colour at 1/4 res; detail: one colour plus one gain per band and colour.
        head_channels = out_channels * (1 + SarDetail.bands) if self.detail else out_channels * 16
        self.head = nn.Sequential(
            ChannelLayerNorm(c1),
            nn.Conv2d(c1 + folded, head_channels, 3, padding=1, padding_mode=PADDING),
            nn.PixelShuffle(4) if self.detail is None else nn.Identity(),
        )
        self.unshuffle = nn.PixelUnshuffle(4)
        if self.prior is not None:
            nn.init.zeros_(self.head[1].weight)
            nn.init.zeros_(self.head[1].bias)

    @torch.no_grad()
    def fit_input_stats(self, amplitude: torch.Tensor) -> None:
        """Set the input standardisation from a batch of training inputs (N,1,H,W)."""
        x = self.fold(self.despeckle(amplitude))
        self.input_mean.copy_(x.mean((0, 2, 3), keepdim=True))
        self.input_std.copy_(x.std((0, 2, 3), keepdim=True).clamp_min(1e-3))

    def fold(self, amplitude: torch.Tensor) -> torch.Tensor:
        """The input at 1/4 resolution: its 4x4 blocks as channels, plus the context statistics."""
        x = torch.cat([amplitude, log_amplitude(amplitude)], 1) if self.log_input else amplitude
        folded = self.unshuffle(x)
        return torch.cat([folded, self.context(amplitude)], 1) if self.context is not None else folded

    def forward(self, amplitude: torch.Tensor) -> torch.Tensor:
        amplitude = self.despeckle(amplitude)
        x = (self.fold(amplitude) - self.input_mean) / self.input_std
        s1 = self.enc1(self.stem(x))
        s2 = self.enc2(self.down2(s1))
        s3 = self.enc3(self.down3(s2))
        d2 = self.dec2(self.up2(s3) + s2)
        d1 = self.dec1(self.up1(d2) + s1)
        # The folded input rejoins at the head so full-resolution SAR structure reaches the output.
        out = self.head[1](torch.cat([self.head[0](d1), x], 1))
        if self.detail is not None:
            return torch.sigmoid(self._detail_logits(out, amplitude, x))
        logits = self.head[2](out)
        if self.prior is not None:
            logits = logits + self._upsample(self.prior(x[:, self.context_slice]))
        return torch.sigmoid(logits)

    @staticmethod
    def _upsample(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=4.0, mode="bilinear", align_corners=False)

    def _detail_logits(self, out: torch.Tensor, amplitude: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Smooth colour (prior + head) at 1/4 res plus gain-weighted full-resolution SAR detail bands."""
        c = self.out_channels
        if self.prior is not None:
            out = torch.cat([out[:, :c] + self.prior(x[:, self.context_slice]), out[:, c:]], 1)
        out = self._upsample(out)
        bands = self.detail(log_amplitude(amplitude))
        logits = out[:, :c]
        for band in range(SarDetail.bands):
            logits = logits + out[:, c * (band + 1):c * (band + 2)] * bands[:, band:band + 1]
        return logits
