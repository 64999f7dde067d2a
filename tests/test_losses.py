import numpy as np
import torch

from sarcolor.data import load_split
from sarcolor.losses import colour_distribution_loss

from conftest import PAIRS


def real_optical() -> torch.Tensor:
    pair = load_split(PAIRS, "val")[0]
    return torch.from_numpy(pair.opt[None, :, :64, :64].astype(np.float32) / 255.0)


def test_colour_distribution_loss_sees_palettes_not_places():
    torch.manual_seed(0)
    real = real_optical()
    shuffled = real.reshape(1, 3, -1)[..., torch.randperm(64 * 64)].reshape(real.shape)
    mean = real.mean((2, 3), keepdim=True).expand_as(real)
    assert float(colour_distribution_loss(real, real)) == 0.0
    assert float(colour_distribution_loss(shuffled, real, samples=64 * 64)) < 0.01  # same colours elsewhere
    assert float(colour_distribution_loss(mean, real)) > 0.05  # one flat colour misses the palette
    assert float(colour_distribution_loss(real.flip(1), real)) > 0.02  # RGB -> BGR changes the colours
