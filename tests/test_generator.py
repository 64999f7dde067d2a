"""Building blocks of SarColorNet that carry a claim of their own: the Lee speckle filter."""
import numpy as np
import pytest
import torch
from torch.nn import functional as F

from sarcolor.data import load_split
from sarcolor.errors import SarcolorError
from sarcolor.models.generator import LeeFilter, SarColorNet

from conftest import PAIRS


def real_sar() -> torch.Tensor:
    return torch.from_numpy(load_split(PAIRS, "val")[0].sar[None, None].astype(np.float32) / 255.0)


def local_cv(amplitude: torch.Tensor, size: int = 7) -> torch.Tensor:
    mean = F.avg_pool2d(amplitude, size, stride=1)
    std = (F.avg_pool2d(amplitude * amplitude, size, stride=1) - mean * mean).clamp_min(0).sqrt()
    return std / mean.clamp_min(1e-3)


def test_lee_filter_smooths_speckle_and_keeps_brightness_and_point_targets():
    sar = real_sar()
    lee = LeeFilter()
    filtered = lee(sar)
    assert filtered.shape == sar.shape
    # Flat speckled ground (the quieter half of the scene) gets much smoother.
    before, after = local_cv(sar), local_cv(filtered)
    quiet = before <= before.median()
    assert float(after[quiet].median()) < 0.6 * float(before[quiet].median())
    # Radiometry is kept: mean intensity within 2 %.
    assert float((filtered ** 2).mean()) == pytest.approx(float((sar ** 2).mean()), rel=0.02)
    # A bright point target on dark ground survives (a 7x7 mean intensity would leave it at 0.15).
    dark = torch.full((1, 1, 33, 33), 0.05)
    dark[..., 16, 16] = 1.0
    assert float(lee(dark)[..., 16, 16]) > 0.8
    flat = torch.full((1, 1, 32, 32), 0.3)
    torch.testing.assert_close(lee(flat), flat)


def test_despeckle_option_runs_inside_the_model_and_adds_no_weights():
    plain, despeckled = SarColorNet(widths=(16, 32, 64)), SarColorNet(widths=(16, 32, 64), despeckle="lee")
    assert plain.state_dict().keys() == despeckled.state_dict().keys()  # checkpoints load into either
    despeckled.load_state_dict(plain.state_dict())
    sar = real_sar()[..., :64, :64]
    with torch.no_grad():
        assert not torch.allclose(despeckled(sar), plain(sar))
    with pytest.raises(SarcolorError, match="unknown model.despeckle 'median'"):
        SarColorNet(despeckle="median")
