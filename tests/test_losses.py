import numpy as np
import pytest
import torch
from torch.nn import functional as F

from sarcolor.data import load_split
from sarcolor.config import LossConfig
from sarcolor.errors import SarcolorError
from sarcolor.losses import GAN_LOSSES, adversarial_loss, check_loss_config, discriminator_loss, generator_loss, patch_distribution_loss, rgb_to_lab, texture_loss

from conftest import PAIRS


def real_optical(size: int = 64) -> torch.Tensor:
    pair = load_split(PAIRS, "val")[0]
    return torch.from_numpy(pair.optical[None, :, :size, :size].astype(np.float32) / 255.0)


def pixel_shuffled(image: torch.Tensor) -> torch.Tensor:
    """Same pixels, random places: the same colour distribution with no texture left."""
    n, c, h, w = image.shape
    return image.reshape(n, c, -1)[..., torch.randperm(h * w)].reshape(image.shape)


def test_colour_distribution_loss_sees_palettes_not_places():
    torch.manual_seed(0)
    real = real_optical()
    mean = real.mean((2, 3), keepdim=True).expand_as(real)
    assert float(patch_distribution_loss(real, real)) == 0.0
    assert float(patch_distribution_loss(pixel_shuffled(real), real, samples=64 * 64)) < 0.01  # same colours elsewhere
    assert float(patch_distribution_loss(mean, real)) > 0.05  # one flat colour misses the palette
    assert float(patch_distribution_loss(real.flip(1), real)) > 0.02  # RGB -> BGR changes the colours


@pytest.mark.parametrize("scales", [1, 2])
def test_texture_loss_sees_detail_not_places(scales):
    """Blur (lost detail) and shuffled pixels (noise instead of structure) cost more than moved structure."""
    torch.manual_seed(0)
    real = real_optical(128)
    moved = torch.roll(real, shifts=(1, 1), dims=(2, 3))  # identical texture, every pixel misplaced
    blurred = F.avg_pool2d(F.pad(real, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    moved_loss = float(texture_loss(moved, real, patch=5, scales=scales))
    assert float(texture_loss(blurred, real, patch=5, scales=scales)) > 3 * moved_loss
    assert float(texture_loss(pixel_shuffled(real), real, patch=5, scales=scales)) > 3 * moved_loss
    assert float(F.mse_loss(moved, real)) > float(F.mse_loss(blurred, real))  # squared error prefers the blur


def test_lab_conversion_matches_the_metric_and_drives_the_lab_loss():
    """rgb_to_lab is skimage's rgb2lab (what ΔE00 is measured in), and differentiable for loss.colour_space=lab."""
    from skimage.color import rgb2lab

    real = real_optical()
    expected = rgb2lab(real[0].permute(1, 2, 0).double().numpy())
    np.testing.assert_allclose(rgb_to_lab(real)[0].permute(1, 2, 0).numpy(), expected, atol=0.02)
    fake = (real.flip(1) * 0.8 + 0.1).requires_grad_()
    lab_total, lab_terms = generator_loss(LossConfig(l1=0.0, mse=1.0, colour_space="lab"), fake, real)
    rgb_total, rgb_terms = generator_loss(LossConfig(l1=0.0, mse=1.0), fake, real)
    lab_mse = float(((rgb_to_lab(fake.detach()) - rgb_to_lab(real)) / 100).pow(2).mean())
    assert lab_terms["mse"] == pytest.approx(lab_mse, rel=1e-5) and lab_terms["mse"] != pytest.approx(rgb_terms["mse"], rel=0.1)
    lab_total.backward()
    assert torch.isfinite(fake.grad).all() and float(fake.grad.abs().sum()) > 0
    with pytest.raises(SarcolorError, match="unknown loss.colour_space 'hsv'"):
        check_loss_config(LossConfig(colour_space="hsv"))


@pytest.mark.parametrize("mode", sorted(GAN_LOSSES))
def test_each_gan_mode_rewards_a_discriminator_that_tells_real_from_fake_and_a_generator_that_fools_it(mode):
    confident, fooled = torch.full((2, 1, 8, 8), 3.0), torch.full((2, 1, 8, 8), -3.0)
    # Discriminator: high logits on real and low on fake cost less than the reverse.
    right = discriminator_loss([[confident]], [[fooled]], mode)
    wrong = discriminator_loss([[fooled]], [[confident]], mode)
    assert right < wrong
    # Generator: its loss falls as the discriminator's logits on its output rise, with a gradient to follow.
    logits = torch.zeros(2, 1, 8, 8, requires_grad=True)
    adversarial_loss(logits, True, mode, False).backward()
    assert (logits.grad < 0).all()
    assert adversarial_loss(confident, True, mode, False) < adversarial_loss(fooled, True, mode, False)


def test_an_unknown_gan_mode_is_a_user_error():
    with pytest.raises(SarcolorError, match="unknown loss.gan_mode 'wgan'; choose one of lsgan, hinge, vanilla"):
        check_loss_config(LossConfig(gan_mode="wgan"))
