"""Image-quality metrics between a predicted and a real RGB image, both (3, H, W) float in [0, 1].

PSNR, SSIM and MSE come from scikit-image; CIEDE2000 from skimage.color; the colour-distribution
distance is a sliced Wasserstein distance between Lab pixel sets built on scipy's 1-D
Wasserstein distance. Colourfulness (Hasler & Suesstrunk 2003) and sharpness (mean Sobel
gradient of luminance) are reported as prediction / real ratios: 1 is ideal, below 1 means
washed-out or blurry. The 4-px grid score is the spectral power of the luminance at a 4-pixel
period (and its harmonic) over the power at neighbouring frequencies: natural images score about
1; a generator that stamps a fixed pattern on each 4x4 block (which also inflates sharpness)
scores tens.
The chroma jump compares two outputs of one model rather than a prediction and the real image: the
CIELAB (a*, b*) distance per pixel between the image with detail and the smooth one, so a detail
term that paints colours the smooth model does not have (issue 25) shows whatever the lightness does.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import wasserstein_distance
from skimage.color import deltaE_ciede2000, rgb2gray, rgb2lab
from skimage.filters import sobel
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

FALSE_COLOUR_JUMP = 15.0  # a*b* distance from the smooth output above which detail has changed a pixel's colour (issue 25)
COLOUR_CELL = 8  # psnr_80m: PSNR after 8x8 average pooling of both images (80 m cells at 10 m pixels): colour per place


def _hwc(image: np.ndarray) -> np.ndarray:
    return np.moveaxis(np.asarray(image, dtype=np.float64), 0, -1)


def psnr(pred: np.ndarray, real: np.ndarray) -> float:
    return float(peak_signal_noise_ratio(_hwc(real), _hwc(pred), data_range=1.0))


def cell_means(image: np.ndarray, cell: int) -> np.ndarray:
    """Means of the full cell x cell blocks over the last two axes (a ragged edge is left out), float64."""
    *lead, height, width = image.shape
    h, w = height // cell * cell, width // cell * cell
    blocks = np.asarray(image, np.float64)[..., :h, :w].reshape(*lead, h // cell, cell, w // cell, cell)
    return blocks.mean((-3, -1))


def psnr_pooled(pred: np.ndarray, real: np.ndarray, cell: int = COLOUR_CELL) -> float:
    """PSNR of the cell x cell block means: whether each place has the right colour, whatever its texture."""
    return psnr(cell_means(pred, cell), cell_means(real, cell))


def ssim(pred: np.ndarray, real: np.ndarray) -> float:
    return float(structural_similarity(_hwc(real), _hwc(pred), data_range=1.0, channel_axis=-1))


def mse(pred: np.ndarray, real: np.ndarray) -> float:
    return float(mean_squared_error(_hwc(real), _hwc(pred)))


def delta_e00(pred: np.ndarray, real: np.ndarray) -> float:
    return float(deltaE_ciede2000(rgb2lab(_hwc(real)), rgb2lab(_hwc(pred))).mean())


def chroma_jump(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per pixel (H, W), the CIELAB (a*, b*) distance of ``image`` from ``reference``: a change of colour, not of lightness."""
    ab, reference_ab = rgb2lab(_hwc(image))[..., 1:], rgb2lab(_hwc(reference))[..., 1:]
    return np.hypot(*np.moveaxis(ab - reference_ab, -1, 0))


def false_colour(detailed: np.ndarray, smooth: np.ndarray, threshold: float = FALSE_COLOUR_JUMP) -> dict[str, float]:
    """How much colour a detail term adds: the share of pixels whose chroma jumps by more than ``threshold``
    from the smooth output, and the jump's 99th percentile."""
    jump = chroma_jump(detailed, smooth)
    return {"share": float((jump > threshold).mean()), "p99": float(np.percentile(jump, 99))}


def colourfulness(image: np.ndarray) -> float:
    r, g, b = np.asarray(image, dtype=np.float64)
    rg = r - g
    yb = 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def sharpness(image: np.ndarray) -> float:
    return float(sobel(rgb2gray(_hwc(image))).mean())


def periodic_artefact(image: np.ndarray, period: int = 4) -> float:
    """Luminance power at 1/period cycles per pixel and its harmonic, over the median power just beside them."""
    grey = rgb2gray(_hwc(image))
    power = np.abs(np.fft.fft2(grey - grey.mean())) ** 2
    ky, kx = round(grey.shape[0] / period), round(grey.shape[1] / period)
    peaks = [power[ky, 0], power[0, kx], power[ky, kx], power[2 * ky, 0], power[0, 2 * kx]]
    beside = [power[ky + d, 0] for d in (-6, -5, -4, -3, -2, 2, 3, 4, 5, 6)]
    beside += [power[0, kx + d] for d in (-6, -5, -4, -3, -2, 2, 3, 4, 5, 6)]
    return float(np.mean(peaks) / max(np.median(beside), 1e-12))


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def colour_swd(pred: np.ndarray, real: np.ndarray, projections: int = 64, samples: int = 20000, seed: int = 0) -> float:
    """Sliced Wasserstein-1 distance between the Lab colour distributions (in Lab units)."""
    rng = np.random.default_rng(seed)
    lab_p = rgb2lab(_hwc(pred)).reshape(-1, 3)
    lab_r = rgb2lab(_hwc(real)).reshape(-1, 3)
    # One pixel subset for both when sizes match, so identical images are at distance 0.
    pick_p = rng.choice(len(lab_p), min(samples, len(lab_p)), replace=False)
    pick_r = pick_p if len(lab_p) == len(lab_r) else rng.choice(len(lab_r), min(samples, len(lab_r)), replace=False)
    lab_p, lab_r = lab_p[pick_p], lab_r[pick_r]
    directions = rng.normal(size=(projections, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return float(np.mean([wasserstein_distance(lab_p @ d, lab_r @ d) for d in directions]))


def colourfulness_ratio(pred: np.ndarray, real: np.ndarray) -> float:
    return _ratio(colourfulness(pred), colourfulness(real))


def sharpness_ratio(pred: np.ndarray, real: np.ndarray) -> float:
    return _ratio(sharpness(pred), sharpness(real))


def grid_4px(pred: np.ndarray, real: np.ndarray) -> float:
    del real  # a property of the prediction alone
    return periodic_artefact(pred)


# Every per-image metric once: name -> (function of (pred, real), table label, number format). The
# perceptual metrics (sarcolor.perceptual) need torch; their labels live here too, so a report has one list.
PIXEL_METRICS = {
    "psnr": (psnr, "PSNR (dB) ↑", "{:.2f}"),
    "ssim": (ssim, "SSIM ↑", "{:.3f}"),
    "mse": (mse, "MSE ↓", "{:.4f}"),
    "delta_e00": (delta_e00, "ΔE00 ↓", "{:.2f}"),
    "colourfulness_ratio": (colourfulness_ratio, "colourfulness ratio (→1)", "{:.2f}"),
    "sharpness_ratio": (sharpness_ratio, "sharpness ratio (→1)", "{:.2f}"),
    "colour_swd": (colour_swd, "colour SWD (Lab) ↓", "{:.2f}"),
    "grid_4px": (grid_4px, "4-px grid (≈1)", "{:.1f}"),
    "psnr_80m": (psnr_pooled, "PSNR at 80 m (dB) ↑", "{:.2f}"),
}
PERCEPTUAL_LABELS = {"fd_lite0": ("FD-Lite0 ↓", "{:.0f}"), "vgg16": ("VGG16 distance ↓", "{:.3f}")}
METRICS = tuple(PIXEL_METRICS)
LABELS = {**{name: (label, fmt) for name, (_, label, fmt) in PIXEL_METRICS.items()}, **PERCEPTUAL_LABELS}


def all_metrics(pred: np.ndarray, real: np.ndarray) -> dict[str, float]:
    return {name: function(pred, real) for name, (function, _, _) in PIXEL_METRICS.items()}
