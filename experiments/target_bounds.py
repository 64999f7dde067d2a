"""What issue 12's remaining default and smooth targets would take, measured on the val split (session 9).

Each row is an image set built from the bundled models' outputs and, for the bounds, from the real
optical images themselves (an oracle no model has), scored like ``sarcolor evaluate``: mean PSNR,
SSIM and sharpness ratio over the 8 val scenes, FD-Lite0 of their 256² crops against the real ones.

- colour alone: the real image blurred (a perfect colour field at the smooth model's resolution or
  finer) bounds the SSIM any texture-free model can reach;
- texture placement: the default's own texture, concentrated where the real image is textured
  (the real local contrast to a power k, mean 1), shows what SSIM better placement alone could buy;
- texture realism: real optical texture added to the smooth colours, taken from 128 px away (real
  texture, wrong place), and the SAR's own high-pass bands, show what FD-Lite0 measures.

    python experiments/target_bounds.py [--data ../shared/data/s1s2-pairs] > table.md
"""
from __future__ import annotations

import argparse
import logging
from collections.abc import Callable

import numpy as np
import torch
from scipy.ndimage import gaussian_filter, uniform_filter
from skimage.color import rgb2gray

from sarcolor.backends import load_model
from sarcolor.data import Pair, load_split
from sarcolor.evaluate import model_predictor
from sarcolor.metrics import psnr, sharpness_ratio, ssim
from sarcolor.models.generator import box_mean, log_amplitude
from sarcolor.perceptual import PerceptualMetrics, frechet_distance

log = logging.getLogger("target_bounds")
SSIM_WINDOW = 7  # skimage's default, the SSIM of sarcolor evaluate
COLOUR_SIGMA = 8  # px: the smooth model's colour blur (sigma 2 at 1/4 resolution)
Builder = Callable[[str], np.ndarray]


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    return np.stack([gaussian_filter(channel, sigma) for channel in image])


def local_contrast(image: np.ndarray) -> np.ndarray:
    """The real image's luminance standard deviation in SSIM's window, smoothed, normalised to mean 1."""
    grey = rgb2gray(np.moveaxis(image, 0, -1))
    mean = uniform_filter(grey, SSIM_WINDOW)
    std = np.sqrt(np.maximum(uniform_filter(grey * grey, SSIM_WINDOW) - mean * mean, 0.0))
    std = gaussian_filter(std, 4)
    return std / std.mean()


def sar_band(sar: np.ndarray, inner: int, outer: int) -> np.ndarray:
    """A band of the SAR's log amplitude as LiteColorNet's high-pass bands take it (generator.log_amplitude,
    box_mean): its inner-px box mean minus its outer-px box mean."""
    log_amp = log_amplitude(torch.from_numpy(sar[None, None].astype(np.float32) / 255.0))
    return (box_mean(log_amp, inner) - box_mean(log_amp, outer))[0, 0].double().numpy()


def with_texture(colour: np.ndarray, texture: np.ndarray) -> np.ndarray:
    return np.clip(colour + texture, 0.0, 1.0)


def image_sets(val: list[Pair], real: dict, smooth: dict, default: dict) -> dict[str, Builder]:
    sar = {p.id: p.sar for p in val}
    texture = {i: default[i] - smooth[i] for i in real}
    high_pass = {i: real[i] - blur(real[i], COLOUR_SIGMA) for i in real}

    def placed(k: float) -> Builder:
        def build(i: str) -> np.ndarray:
            weight = local_contrast(real[i]) ** k
            return with_texture(smooth[i], texture[i] * weight / weight.mean())

        return build

    def displaced(strength: float) -> Builder:
        return lambda i: with_texture(smooth[i], strength * np.roll(high_pass[i], (128, 128), (1, 2)))

    return {
        "real, other 256² crops (128 px away): FD-Lite0's floor": lambda i: np.roll(real[i], (128, 128), (1, 2)),
        "real, blurred σ 1 px": lambda i: blur(real[i], 1),
        "real, blurred σ 2 px": lambda i: blur(real[i], 2),
        "real, blurred σ 8 px (perfect colours at smooth's resolution)": lambda i: blur(real[i], COLOUR_SIGMA),
        "real, blurred σ 16 px": lambda i: blur(real[i], 16),
        "smooth (bundled)": lambda i: smooth[i],
        "default (bundled)": lambda i: default[i],
        "default's texture on perfect colours (real blurred σ 8)": lambda i: with_texture(blur(real[i], COLOUR_SIGMA), texture[i]),
        "default's texture, placed by the real contrast, k = 1": placed(1),
        "default's texture, placed by the real contrast, k = 2": placed(2),
        "smooth + the real texture at its place (oracle)": lambda i: with_texture(smooth[i], high_pass[i]),
        "smooth + 0.5 × the real texture from 128 px away": displaced(0.5),
        "smooth + 1.0 × the real texture from 128 px away": displaced(1.0),
        "smooth + 0.9 × SAR band 5–17 px (grey)": lambda i: with_texture(smooth[i], 0.9 * sar_band(sar[i], 5, 17)[None]),
    }


def score(real: dict, build: Builder, metrics: PerceptualMetrics, real_embedding: np.ndarray) -> dict[str, float]:
    rows, embeddings = [], []
    for i, image in real.items():
        pred = build(i)
        rows.append((psnr(pred, image), ssim(pred, image), sharpness_ratio(pred, image)))
        embeddings.append(metrics.embed(pred))
    means = np.mean(rows, 0)
    fd = frechet_distance(np.concatenate(embeddings), real_embedding)
    return {"psnr": means[0], "ssim": means[1], "sharpness": means[2], "fd_lite0": fd}


def model_outputs(name: str, val: list[Pair]) -> dict[str, np.ndarray]:
    predict = model_predictor(load_model(name))
    return {pair.id: np.asarray(predict(pair)[:3], np.float64) for pair in val}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/s1s2-pairs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    val = load_split(args.data, "val")
    real = {pair.id: pair.optical.astype(np.float64) / 255.0 for pair in val}
    sets = image_sets(val, real, model_outputs("smooth", val), model_outputs("default", val))
    metrics = PerceptualMetrics()
    real_embedding = np.concatenate([metrics.embed(image) for image in real.values()])
    lines = ["| image set (val, 8 scenes) | PSNR | SSIM | sharpness | FD-Lite0 |", "|---|---|---|---|---|"]
    for name, build in sets.items():
        row = score(real, build, metrics, real_embedding)
        lines.append(f"| {name} | {row['psnr']:.2f} | {row['ssim']:.3f} | {row['sharpness']:.2f} | {row['fd_lite0']:.0f} |")
        log.info(lines[-1])
    print("\n".join(lines))


if __name__ == "__main__":
    main()
