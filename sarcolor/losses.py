"""Generator and discriminator objectives: L1, squared error, SSIM, colour and texture distribution distances,
VGG16 perceptual distance, adversarial (LSGAN / hinge / vanilla), feature matching."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from sarcolor.config import LossConfig
from sarcolor.errors import SarcolorError, check_choice
from sarcolor.perceptual import normalised_feature_distance

COLOUR_SPACES = ("rgb", "lab")

# sRGB (linear) to CIE XYZ under D65, rows divided by the D65 white point: what skimage.color.rgb2lab uses.
_RGB_TO_XYZ_WHITE = torch.tensor([
    [0.412453, 0.357580, 0.180423],
    [0.212671, 0.715160, 0.072169],
    [0.019334, 0.119193, 0.950227],
]) / torch.tensor([0.95047, 1.0, 1.08883])[:, None]


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """Differentiable sRGB (N,3,H,W) in [0,1] to CIELAB as skimage computes it (L in [0,100])."""
    rgb = rgb.clamp(0, 1)
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055).clamp_min(1e-6) ** 2.4, rgb / 12.92)
    xyz = torch.einsum("ij,njhw->nihw", _RGB_TO_XYZ_WHITE.to(rgb), linear)
    f = torch.where(xyz > 0.008856, xyz.clamp_min(1e-6) ** (1 / 3), 7.787 * xyz + 16 / 116)
    return torch.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], 1)


def check_loss_config(config: LossConfig) -> None:
    """Reject unknown loss choices before a run starts, as one-line user errors."""
    check_choice("loss.gan_mode", config.gan_mode, tuple(GAN_LOSSES))
    check_choice("loss.colour_space", config.colour_space, COLOUR_SPACES)


def _lsgan(logits: torch.Tensor, target_real: bool, for_discriminator: bool) -> torch.Tensor:
    return F.mse_loss(logits, torch.full_like(logits, 1.0 if target_real else 0.0))


def _vanilla(logits: torch.Tensor, target_real: bool, for_discriminator: bool) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, 1.0 if target_real else 0.0))


def _hinge(logits: torch.Tensor, target_real: bool, for_discriminator: bool) -> torch.Tensor:
    if not for_discriminator:
        return -logits.mean()
    return F.relu(1.0 - logits).mean() if target_real else F.relu(1.0 + logits).mean()


GAN_LOSSES = {"lsgan": _lsgan, "hinge": _hinge, "vanilla": _vanilla}  # loss.gan_mode


def adversarial_loss(logits: torch.Tensor, target_real: bool, mode: str, for_discriminator: bool) -> torch.Tensor:
    return GAN_LOSSES[mode](logits, target_real, for_discriminator)


def discriminator_loss(real_outputs, fake_outputs, mode: str) -> torch.Tensor:
    loss = 0.0
    for real, fake in zip(real_outputs, fake_outputs):
        loss = loss + adversarial_loss(real[-1], True, mode, True) + adversarial_loss(fake[-1], False, mode, True)
    return 0.5 * loss / len(real_outputs)


def feature_matching_loss(real_outputs, fake_outputs) -> torch.Tensor:
    """L1 between discriminator features of real and generated pairs: a perceptual loss with no pretrained net."""
    loss = 0.0
    count = 0
    for real, fake in zip(real_outputs, fake_outputs):
        for real_feat, fake_feat in zip(real[:-1], fake[:-1]):
            loss = loss + F.l1_loss(fake_feat, real_feat.detach())
            count += 1
    return loss / max(count, 1)


def ssim_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    from pytorch_msssim import ssim

    return 1.0 - ssim(fake, real, data_range=1.0, size_average=True)


def patch_distribution_loss(
    fake: torch.Tensor,
    real: torch.Tensor,
    patch: int = 1,
    centred: bool = False,
    projections: int = 32,
    samples: int = 4096,
) -> torch.Tensor:
    """Sliced Wasserstein distance between each image's predicted and real distributions of patch x patch pixel patches.

    Indifferent to where a patch goes, it penalises only what is missing or extra. With patch=1 it
    compares colours: against the squared error's pull to the mean, it keeps the palette as rich
    as the real one. With larger, centred patches (each patch's mean colour removed, so colour
    does not swamp it) it compares local contrast and edges, the texture a squared error averages
    away: a perceptual loss that needs no pretrained network.
    """
    n, c, h, w = fake.shape
    rows = torch.randint(h - patch + 1, (samples,), device=fake.device)
    cols = torch.randint(w - patch + 1, (samples,), device=fake.device)
    offsets = torch.arange(patch, device=fake.device)
    # Flat indices of every pixel of every sampled patch: (samples, patch * patch).
    index = ((rows[:, None, None] + offsets[None, :, None]) * w + cols[:, None, None] + offsets[None, None, :]).reshape(samples, -1)

    def patches(image: torch.Tensor) -> torch.Tensor:  # (n, c * patch * patch, samples)
        picked = image.reshape(n, c, -1)[..., index]  # (n, c, samples, patch * patch)
        if centred:
            picked = picked - picked.mean(-1, keepdim=True)
        return picked.permute(0, 1, 3, 2).reshape(n, -1, samples)

    fake_patches, real_patches = patches(fake), patches(real)
    directions = F.normalize(torch.randn(projections, fake_patches.shape[1], device=fake.device), dim=1)
    fake_proj = torch.einsum("pd,nds->nps", directions, fake_patches).sort(-1).values
    real_proj = torch.einsum("pd,nds->nps", directions, real_patches).sort(-1).values
    return F.l1_loss(fake_proj, real_proj)


def texture_loss(fake: torch.Tensor, real: torch.Tensor, patch: int, scales: int) -> torch.Tensor:
    """Centred patch-distribution distance at full resolution and at each of scales-1 halvings (finer to coarser texture)."""
    loss = 0.0
    for scale in range(scales):
        if scale:
            fake, real = F.avg_pool2d(fake, 2), F.avg_pool2d(real, 2)
        loss = loss + patch_distribution_loss(fake, real, patch, centred=True)
    return loss / scales


def laplace_error_nll(expected_error: torch.Tensor, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of each pixel's mean absolute colour error under a Laplace law of scale
    ``expected_error`` (N,1,H,W). The prediction is detached: this term trains the error estimate only."""
    error = (fake.detach() - real).abs().mean(1, keepdim=True)
    scale = expected_error.clamp_min(1e-3)
    return (torch.log(2 * scale) + error / scale).mean()


def vgg_loss(vgg: nn.Module, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """The VGG16 perceptual distance of sarcolor.perceptual (the evaluate metric's), as a loss."""
    with torch.no_grad():
        real_features = vgg(real)
    return normalised_feature_distance(vgg(fake), real_features).mean()


def generator_loss(
    config: LossConfig, fake: torch.Tensor, real: torch.Tensor, fake_outputs=None, real_outputs=None, vgg: nn.Module | None = None
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the configured terms; also returns each term's value for the loss log.

    ``fake`` is the generator's output: RGB, and a fourth channel (expected error) for a model with an error head.
    ``vgg`` (sarcolor.perceptual.load_vgg16()) is needed for ``config.vgg``."""
    expected_error, fake = (fake[:, 3:], fake[:, :3]) if fake.shape[1] > 3 else (None, fake)
    # The per-pixel terms in the configured space; the distribution terms stay in RGB, as the discriminator does.
    fake_pixels, real_pixels = (rgb_to_lab(fake) / 100, rgb_to_lab(real) / 100) if config.colour_space == "lab" else (fake, real)
    terms: dict[str, torch.Tensor] = {"l1": F.l1_loss(fake_pixels, real_pixels)}
    weights = {"l1": config.l1}
    if config.mse:
        terms["mse"] = F.mse_loss(fake_pixels, real_pixels)
        weights["mse"] = config.mse
    if config.ssim:
        terms["ssim"] = ssim_loss(fake, real)
        weights["ssim"] = config.ssim
    if config.colour_swd:
        terms["swd"] = patch_distribution_loss(fake, real, patch=1)
        weights["swd"] = config.colour_swd
    if config.texture_swd:
        terms["texture"] = texture_loss(fake, real, config.texture_patch, config.texture_scales)
        weights["texture"] = config.texture_swd
    if config.vgg:
        if vgg is None:
            raise SarcolorError("loss.vgg needs the VGG16 network (sarcolor.perceptual.load_vgg16)")
        terms["vgg"] = vgg_loss(vgg, fake, real)
        weights["vgg"] = config.vgg
    if config.error_nll:
        if expected_error is None:
            raise SarcolorError("loss.error_nll needs a model with an error channel (model.error_head: true)")
        terms["error_nll"] = laplace_error_nll(expected_error, fake, real)
        weights["error_nll"] = config.error_nll
    if fake_outputs is not None:
        terms["adv"] = sum(adversarial_loss(o[-1], True, config.gan_mode, False) for o in fake_outputs) / len(fake_outputs)
        weights["adv"] = config.adversarial
        if config.feature_matching:
            terms["fm"] = feature_matching_loss(real_outputs, fake_outputs)
            weights["fm"] = config.feature_matching
    total = sum(weights[k] * v for k, v in terms.items())
    return total, {k: float(v.detach()) for k, v in terms.items()}
