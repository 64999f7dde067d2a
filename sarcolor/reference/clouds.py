"""Which reference pixels are usable: covered and not nodata, and not cloud, cloud shadow or cirrus.

The Sentinel-2 L2A scene classification decides where the reference has one; otherwise a detector for plain
colours: bright and grey (clouds, a cloud painted white), and in reflectance the greyish haze joined to them. Either
mask grows by ``CLOUD_MARGIN`` pixels: a cloud's thin edge is not a colour of the ground. Cloud shadows are found only
by the scene classification.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

CLOUD_MARGIN = 6  # pixels (60 m at 10 m) added around every cloud
SPECK = 3  # bright grey spots narrower than about twice this (pixels) are roofs and roads, not clouds
# Sentinel-2 L2A scene classes that are not ground: no data, saturated, cloud shadow, cloud (medium, high), cirrus.
UNUSABLE_CLASSES = (0, 1, 3, 8, 9, 10)
# Bright and grey: the darkest of R, G, B at least this (top-of-atmosphere reflectance, or 8-bit / 255), and the
# channels within GREY_SPREAD of each other. Bright fields, sand and roofs are coloured, or darker.
BRIGHT = 0.2
BRIGHT_8BIT = 0.72
GREY_SPREAD = 0.12


# In reflectance a small cumulus, or a thin one, can stay just under BRIGHT: greyish pixels at least this share of it
# whose blue is at least their red (the sky's scattering: bright soil is redder) are cloud too. None in the clear
# Punjab, Jiangsu, Aachen and Valencia L1C scenes; 0.6 % of cloudy Jiangsu and 0.9 % of cloudy Punjab.
BLUISH = 0.9
HAZE = 0.8  # haze: grey pixels at least this share of the cloud brightness, joined to a cloud
HAZE_SPREAD = 0.15
HAZE_REACH = 16  # pixels: how far from a cloud's bright core its haze is looked for
CONTEXT = SPECK + HAZE_REACH + CLOUD_MARGIN  # pixels around a window that decide its clouds


def cloud_like(rgb: np.ndarray, reflectance: bool) -> np.ndarray:
    """Bright, grey pixels (h, w) of ``rgb`` (3, h, w) in [0, 1] units (reflectance or 8-bit / 255), spots under
    about 7 px left out (roofs, roads); in reflectance also slightly darker bluish-grey ones (``BLUISH``) and the
    hazy, greyish pixels joined to them (a cloud's thin fringe). An 8-bit image's stretch is unknown: its bright grey
    land would pass for haze."""
    darkest, brightest = rgb.min(0), rgb.max(0)
    bright = BRIGHT if reflectance else BRIGHT_8BIT
    spread = brightest - darkest
    core = (darkest >= bright) & (spread <= GREY_SPREAD * brightest + 0.02)
    hazy = (darkest >= HAZE * bright) & (spread <= HAZE_SPREAD * brightest + 0.03)
    if reflectance:
        core |= hazy & (darkest >= BLUISH * bright) & (rgb[2] >= rgb[0])
    core = ndimage.binary_opening(core, iterations=SPECK)
    if not reflectance or not core.any():
        return core
    near = ndimage.binary_dilation(core, iterations=HAZE_REACH)
    return ndimage.binary_propagation(core, mask=(hazy & near) | core)


def clear_pixels(rgb: np.ndarray, covered: np.ndarray, classes: np.ndarray | None, margin: int = CLOUD_MARGIN,
                 reflectance: bool = True) -> np.ndarray:
    """The usable pixels (h, w): ``covered`` and, by the scene ``classes`` where given, else by ``cloud_like``, not
    cloud, shadow or cirrus, nor within ``margin`` pixels of one."""
    if classes is not None:
        cloud = np.isin(classes, UNUSABLE_CLASSES)
    else:
        cloud = cloud_like(rgb, reflectance)
    if margin and cloud.any():
        cloud = ndimage.binary_dilation(cloud, iterations=margin)
    return covered & ~cloud


CLOUD_WHITE = (242.0, 244.0, 248.0)  # the painted cloud's 8-bit colour


def painted_cloud(image: np.ndarray, mask: np.ndarray, white=CLOUD_WHITE, edge: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """A cloud shape ``mask`` (any size, 1 = cloud) upsampled onto ``image`` (H, W, C) and painted in ``white`` (C
    values, default an 8-bit near-white) with soft edges of ``edge`` pixels: how a clear image is given a real cloud to
    test and measure the reference's cloud handling. Returns the clouded image (``image``'s type) and the hidden
    pixels (H, W)."""
    h, w = image.shape[:2]
    mask = np.asarray(mask, np.float32)
    cover = ndimage.zoom(mask, (h / mask.shape[0], w / mask.shape[1]), order=3, grid_mode=True, mode="nearest")[:h, :w]
    hidden = cover > 0.5
    alpha = np.clip(ndimage.gaussian_filter(hidden.astype(np.float32), edge), 0, 1)[..., None]
    clouded = image * (1 - alpha) + alpha * np.asarray(white, np.float64)
    if np.issubdtype(image.dtype, np.integer):
        clouded = clouded.round()
    return clouded.astype(image.dtype), hidden
