"""Issue 25, item 0: the default's detail must not paint colours the smooth model does not have.

The bundled network (default.pt) with its detail combined with the colour in several fixed ways, each
scored on the 8 val scenes as they are ("home") and damaged the way scenes of other processing chains
are (8-bit JPEG, quality 75, with pixels at or near 0):

- chroma jump (sarcolor.metrics.false_colour): share of pixels whose CIELAB (a*, b*) moves more than 15
  from the smooth output's, and the jump's 99th percentile; mean over scenes and the worst scene;
- at home, the quality `sarcolor evaluate` reports: PSNR, SSIM, ΔE00, colourfulness and sharpness ratios.

Every candidate is computed from one pass of the network per tile (its colour logits, detail gains and
high-pass bands), blended over tiles like ``sarcolor evaluate`` (512 px, overlap 64) and rounded to 8 bits.

    python experiments/false_colour.py [--data ../shared/data/s1s2-pairs] > table.md
"""
from __future__ import annotations

import argparse
import logging
from collections.abc import Callable

import numpy as np
import torch

from sarcolor.backends import TorchModel
from sarcolor.data import Pair, load_split
from sarcolor.finetune import bundled_checkpoint
from sarcolor.metrics import colourfulness_ratio, delta_e00, false_colour, psnr, sharpness_ratio, ssim
from sarcolor.models.generator import log_amplitude
from sarcolor.models.lab import CUBE_ROOT_FROM, SLOPE, SRGB_TO_XYZ, WHITE, mix_channels, rgb_to_lab
from sarcolor.models.litecolor import DetailBound, LiteColorNet, SarHighPass
from sarcolor.stress import darkest_at_zero, jpeg_round_trip, random_dark_pixels
from sarcolor.tiling import predict_array

log = logging.getLogger("false_colour")
Combine = Callable[[LiteColorNet, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]  # (net, logits, gains, bands) -> RGB
BAND_RANGE_QUANTILES = (1e-4, 1 - 1e-4)  # the "range seen in training" of the high-pass bands

# Damaged inputs: name -> (8-bit val scene, its index among the 8 val scenes, rng) -> 8-bit input
INPUTS: dict[str, Callable[[np.ndarray, int, np.random.Generator], np.ndarray]] = {
    "home": lambda sar, i, rng: sar,
    "5 % at 0–2, JPEG": lambda sar, i, rng: jpeg_round_trip(random_dark_pixels(sar, 0.05, rng)),
    "darkest 5–25 % at 0, JPEG": lambda sar, i, rng: jpeg_round_trip(darkest_at_zero(sar, 0.05 + 0.2 * i / 7)),
    "darkest 25 % at 0, JPEG": lambda sar, i, rng: jpeg_round_trip(darkest_at_zero(sar, 0.25)),
}


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """sarcolor.models.lab.rgb_to_lab's inverse; colours outside the sRGB gamut are clipped in linear RGB."""
    fy = (lab[:, 0] + 16) / 116
    f = torch.stack([fy + lab[:, 1] / 500, fy, fy - lab[:, 2] / 200], 1)
    xyz = torch.where(f > CUBE_ROOT_FROM ** (1 / 3), f**3, (f - 16 / 116) / SLOPE) * lab.new_tensor(WHITE).view(1, 3, 1, 1)
    linear = mix_channels(torch.linalg.inv(lab.new_tensor(SRGB_TO_XYZ)), xyz).clamp(0.0, 1.0)
    return torch.where(linear > 0.0031308, 1.055 * linear.clamp_min(0.0031308) ** (1 / 2.4) - 0.055, 12.92 * linear)


# --- the candidates: how the detail joins the colour (detail strength 1) ---
def smooth(net: LiteColorNet, logits: torch.Tensor, gains: torch.Tensor, bands: torch.Tensor) -> torch.Tensor:
    return net.saturate(torch.sigmoid(logits))


def per_channel(net: LiteColorNet, logits: torch.Tensor, gains: torch.Tensor, bands: torch.Tensor) -> torch.Tensor:
    """As shipped before issue 25: each colour's logit gets its own texture."""
    return net.saturate(torch.sigmoid(logits + net.texture(gains, bands)))


def bands_clipped(low: torch.Tensor, high: torch.Tensor) -> Combine:
    def combine(net, logits, gains, bands):
        return per_channel(net, logits, gains, torch.maximum(torch.minimum(bands, high), low))

    return combine


def texture_bounded(bound: float) -> Combine:
    def combine(net, logits, gains, bands):
        return net.saturate(torch.sigmoid(logits + bound * torch.tanh(net.texture(gains, bands) / bound)))

    return combine


def grey_logits(bound: float | None = None, chroma_bound: float = 0.0) -> Combine:
    """One texture for the three logits (their mean), optionally bounded; plus the colour part bounded."""

    def combine(net, logits, gains, bands):
        texture = net.texture(gains, bands)
        grey = texture.mean(1, keepdim=True)
        chroma = chroma_bound * torch.tanh((texture - grey) / chroma_bound) if chroma_bound else 0.0
        if bound is not None:
            grey = bound * torch.tanh(grey / bound)
        return net.saturate(torch.sigmoid(logits + grey + chroma))

    return combine


MEAN = torch.full((3,), 1 / 3)
LUMA = torch.tensor([0.2126, 0.7152, 0.0722])  # Rec. 709 luma, the weights of rgb2gray (the sharpness metric's grey)


def soft_bound(x: torch.Tensor, bound: float | None) -> torch.Tensor:
    """x where |x| << bound, never beyond ±bound; None: x unbounded."""
    return x if bound is None else bound * torch.tanh(x / bound)


def rgb_step(weights: torch.Tensor, step_bound: float | None = None, colour_bound: float = 0.0) -> Combine:
    """The smooth colour plus the change the detail makes in RGB, split into one step on all three channels
    (its ``weights``-mean) and the rest (its colour part), each bounded; colour_bound 0 drops the colour part."""

    def combine(net, logits, gains, bands):
        colour = smooth(net, logits, gains, bands)
        change = per_channel(net, logits, gains, bands) - colour
        step = torch.einsum("c,nchw->nhw", weights, change)[:, None]
        colour_part = soft_bound(change - step, colour_bound) if colour_bound else 0.0
        return (colour + soft_bound(step, step_bound) + colour_part).clamp(0.0, 1.0)

    return combine


def lab_lightness(net, logits, gains, bands):
    """CIELAB a*b* of the smooth colour, L* of the detailed image."""
    colour = rgb_to_lab(smooth(net, logits, gains, bands))
    lightness = rgb_to_lab(per_channel(net, logits, gains, bands))[:, :1]
    return lab_to_rgb(torch.cat([lightness, colour[:, 1:]], 1))


def lab_bounded(max_ab: float, max_lightness: float | None = None) -> Combine:
    """The detailed image, except where the detail moves a pixel's a*b* more than ``max_ab`` (or its L* more than
    ``max_lightness``) from the smooth colour: there the move is cut back to the bound, in CIELAB itself."""

    def combine(net, logits, gains, bands):
        colour = rgb_to_lab(smooth(net, logits, gains, bands))
        detailed = per_channel(net, logits, gains, bands)
        move = rgb_to_lab(detailed) - colour
        ab_length = torch.linalg.vector_norm(move[:, 1:], dim=1, keepdim=True)
        lightness = move[:, :1] if max_lightness is None else move[:, :1].clamp(-max_lightness, max_lightness)
        bounded = torch.cat([lightness, move[:, 1:] * (max_ab / ab_length.clamp_min(max_ab))], 1)
        cut = (ab_length > max_ab) | (lightness != move[:, :1])
        return torch.where(cut, lab_to_rgb(colour + bounded), detailed)

    return combine


def lab_linearised_bounded(max_ab: float, max_lightness: float, grey: float) -> Combine:
    """The same cut in CIELAB linearised at one grey (litecolor.DetailBound)."""
    bound = DetailBound(max_ab, max_lightness, grey)

    def combine(net, logits, gains, bands):
        return bound(per_channel(net, logits, gains, bands), smooth(net, logits, gains, bands))

    return combine


def bundled(net, logits, gains, bands):
    """As LiteColorNet.forward now joins them: the cut in CIELAB linearised at grey 0.35, a*b* 8, L* 25."""
    return net.detail_bound(per_channel(net, logits, gains, bands), smooth(net, logits, gains, bands))


def candidates(band_low: torch.Tensor, band_high: torch.Tensor) -> dict[str, Combine]:
    return {
        "smooth (detail 0)": smooth,
        "per-channel texture (shipped)": per_channel,
        "bands clipped to the training range": bands_clipped(band_low, band_high),
        "texture bounded, 1 logit (tanh)": texture_bounded(1.0),
        "one texture for R, G, B (mean)": grey_logits(),
        "one texture, bounded 2 logits": grey_logits(2.0),
        "one texture + colour part bounded 0.2": grey_logits(None, 0.2),
        "same step on R, G, B (mean)": rgb_step(MEAN),
        "same step on R, G, B (luma)": rgb_step(LUMA),
        "luma step bounded 0.25": rgb_step(LUMA, 0.25),
        "luma step + colour part bounded 0.02": rgb_step(LUMA, None, 0.02),
        "luma step + colour part bounded 0.04": rgb_step(LUMA, None, 0.04),
        "luma step bounded 0.25 + colour part 0.03": rgb_step(LUMA, 0.25, 0.03),
        "L* of the detail, a*b* of smooth": lab_lightness,
        "CIELAB cut: a*b* 10": lab_bounded(10.0),
        "CIELAB cut: a*b* 10, L* 30": lab_bounded(10.0, 30.0),
        "CIELAB cut: a*b* 8, L* 25": lab_bounded(8.0, 25.0),
        "CIELAB cut: a*b* 12, L* 35": lab_bounded(12.0, 35.0),
        "**CIELAB linearised at grey 0.35, cut: a*b* 8, L* 25 (bundled)**": bundled,
        "CIELAB linearised at grey 0.5, cut: a*b* 8, L* 25": lab_linearised_bounded(8.0, 25.0, 0.5),
        "CIELAB linearised at grey 0.35, cut: a*b* 6, L* 20": lab_linearised_bounded(6.0, 20.0, 0.35),
    }


class CandidateOutputs:
    """A tiling model: per tile, the network's heads once, then every candidate's RGB, stacked."""

    def __init__(self, net: LiteColorNet, combines: dict[str, Combine]) -> None:
        self.net, self.combines, self.multiple = net, combines, net.multiple

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            sar = torch.from_numpy(batch)
            logits, gains, _ = self.net.heads(sar)
            bands = self.net.high_pass(log_amplitude(sar))
            return torch.cat([combine(self.net, logits, gains, bands) for combine in self.combines.values()], 1).numpy()


def training_band_range(pairs: list[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per high-pass band, the BAND_RANGE_QUANTILES of its values over the training scenes, each (1, bands, 1, 1)."""
    values = []
    for pair in pairs:
        sar = torch.from_numpy(pair.sar[None, None].astype(np.float32) / 255.0)
        values.append(SarHighPass()(log_amplitude(sar))[0].flatten(1)[:, ::16])
    low, high = torch.quantile(torch.cat(values, 1), torch.tensor(BAND_RANGE_QUANTILES), dim=1)
    return low.view(1, -1, 1, 1), high.view(1, -1, 1, 1)


def as_8bit(image: np.ndarray) -> np.ndarray:
    """What the user gets (as sarcolor evaluate scores it): the 8-bit image, as float."""
    return np.rint(np.clip(image, 0.0, 1.0) * 255.0) / 255.0


def score_scene(outputs: dict[str, np.ndarray], real: np.ndarray | None) -> dict[str, dict[str, float]]:
    reference = outputs["smooth (detail 0)"]
    rows = {}
    for name, image in outputs.items():
        row = {f"jump {k}": v for k, v in false_colour(image, reference).items()}
        if real is not None:
            row.update(psnr=psnr(image, real), ssim=ssim(image, real), delta_e00=delta_e00(image, real),
                       colourfulness=colourfulness_ratio(image, real), sharpness=sharpness_ratio(image, real))
        rows[name] = row
    return rows


def run(model: CandidateOutputs, val: list[Pair], seed: int = 0) -> dict[str, dict[str, list[dict]]]:
    """kind -> candidate -> per-scene rows."""
    names = list(model.combines)
    results: dict[str, dict[str, list[dict]]] = {kind: {name: [] for name in names} for kind in INPUTS}
    for kind, damage in INPUTS.items():
        rng = np.random.default_rng(seed)
        for i, pair in enumerate(val):
            sar = damage(pair.sar, i, rng).astype(np.float32) / 255.0
            stacked = as_8bit(predict_array(model, sar, multiple=model.multiple))
            outputs = {name: stacked[3 * k : 3 * k + 3].astype(np.float64) for k, name in enumerate(names)}
            real = pair.optical.astype(np.float64) / 255.0 if kind == "home" else None
            for name, row in score_scene(outputs, real).items():
                results[kind][name].append(row)
            log.info("%s, scene %s: shipped %.1f %%", kind, pair.id, 100 * results[kind][names[1]][-1]["jump share"])
    return results


def table(results: dict[str, dict[str, list[dict]]]) -> str:
    kinds = list(results)
    header = ["candidate", *(f"{kind}: >15 % (worst) / p99 (worst)" for kind in kinds),
              "PSNR", "SSIM", "ΔE00", "colourfulness", "sharpness"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in results["home"]:
        cells = [name]
        for kind in kinds:
            rows = results[kind][name]
            share = [100 * r["jump share"] for r in rows]
            p99 = [r["jump p99"] for r in rows]
            cells.append(f"{np.mean(share):.2f} ({max(share):.2f}) / {np.mean(p99):.1f} ({max(p99):.1f})")
        home = results["home"][name]
        for metric, fmt in (("psnr", "{:.2f}"), ("ssim", "{:.3f}"), ("delta_e00", "{:.2f}"), ("colourfulness", "{:.2f}"),
                            ("sharpness", "{:.2f}")):
            cells.append(fmt.format(np.mean([r[metric] for r in home])))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/s1s2-pairs")
    parser.add_argument("--only", nargs="*", default=[], help="run only the candidates whose names contain one of these")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    net = TorchModel(bundled_checkpoint(), device="cpu").generator
    low, high = training_band_range(load_split(args.data, "train"))
    log.info("training range of the bands: %s to %s", low.flatten().tolist(), high.flatten().tolist())
    chosen = {name: combine for i, (name, combine) in enumerate(candidates(low, high).items())
              if i < 2 or not args.only or any(part in name for part in args.only)}  # smooth and shipped always
    results = run(CandidateOutputs(net, chosen), load_split(args.data, "val"))
    print(table(results))


if __name__ == "__main__":
    main()
