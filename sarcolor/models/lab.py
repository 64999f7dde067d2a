"""CIELAB in torch, as skimage.color.rgb2lab computes it (sRGB, D65 white), differentiable: the model's detail
bound is measured in it (litecolor.DetailBound)."""
from __future__ import annotations

import torch

SRGB_TO_XYZ = ((0.412453, 0.357580, 0.180423), (0.212671, 0.715160, 0.072169), (0.019334, 0.119193, 0.950227))
WHITE = (0.95047, 1.0, 1.08883)
CUBE_ROOT_FROM, SLOPE = 0.008856, 7.787  # CIELAB's linear segment below (6/29)^3, rounded as skimage rounds it


def mix_channels(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A 3x3 matrix applied to every pixel's channels of x (N,3,H,W)."""
    return (matrix @ x.flatten(2)).view_as(x)  # a MatMul: onnxruntime's Einsum and 1x1 Conv take 5 times longer


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB (N,3,H,W) in [0, 1] -> L* (0..100), a*, b*."""
    linear = torch.where(rgb > 0.04045, ((rgb.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = mix_channels(rgb.new_tensor(SRGB_TO_XYZ), linear) / rgb.new_tensor(WHITE).view(1, 3, 1, 1)
    f = torch.where(xyz > CUBE_ROOT_FROM, xyz.clamp_min(CUBE_ROOT_FROM) ** (1 / 3), SLOPE * xyz + 16 / 116)
    return torch.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], 1)


def lab_jacobian(grey: float) -> torch.Tensor:
    """d(L*, a*, b*) / d(R, G, B) at the sRGB grey (grey, grey, grey): CIELAB linearised there (3x3, float64)."""
    return torch.autograd.functional.jacobian(
        lambda rgb: rgb_to_lab(rgb.view(1, 3, 1, 1)).view(3), torch.full((3,), grey, dtype=torch.float64)
    )
