"""LiteColorNet: the pretrained encoder, shift-invariant detail bands, the detail strength, and two-stage training."""
import numpy as np
import pytest
import rasterio
import torch
from torch.nn import functional as F

from sarcolor.config import load_config
from sarcolor.data import load_split
from sarcolor.models import LiteColorNet
from sarcolor.models.encoder import Lite0Encoder
from sarcolor.metrics import false_colour
from sarcolor.models.lab import rgb_to_lab
from sarcolor.models.litecolor import DetailBound, SarHighPass, upsampled_and_pooled
from sarcolor.train import Trainer

from conftest import FIELDS, PAIRS


def real_sar(size: int = 256) -> torch.Tensor:
    return torch.from_numpy(load_split(PAIRS, "val")[0].sar[None, None, :size, :size].astype(np.float32) / 255.0)


def test_grey_encoder_equals_the_rgb_encoder_on_a_grey_image():
    """The one-band stem is the ImageNet RGB stem summed: a grey SAR is read as R = G = B."""
    grey, rgb = Lite0Encoder(in_channels=1), Lite0Encoder(in_channels=3)
    grey.load_pretrained()
    rgb.load_pretrained()
    sar = real_sar(128)
    with torch.no_grad():
        for a, b in zip(grey(sar), rgb(sar.repeat(1, 3, 1, 1))):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert [t.shape[1] for t in grey(sar)] == [24, 40, 112, 320]
    assert not any(p.requires_grad for p in grey.parameters())
    grey.train()
    assert not grey.training  # frozen: ImageNet batch-norm statistics whatever the enclosing model's mode


def test_encoder_blocks_replicate_edges_before_their_expansion_as_after_it():
    """Issue 23: an MBConv block pads its input, not its six-times-wider expansion, for the depthwise convolution;
    the replicated edge pixels must come out as the long way round gives them (strides 1 and 2, kernels 3 and 5)."""
    encoder = Lite0Encoder()
    encoder.load_pretrained()
    torch.manual_seed(0)
    for index in (1, 2, 3, 4):
        block = encoder._blocks[index]
        x = torch.randn(2, block._expand_conv.in_channels, 36, 28)
        depthwise = block._depthwise_conv
        kernel, stride = depthwise.kernel_size[0], depthwise.stride[0]
        before, after = (kernel - stride) // 2, (kernel - stride) - (kernel - stride) // 2  # TensorFlow's "same"
        with torch.no_grad():
            expanded = F.pad(F.relu6(block._bn0(block._expand_conv(x))), (before, after, before, after), mode="replicate")
            y = F.relu6(block._bn1(F.conv2d(expanded, depthwise.weight, None, stride, 0, 1, depthwise.groups)))
            y = block._bn2(block._project_conv(y))
            torch.testing.assert_close(block(x), x + y if block.residual else y, rtol=0, atol=1e-5)


def test_pretrained_weights_give_imagenet_like_features_not_random_ones():
    """Pretrained features of real SAR differ from a freshly initialised encoder's, and are not degenerate."""
    pretrained, fresh = Lite0Encoder(), Lite0Encoder()
    pretrained.load_pretrained()
    sar = real_sar(128)
    with torch.no_grad():
        deep, deep_fresh = pretrained(sar)[-1], fresh(sar)[-1]
    assert not torch.allclose(deep, deep_fresh)
    assert float(deep.std((0, 2, 3)).gt(1e-3).float().mean()) > 0.5  # most channels respond to the scene


def test_detail_bands_move_with_the_image():
    sar = real_sar()
    bands = SarHighPass()(torch.log10(sar + 1e-2))
    shifted = SarHighPass()(torch.log10(torch.roll(sar, (3, 5), (2, 3)) + 1e-2))
    inner = (..., slice(16, -16), slice(16, -16))
    torch.testing.assert_close(torch.roll(bands, (3, 5), (2, 3))[inner], shifted[inner])


def test_detail_strength_scales_only_the_texture():
    torch.manual_seed(0)
    net = LiteColorNet(pretrained=False).eval()
    torch.nn.init.normal_(net.gain_head.weight, std=0.5)
    sar = real_sar(128)
    with torch.no_grad():
        smooth, half, full = (net(sar, torch.tensor([d])) for d in (0.0, 0.5, 1.0))
        torch.testing.assert_close(net(sar), full)
        # At strength 0 the gain head has no say at all.
        net.gain_head.weight.add_(1.0)
        torch.testing.assert_close(net(sar, torch.tensor([0.0])), smooth)
    assert float((half - torch.minimum(smooth, full)).min()) > -1e-6 and float((torch.maximum(smooth, full) - half).min()) > -1e-6
    detail = lambda x: float((x[..., 1:, :] - x[..., :-1, :]).abs().mean())  # noqa: E731
    assert detail(smooth) < detail(half) < detail(full)


def test_heads_run_as_one_convolution_in_their_own_order():
    """Issue 23: the colour, gain and error heads are one stacked convolution; each head's channels must be what
    that head alone gives (a swapped order would put gains into colours), and the expected error stays positive."""
    torch.manual_seed(0)
    net = LiteColorNet(pretrained=False, error_head=True).eval()
    for head in (net.colour_head, net.gain_head, net.error_head):
        torch.nn.init.normal_(head.weight, std=0.1)
        torch.nn.init.normal_(head.bias, std=0.5)
    features = torch.randn(2, net.colour_head.in_channels, 24, 20)
    with torch.no_grad():
        separate = torch.cat([net.colour_head(features), net.gain_head(features), net.error_head(features)], 1)
        torch.testing.assert_close(net._head_convs(features), separate)
        out = net(real_sar(128))
    assert out.shape[1] == 4 and float(out[:, 3].min()) > 0


def test_the_head_at_one_eighth_reads_its_inputs_without_building_them_at_one_quarter():
    """Issue 23: with ``head_pool`` 2 the lateral layers go straight to 1/8 (an upsampling by half as much, or a
    [1, 6, 1] / 8 blur for the layer already there); that must be the 1/4 inputs 2x2-averaged, edges included."""
    torch.manual_seed(0)
    half_step = LiteColorNet(pretrained=False).half_step
    size = (24, 36)
    for side in (1, 2, 4, 3):  # upsampled by 2, 4, 8 (the taps' cases) and 6 (odd: the long way round), then averaged
        x = torch.randn(2, 32, 24 // side, 36 // side)
        long_way = F.avg_pool2d(F.interpolate(x, size=(48, 72), mode="bilinear", align_corners=False), 2)
        torch.testing.assert_close(upsampled_and_pooled(x, size, 2, half_step), long_way, rtol=0, atol=1e-5)
    net = LiteColorNet(pretrained=True, head_pool=2).eval()
    sar = real_sar(128)[..., :96]
    with torch.no_grad():
        quarter = net.head_inputs(sar)
        torch.testing.assert_close(net.head_inputs(sar, 2), F.avg_pool2d(quarter, 2), rtol=0, atol=1e-5)


def test_saturation_pushes_colours_away_from_their_grey():
    net = LiteColorNet(pretrained=False, chroma_gain=1.25)
    rgb = torch.rand(2, 3, 8, 8)
    grey = rgb.mean(1, keepdim=True)
    torch.testing.assert_close(net.saturate(rgb), (grey + 1.25 * (rgb - grey)).clamp(0, 1))


def test_torch_cielab_is_skimages():
    from skimage.color import rgb2lab

    rgb = torch.rand(1, 3, 16, 16, dtype=torch.float64)
    rgb[0, :, 0, :4] = torch.tensor([0.0, 0.01, 0.04, 1.0])  # both pieces of each curve
    torch.testing.assert_close(rgb_to_lab(rgb)[0], torch.from_numpy(rgb2lab(rgb[0].permute(1, 2, 0).numpy())).permute(2, 0, 1))


def test_detail_bound_keeps_small_moves_cuts_large_ones_and_trains():
    """Issue 25: the detail may move a colour a little (kept exactly, so detail 0 is the smooth colour); a large
    move is cut back under the false-colour threshold; and the gradient stays finite, a zero move included."""
    torch.manual_seed(0)
    bound, smooth = DetailBound(), 0.3 + 0.4 * torch.rand(1, 3, 32, 32)
    small = smooth + 0.005 * torch.randn_like(smooth)
    assert torch.equal(bound(smooth, smooth), smooth) and torch.equal(bound(small, smooth), small)
    large = (smooth + torch.randn_like(smooth)).clamp(0, 1)  # every channel moved by about 1: tens of a*b* units
    assert false_colour(large[0].numpy(), smooth[0].numpy())["share"] > 0.9
    # Measured in CIELAB linearised at one grey, the cut is approximate: measured 15.2 at most here.
    assert false_colour(bound(large, smooth)[0].numpy(), smooth[0].numpy())["share"] <= 0.01
    for detailed in (smooth.clone(), large.clone()):
        detailed.requires_grad_(True)
        bound(detailed, smooth).sum().backward()
        assert torch.isfinite(detailed.grad).all()


def test_detail_smoothing_smooths_only_the_gains_and_keeps_checkpoints_compatible():
    torch.manual_seed(0)
    net = LiteColorNet(pretrained=False).eval()
    torch.nn.init.normal_(net.gain_head.weight, std=0.5)
    smoothed = LiteColorNet(pretrained=False, detail_smoothing=4.0).eval()
    assert smoothed.state_dict().keys() == net.state_dict().keys()  # no new weights: either loads the other's
    smoothed.load_state_dict(net.state_dict())
    sar = real_sar(128)
    gains = {}
    for name, model in (("plain", net), ("smoothed", smoothed)):
        model.gain_smoothing.register_forward_hook(lambda module, args, out, name=name: gains.setdefault(name, out))
    with torch.no_grad():
        torch.testing.assert_close(smoothed(sar, torch.tensor([0.0])), net(sar, torch.tensor([0.0])))  # colour path untouched
        assert not torch.allclose(smoothed(sar), net(sar))
    roughness = lambda x: float((x[..., 1:, :] - x[..., :-1, :]).abs().mean())  # noqa: E731
    assert roughness(gains["smoothed"]) < 0.7 * roughness(gains["plain"])  # measured 0.57 at sigma 4


def test_second_stage_trains_only_the_gain_head(tmp_path):
    overrides = {
        "model.arch": "lite0", "model.head_width": 16, "model.lateral_width": 8, "model.head_depth": 1,
        "data.root": str(PAIRS), "data.crop_size": 64, "data.batch_size": 2, "loss.l1": 0.0, "loss.mse": 100.0,
        "loss.adversarial": 0.0, "train.log_every": 5, "train.checkpoint_every": 10, "train.sample_every": 10,
        "train.threads": 1, "train.lr_g": 1e-2,
    }
    first = Trainer(load_config(None, {**overrides, "out_dir": str(tmp_path / "a"), "train.steps": 10,
                                       "loss.shift_consistency": 10.0, "data.shift_max": 16}))
    first.fit()
    with open(tmp_path / "a" / "loss_log.csv") as f:
        assert "shift" in f.readline()
    second = Trainer(load_config(None, {**overrides, "out_dir": str(tmp_path / "b"), "train.steps": 10,
                                        "train.init_from": str(tmp_path / "a" / "last.pt"), "train.train_only": ["gain_head"]}))
    second.fit()
    before, after = first.ema.state_dict(), second.ema.state_dict()
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"gain_head"}
    with pytest.raises(Exception, match="train.train_only: no module colour_heads"):
        Trainer(load_config(None, {**overrides, "out_dir": str(tmp_path / "c"), "train.train_only": ["colour_heads"]}))


def test_bundled_torch_weights_are_the_bundled_onnx_model(model):
    """sarcolor/weights/default.pt (finetune's start) and default.onnx must be one network, error head included."""
    from sarcolor.backends import load_model
    from sarcolor.finetune import bundled_checkpoint

    torch_model = load_model(bundled_checkpoint(), "cpu")
    with rasterio.open(FIELDS) as src:
        batch = (src.read(1)[None, None, :256, :256] / 255).astype(np.float32)
    for detail in (0.0, 1.0):
        np.testing.assert_allclose(torch_model.with_detail(detail)(batch), model.with_detail(detail)(batch), atol=2e-4)
