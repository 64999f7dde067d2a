"""Generator and discriminator objectives: L1, SSIM, adversarial (LSGAN / hinge / vanilla), feature matching."""
from __future__ import annotations

import torch
from torch.nn import functional as F

from sarcolor.config import LossConfig

GAN_MODES = ("lsgan", "hinge", "vanilla")


def adversarial_loss(logits: torch.Tensor, target_real: bool, mode: str, for_discriminator: bool) -> torch.Tensor:
    if mode == "lsgan":
        return F.mse_loss(logits, torch.full_like(logits, 1.0 if target_real else 0.0))
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, 1.0 if target_real else 0.0))
    if mode == "hinge":
        if not for_discriminator:
            return -logits.mean()
        return F.relu(1.0 - logits).mean() if target_real else F.relu(1.0 + logits).mean()
    raise ValueError(f"unknown gan_mode {mode!r}; choose one of {', '.join(GAN_MODES)}")


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


def colour_distribution_loss(fake: torch.Tensor, real: torch.Tensor, projections: int = 32, samples: int = 4096) -> torch.Tensor:
    """Sliced Wasserstein distance between each image's predicted and real RGB pixel distributions.

    Indifferent to where a colour goes, it penalises only missing or extra colours: against the
    squared error's pull to the mean, it keeps the palette as rich as the real one.
    """
    n, c = fake.shape[:2]
    fake, real = fake.reshape(n, c, -1), real.reshape(n, c, -1)
    pick = torch.randint(fake.shape[-1], (samples,), device=fake.device)
    directions = F.normalize(torch.randn(projections, c, device=fake.device), dim=1)
    fake_proj = torch.einsum("pc,ncs->nps", directions, fake[..., pick]).sort(-1).values
    real_proj = torch.einsum("pc,ncs->nps", directions, real[..., pick]).sort(-1).values
    return F.l1_loss(fake_proj, real_proj)


def generator_loss(
    config: LossConfig, fake: torch.Tensor, real: torch.Tensor, fake_outputs=None, real_outputs=None
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the configured terms; also returns each term's value for the loss log."""
    terms: dict[str, torch.Tensor] = {"l1": F.l1_loss(fake, real)}
    weights = {"l1": config.l1}
    if config.mse:
        terms["mse"] = F.mse_loss(fake, real)
        weights["mse"] = config.mse
    if config.ssim:
        terms["ssim"] = ssim_loss(fake, real)
        weights["ssim"] = config.ssim
    if config.colour_swd:
        terms["swd"] = colour_distribution_loss(fake, real)
        weights["swd"] = config.colour_swd
    if fake_outputs is not None:
        terms["adv"] = sum(adversarial_loss(o[-1], True, config.gan_mode, False) for o in fake_outputs) / len(fake_outputs)
        weights["adv"] = config.adversarial
        if config.feature_matching:
            terms["fm"] = feature_matching_loss(real_outputs, fake_outputs)
            weights["fm"] = config.feature_matching
    total = sum(weights[k] * v for k, v in terms.items())
    return total, {k: float(v.detach()) for k, v in terms.items()}
