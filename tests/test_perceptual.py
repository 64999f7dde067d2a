"""FD-Lite0 and the VGG16 distance rank distorted real images as worse than the real images themselves."""
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from sarcolor.data import load_split
from sarcolor.perceptual import PerceptualMetrics, crops, frechet_distance, perceptual_unavailable

from conftest import PAIRS

pytestmark = pytest.mark.skipif(perceptual_unavailable() is not None, reason=str(perceptual_unavailable()))


@pytest.fixture(scope="module")
def metrics():
    return PerceptualMetrics()


@pytest.fixture(scope="module")
def real():
    """The real Sentinel-2 RGB of the example pairs (four 256² crops of train and val scenes)."""
    return [p.optical.astype(np.float32) / 255.0 for p in load_split(PAIRS, "train") + load_split(PAIRS, "val")]


def blur(image, strength):
    return gaussian_filter(image, (0, strength, strength))


def noise(image, strength):
    return np.clip(image + np.random.default_rng(0).normal(0, strength, image.shape), 0, 1).astype(np.float32)


def colour_shift(image, strength):  # towards magenta, as a wrong colour model would paint
    return np.clip(image + np.array([strength, -strength, strength], np.float32)[:, None, None], 0, 1)


DISTORTIONS = {"blur": (blur, 1.0, 3.0), "noise": (noise, 0.03, 0.1), "colour shift": (colour_shift, 0.04, 0.12)}


def embed_all(metrics, images):
    # 128² pieces every 32 px: enough samples from four small images for a covariance.
    return np.concatenate([metrics.embed(image, size=128, step=32) for image in images])


@pytest.fixture(scope="module")
def reference(metrics, real):
    """The real images' FD-Lite0 embedding, which every distortion is measured against."""
    return embed_all(metrics, real)


def test_fd_lite0_of_the_real_images_to_themselves_is_zero(reference):
    assert frechet_distance(reference, reference) == pytest.approx(0.0, abs=1e-3)


@pytest.mark.parametrize("name", list(DISTORTIONS))
def test_fd_lite0_grows_with_the_distortion(metrics, real, reference, name):
    distort, mild, strong = DISTORTIONS[name]
    fd_mild = frechet_distance(embed_all(metrics, [distort(r, mild) for r in real]), reference)
    fd_strong = frechet_distance(embed_all(metrics, [distort(r, strong) for r in real]), reference)
    assert 0.5 < fd_mild < fd_strong, (fd_mild, fd_strong)


def test_vgg16_distance_of_a_real_image_to_itself_is_zero(metrics, real):
    for image in real:
        assert metrics.vgg_distance(image, image) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("name", list(DISTORTIONS))
def test_vgg16_distance_grows_with_the_distortion(metrics, real, name):
    distort, mild, strong = DISTORTIONS[name]
    for image in real:
        mild_d, strong_d = metrics.vgg_distance(distort(image, mild), image), metrics.vgg_distance(distort(image, strong), image)
        assert 0.005 < mild_d < strong_d, (mild_d, strong_d)


def test_crops_cover_the_image_to_its_edges():
    image = np.arange(3 * 300 * 520, dtype=np.float32).reshape(3, 300, 520)
    pieces = crops(image, size=256, step=256)
    assert pieces.shape == (2 * 3, 3, 256, 256)  # rows 0 and 44 (flush with the bottom); columns 0, 256 and 264
    np.testing.assert_array_equal(pieces[0], image[:, :256, :256])
    np.testing.assert_array_equal(pieces[-1], image[:, -256:, -256:])


def test_vgg_loss_is_the_vgg16_metric_and_trains_towards_the_real_image(metrics, real):
    import torch

    from sarcolor.config import LossConfig
    from sarcolor.errors import SarcolorError
    from sarcolor.losses import generator_loss, vgg_loss

    image = real[0][:, :128, :128]
    blurred = blur(image, 2.0)
    fake = torch.from_numpy(blurred[None].copy()).requires_grad_(True)
    loss = vgg_loss(metrics.vgg, fake, torch.from_numpy(image[None]))
    assert float(loss.detach()) == pytest.approx(metrics.vgg_distance(blurred, image), rel=1e-4)
    loss.backward()
    with torch.no_grad():  # a step down the gradient brings the blurred image closer to the real one
        stepped = (fake - 0.5 * fake.grad / fake.grad.abs().max()).clamp(0, 1)[0].numpy()
    assert metrics.vgg_distance(stepped, image) < metrics.vgg_distance(blurred, image)
    with pytest.raises(SarcolorError, match="loss.vgg needs the VGG16 network"):
        generator_loss(LossConfig(l1=1.0, adversarial=0.0, vgg=1.0), fake.detach(), torch.from_numpy(image[None]))
