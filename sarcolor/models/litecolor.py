"""LiteColorNet: colour from frozen ImageNet features of the SAR, detail from the SAR itself.

- Colour: EfficientNet-Lite0 (pretrained, frozen) reads the SAR at half resolution (a 2x2
  multi-look: 20 m pixels, less speckle, a quarter of the cost) and gives features at 80 to 640 m;
  with the fixed despeckled statistics of SpeckleContext they feed a small trainable head at 1/4
  resolution that predicts a colour per place (with ``head_pool`` 2, as in the bundled model, the head runs
  at 1/8 on 2x2-averaged inputs and its outputs are upsampled to 1/4 before the fixed blur).
- Detail: per-place gains on two full-resolution high-pass bands of the log amplitude, added to the
  colour's logits and scaled by a detail strength (an input: 0 gives the smooth colour alone, 1 the
  trained amount). The bands are box-filter differences at every pixel, so the detail added at a
  place does not depend on where a tile or crop starts.

- Saturation (``chroma_gain``, fixed): the colours are pushed away from each pixel's grey, undoing
  part of the desaturation squared-error training brings.
- Detail bound (``DetailBound``, fixed): the detail may move a pixel's colour at most 8 in CIELAB a*b* and
  25 in L* from the smooth colour, so on inputs unlike the training scenes it stays structure, not colour.
- Detail smoothing (``detail_smoothing``, fixed): a further blur of the gains alone. The gains then vary
  over hundreds of metres, not tens: less texture in the wrong places, and texture that depends less on
  where a crop or tile starts.
- Confidence (optional, ``error_head``): a fourth output channel, the expected mean absolute colour
  error per pixel (a Laplace scale, in [0, 1] units of the RGB output), from the same features.

Trained in stages (configs/smooth.yaml, configs/default.yaml, configs/confidence.yaml): squared
error for the colour path; then only the gain head, with texture and colour distribution terms
(detail 0 is therefore exactly the first stage's accurate, smooth model); then only the error head,
on the Laplace likelihood of the errors the finished model makes.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from sarcolor.models.encoder import TAP_BLOCKS, TAP_CHANNELS, Lite0Encoder
from sarcolor.models.generator import (
    PADDING, ConvNeXtBlock, GaussianBlur, SeparableBlur, SpeckleContext, box_mean, log_amplitude,
)
from sarcolor.models.lab import lab_jacobian, mix_channels


class SarHighPass(nn.Module):
    """fine = log amplitude minus its 3x3 mean (point targets, speckle); mid = 3x3 mean minus 9x9 mean (edges, roads)."""

    bands = 2

    def forward(self, log_amp: torch.Tensor) -> torch.Tensor:
        small = box_mean(log_amp, 3)
        return torch.cat([log_amp - small, small - box_mean(log_amp, 9)], 1)


class DetailBound(nn.Module):
    """Cuts the detail's move from the smooth colour back to at most ``max_ab`` in CIELAB a*b* and ``max_lightness``
    in L*: detail is structure, with only a trace of colour (fixed, not learned; issue 25).

    The per-colour gains were trained on Californian and Texan scenes; on inputs unlike them (8-bit JPEG with
    pixels at 0) bands and gains grow tenfold and, unbounded, paint saturated violet-blue. The move is measured
    in CIELAB linearised at a dark grey (a fixed 3x3 matrix on sRGB: no powers, cheap at full resolution).
    CIELAB's slope grows toward black, so a dark grey keeps the cut on the safe side for the dark pixels
    where the detail goes furthest (experiments/false_colour.py). A pixel within the bounds keeps its
    detail exactly, so detail 0 is exactly the smooth colour.
    """

    def __init__(self, max_ab: float = 8.0, max_lightness: float = 25.0, grey: float = 0.35) -> None:
        super().__init__()
        self.max_ab, self.max_lightness = max_ab, max_lightness
        to_lab = lab_jacobian(grey)
        # Not in the state dict: checkpoints saved before the bound existed load unchanged.
        self.register_buffer("to_lab", to_lab.float(), persistent=False)
        self.register_buffer("from_lab", torch.linalg.inv(to_lab).float(), persistent=False)

    def forward(self, detailed: torch.Tensor, smooth: torch.Tensor) -> torch.Tensor:
        move = mix_channels(self.to_lab, detailed - smooth)
        # The square root of the clamped square: the length's gradient at a zero move would be infinite.
        ab_length = move[:, 1:].square().sum(1, keepdim=True).clamp_min(self.max_ab**2).sqrt()
        bounded = torch.cat([
            move[:, :1].clamp(-self.max_lightness, self.max_lightness),
            move[:, 1:] * (self.max_ab / ab_length),
        ], 1)
        return (detailed + mix_channels(self.from_lab, bounded - move)).clamp(0.0, 1.0)


class LiteColorNet(nn.Module):
    """SAR (N,1,H,W) in [0,1] (+ detail strength (1,)) -> RGB (N,3,H,W) in [0,1]; H and W multiples of ``multiple``."""

    def __init__(
        self, lateral_width: int = 32, width: int = 64, depth: int = 2, taps: int = 3, smoothing: float = 2.0,
        pretrained: bool = True, error_head: bool = False, chroma_gain: float = 1.0, detail_smoothing: float = 0.0,
        head_pool: int = 1,
    ) -> None:
        super().__init__()
        if not 1 <= taps <= len(TAP_BLOCKS):
            raise ValueError(f"taps must be 1 to {len(TAP_BLOCKS)}, got {taps}")
        if head_pool not in (1, 2):
            raise ValueError(f"head_pool must be 1 (the head at 1/4 resolution) or 2 (at 1/8), got {head_pool}")
        self.head_pool = head_pool
        # The deepest tap (stride 64 in SAR pixels) reaches so far that a crop's edge changes colours
        # hundreds of pixels inside it; three taps keep the same place the same colour wherever a scene
        # is cut (experiments/README.md).
        self.encoder = Lite0Encoder(taps=taps)
        if pretrained:
            self.encoder.load_pretrained()
        self.multiple = 4 * 2**taps  # the deepest tap's stride in SAR pixels (2 x its stride at half resolution)
        self.context = SpeckleContext()
        tap_channels = TAP_CHANNELS[:taps]
        features = self.context.channels + taps * lateral_width
        # Fixed standardisation of the context statistics and of each encoder tap, measured on training
        # crops (fit_input_stats) and saved with the weights.
        self.register_buffer("context_mean", torch.zeros(1, self.context.channels, 1, 1))
        self.register_buffer("context_std", torch.ones(1, self.context.channels, 1, 1))
        for i, channels in enumerate(tap_channels):
            self.register_buffer(f"tap_mean{i}", torch.zeros(1, channels, 1, 1))
            self.register_buffer(f"tap_std{i}", torch.ones(1, channels, 1, 1))
        self.laterals = nn.ModuleList(nn.Conv2d(c, lateral_width, 1) for c in tap_channels)
        self.mix = nn.Sequential(nn.Conv2d(features, width, 1), *[ConvNeXtBlock(width) for _ in range(depth)], nn.GELU())
        self.colour_head = nn.Conv2d(width, 3, 3, padding=1, padding_mode=PADDING)
        self.high_pass = SarHighPass()
        self.gain_head = nn.Conv2d(width, 3 * SarHighPass.bands, 3, padding=1, padding_mode=PADDING)
        nn.init.zeros_(self.gain_head.weight)
        nn.init.zeros_(self.gain_head.bias)
        self.chroma_gain = chroma_gain
        self.error_head = nn.Conv2d(width, 1, 3, padding=1, padding_mode=PADDING) if error_head else None
        if error_head:  # starts at an expected error of about 0.1 (25 DN) everywhere
            nn.init.zeros_(self.error_head.weight)
            nn.init.constant_(self.error_head.bias, -2.3)
        # Fixed low-pass of the heads' outputs (sigma in 1/4-resolution pixels): colour is a field at
        # tens of metres, and the blur removes the encoder's stride lattice, which otherwise shifts
        # colours with the phase of a crop's origin.
        heads = 3 * (1 + SarHighPass.bands) + (1 if error_head else 0)
        self.smoothing = GaussianBlur(smoothing, heads) if smoothing > 0 else nn.Identity()
        gains = 3 * SarHighPass.bands
        self.gain_smoothing = GaussianBlur(detail_smoothing, gains) if detail_smoothing > 0 else nn.Identity()
        self.detail_bound = DetailBound()
        # A lateral layer already at 1/8 resolution, upsampled to 1/4 and 2x2-averaged back (upsampled_and_pooled)
        self.half_step = SeparableBlur(torch.tensor([1.0, 6.0, 1.0]) / 8.0, lateral_width)

    def _raw_taps(self, amplitude: torch.Tensor) -> list[torch.Tensor]:
        """Encoder features of the 2x2-multi-looked SAR."""
        return self.encoder(F.avg_pool2d(amplitude, 2))

    def _taps(self, amplitude: torch.Tensor) -> list[torch.Tensor]:
        taps = self._raw_taps(amplitude)
        return [(t - getattr(self, f"tap_mean{i}")) / getattr(self, f"tap_std{i}") for i, t in enumerate(taps)]

    @torch.no_grad()
    def fit_input_stats(self, amplitude: torch.Tensor) -> None:
        """Set the standardisation of the context statistics and encoder taps from training inputs (N,1,H,W)."""
        context = self.context(amplitude)
        self.context_mean.copy_(context.mean((0, 2, 3), keepdim=True))
        self.context_std.copy_(context.std((0, 2, 3), keepdim=True).clamp_min(1e-3))
        for i, tap in enumerate(self._raw_taps(amplitude)):
            getattr(self, f"tap_mean{i}").copy_(tap.mean((0, 2, 3), keepdim=True))
            getattr(self, f"tap_std{i}").copy_(tap.std((0, 2, 3), keepdim=True).clamp_min(1e-3))

    def context_features(self, amplitude: torch.Tensor) -> torch.Tensor:
        """The speckle statistics at 1/4 resolution, standardised."""
        return (self.context(amplitude) - self.context_mean) / self.context_std

    def head_inputs(self, amplitude: torch.Tensor, pool: int = 1) -> torch.Tensor:
        """What ``mix`` reads: the standardised speckle statistics and the upsampled lateral layers, at 1/4
        resolution, ``pool`` x ``pool``-averaged (``pool`` 2: at 1/8, the head's resolution with ``head_pool`` 2)."""
        context = self.context_features(amplitude)
        if pool > 1:
            context = F.avg_pool2d(context, pool)
        size = context.shape[-2:]
        laterals = [
            upsampled_and_pooled(lateral(tap), size, pool, self.half_step)
            for lateral, tap in zip(self.laterals, self._taps(amplitude))
        ]
        return torch.cat([context, *laterals], 1)

    def features(self, amplitude: torch.Tensor) -> torch.Tensor:
        """The head's features, at 1/4 resolution (at 1/8 with ``head_pool`` 2)."""
        return self.mix(self.head_inputs(amplitude, self.head_pool))

    def pooled(self, head_inputs: torch.Tensor) -> torch.Tensor:
        """The head's inputs at the head's resolution, from ``head_inputs`` at 1/4."""
        return F.avg_pool2d(head_inputs, self.head_pool) if self.head_pool > 1 else head_inputs

    def forward(self, amplitude: torch.Tensor, detail: torch.Tensor | None = None) -> torch.Tensor:
        """RGB (N,3,H,W), and with an error head a fourth channel: the expected mean absolute colour error."""
        logits, gains, error = self.heads(amplitude)
        strength = 1.0 if detail is None else detail.reshape(1, 1, 1, 1)
        texture = self.texture(gains, self.high_pass(log_amplitude(amplitude)))
        detailed = self.saturate(torch.sigmoid(logits + strength * texture))
        rgb = self.detail_bound(detailed, self.saturate(torch.sigmoid(logits)))
        if error is None:
            return rgb
        return torch.cat([rgb, error], 1)

    def heads(self, amplitude: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], torch.Tensor | None]:
        """At full resolution: the colour logits (N,3), the detail gains (one (N,3) per high-pass band) and the
        expected error (N,1; None without an error head). The error's softplus is taken at 1/4 resolution, before the
        upsampling: the same map to within the upsampling's rounding, at a sixteenth of the cost."""
        logits, gains, error = self.blurred_heads(self.features(amplitude))
        # Upsampled one by one: one upsampling of their concatenation is as fast, but splitting it at full
        # resolution is a copy of every channel.
        error = _upsample4(F.softplus(error)) if error is not None else None
        gains = tuple(_upsample4(gains[:, 3 * b : 3 * (b + 1)]) for b in range(SarHighPass.bands))
        return _upsample4(logits), gains, error

    def blurred_heads(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """At 1/4 resolution, after the fixed blurs: the colour logits, the detail gains and the error head's raw
        output (None without an error head)."""
        heads = self.smoothing(self.to_quarter(self._head_convs(features)))
        gain_end = 3 * (1 + SarHighPass.bands)
        error = heads[:, gain_end : gain_end + 1] if self.error_head is not None else None
        return heads[:, :3], self.gain_smoothing(heads[:, 3:gain_end]), error

    def to_quarter(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` at the head's resolution, at 1/4 resolution (upsampled when the head runs at 1/8)."""
        if self.head_pool == 1:
            return x
        return F.interpolate(x, scale_factor=float(self.head_pool), mode="bilinear", align_corners=False)

    def _head_convs(self, features: torch.Tensor) -> torch.Tensor:
        """The colour, gain and error heads as one convolution (their kernels stacked): one padding and one
        pass over the features instead of three."""
        convs = [self.colour_head, self.gain_head] + ([self.error_head] if self.error_head is not None else [])
        weight = torch.cat([conv.weight for conv in convs])
        bias = torch.cat([conv.bias for conv in convs])
        return F.conv2d(F.pad(features, (1, 1, 1, 1), mode=PADDING), weight, bias)

    @staticmethod
    def texture(gains: tuple[torch.Tensor, ...], bands: torch.Tensor) -> torch.Tensor:
        """The detail in logits (N,3,H,W): each band's colour gains (N,3) times that high-pass band of the SAR."""
        return sum(gain * bands[:, b : b + 1] for b, gain in enumerate(gains))

    def saturate(self, rgb: torch.Tensor) -> torch.Tensor:
        """Colours pushed away from each pixel's grey by ``chroma_gain``."""
        if self.chroma_gain == 1.0:
            return rgb
        # grey + gain * (rgb - grey) as one 3x3 matrix: one pass over the pixels instead of four
        mix = torch.full((3, 3), (1.0 - self.chroma_gain) / 3.0) + self.chroma_gain * torch.eye(3)
        return mix_channels(mix.to(rgb), rgb).clamp(0.0, 1.0)


def _upsample4(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=4.0, mode="bilinear", align_corners=False)


def upsampled_and_pooled(x: torch.Tensor, size: torch.Size, pool: int, half_step: nn.Module) -> torch.Tensor:
    """``x`` bilinearly upsampled to ``size`` times ``pool``, then ``pool`` x ``pool``-averaged to ``size``, without
    building the larger map when ``pool`` is 2.

    Upsampled by 2k, the two pixels averaged into one lie in the same interpolation cell when k is even, so
    their mean is the bilinear upsampling by k straight to ``size``, and at the edges both clamp alike. When k
    is 1 (``x`` already at ``size``), the mean of each pair is ``half_step``, a [1, 6, 1] / 8 blur with edges
    replicated. Both equal the long way round but for float rounding."""
    factor = size[-1] // x.shape[-1]
    if pool == 1 or (pool == 2 and factor % 2 == 0):
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    if pool == 2 and factor == 1:
        return half_step(x)
    upsampled = F.interpolate(x, size=[side * pool for side in size], mode="bilinear", align_corners=False)
    return F.avg_pool2d(upsampled, pool)
