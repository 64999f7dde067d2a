"""Which statistics tell an unfamiliar scene from the training scenes? (issue 21, item 5)

Every scene is read as sarcolor reads it (``SarReader``: scale decision, 99 % quantile, clip) and each
candidate statistic is taken on its model input. Sets:

- train / val: the s1s2-pairs SAR PNGs (the model's own data; 82 / 8 scenes);
- BigEarthNet: the VH sigma0 dB patches of the configilm 0.7.1 wheel (``scripts/bigearthnet_rasters.py``
  into ``--bigearthnet``) and the VV/VH patches shipped in bigearthnet-common;
- examples/*.tif;
- proxies of the held-back north-India scenes, made from the val scenes the way those are degraded:
  block-averaged 2-4x (a coarser pixel on its own grid), the darkest 5-25 % of pixels set to 0-2,
  saved as JPEG of quality 60-80; also each degradation alone, to see which statistic sees which;
- wrong scales: val scenes written as power read as amplitude, as dB read as normalised, as amplitude
  read as power; the BigEarthNet dB patches read as normalised.

    python experiments/novelty_signals.py ../shared/data/s1s2-pairs --bigearthnet /tmp/ben \
        --encoder sarcolor/weights/default.onnx --cache /tmp/novelty.json
    python experiments/novelty_signals.py ../shared/data/s1s2-pairs --update-model sarcolor/weights/default.onnx

Prints, per set and statistic, the smallest and largest value (the training scenes' mean and spread
come from the train set, as ``sarcolor export --calibrate`` takes them).
"""
from __future__ import annotations

import argparse
import itertools
import json
import logging
import tarfile
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np
import rasterio

from sarcolor.data import split_ids
from sarcolor.readers.raster import SarReader, open_raster
from sarcolor.novelty import STAT_NAMES, TrainingScenes, scene_statistics

log = logging.getLogger("novelty_signals")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def degrade(grey: np.ndarray, factor: int, dark_share: float, rng: np.random.Generator) -> np.ndarray:
    """An 8-bit SAR image as the held-back scenes are: ``factor`` x coarser pixel (block mean of the
    amplitude, on its own grid) and its darkest ``dark_share`` of pixels at 0-2."""
    height, width = (n - n % factor for n in grey.shape)
    coarse = grey[:height, :width].astype(np.float64).reshape(height // factor, factor, width // factor, factor).mean((1, 3))
    if dark_share:
        darkest = coarse <= np.quantile(coarse, dark_share)
        coarse[darkest] = rng.integers(0, 3, darkest.sum())
    return np.rint(coarse).astype(np.uint8)


def write_jpeg(path: Path, grey: np.ndarray, quality: int) -> Path:
    with rasterio.open(path, "w", driver="JPEG", width=grey.shape[1], height=grey.shape[0], count=1, dtype="uint8", QUALITY=quality) as dst:
        dst.write(grey, 1)
    return path


def write_float(path: Path, data: np.ndarray, dtype=np.float32) -> Path:
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0], count=1, dtype=dtype) as dst:
        dst.write(data.astype(dtype), 1)
    return path


def model_input(path: Path, input_scale: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """(model input, valid) of a whole raster, as the reader scales it."""
    with open_raster(path) as src:
        reader = SarReader(src, input_scale=input_scale)
        values, valid = reader._decimated_values()
        return reader.scaling.apply(np.where(valid, values, 0), reader.value_dtype), valid


def _neighbour_pairs(x: np.ndarray, valid: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first, second, column or row index of the first) of valid neighbouring pixels along ``axis``."""
    first = [slice(None)] * 2
    second = [slice(None)] * 2
    first[axis], second[axis] = slice(None, -1), slice(1, None)
    both = valid[tuple(first)] & valid[tuple(second)]
    index = np.indices(both.shape)[axis]
    return x[tuple(first)][both], x[tuple(second)][both], index[both]


def pixel_statistics(x: np.ndarray, valid: np.ndarray) -> tuple[float, float, float]:
    """Pixel-scale candidates: lag-1 autocorrelation, median std / mean of 2x2 blocks (speckle), and JPEG
    blockiness (mean step across 8 px block edges / mean step elsewhere)."""
    pairs = [_neighbour_pairs(x, valid, axis) for axis in (0, 1)]
    lag1 = float(np.mean([np.corrcoef(a, b)[0, 1] for a, b, _ in pairs]))
    h, w = (n - n % 2 for n in x.shape)
    blocks = x[:h, :w].reshape(h // 2, 2, w // 2, 2)
    block_valid = valid[:h, :w].reshape(h // 2, 2, w // 2, 2).all((1, 3))
    mean = blocks.mean((1, 3))
    keep = block_valid & (mean > 0)
    local_cv = float(np.median(blocks.std((1, 3))[keep] / mean[keep]))
    ratios = []
    for a, b, index in pairs:
        d = np.abs(a - b)
        boundary = (index + 1) % 8 == 0
        ratios.append(d[boundary].mean() / max(d[~boundary].mean(), 1e-9))
    return lag1, local_cv, float(np.mean(ratios))


STANDARDISED_TAPS = ["/Div_1_output_0", "/Div_2_output_0", "/Div_3_output_0"]  # encoder blocks 2, 4, 10, as the head sees them
ENCODER_CROP = 512  # model-input pixels on a side, taken from the scene's centre


def encoder_session(model: Path, scratch: Path):
    """An onnxruntime session of the bundled model's encoder alone, giving its standardised taps (needs onnx)."""
    import onnx.utils
    import onnxruntime as ort

    taps = scratch / "taps.onnx"
    onnx.utils.extract_model(str(model), str(taps), ["sar"], STANDARDISED_TAPS)
    return ort.InferenceSession(str(taps), providers=["CPUExecutionProvider"])


def encoder_means(session, x: np.ndarray, valid: np.ndarray, multiple: int = 32) -> list[float]:
    """Each standardised tap channel's mean over a central crop (invalid pixels at the scene median)."""
    x = np.where(valid, x, np.median(x[valid]))
    side = [min(ENCODER_CROP, n - n % multiple) for n in x.shape]
    top, left = ((n - s) // 2 for n, s in zip(x.shape, side))
    crop = x[top : top + side[0], left : left + side[1]]
    taps = session.run(None, {"sar": crop[None, None].astype(np.float32)})
    return np.concatenate([t[0].mean((1, 2)) for t in taps]).tolist()


def candidates(x: np.ndarray, valid: np.ndarray, encoder=None) -> dict[str, float]:
    """Every candidate statistic of one scene's model input."""
    values = x[valid]
    lag1, local_cv, blockiness = pixel_statistics(x, valid)
    return {
        "encoder means": encoder_means(encoder, x, valid) if encoder else None,
        "statistics": scene_statistics(values).tolist(),
        **{f"share below {c:g}": float(np.mean(values < c)) for c in (0.012, 0.02, 0.05)},
        "share at the minimum": float(np.mean(values == values.min())),
        "lag-1 autocorrelation": lag1,
        "local std / mean (2x2)": local_cv,
        "JPEG blockiness": blockiness,
    }


def pairs_sets(pairs: Path, scratch: Path):
    for split in ("train", "val"):
        for scene in split_ids(pairs, split):
            yield split, scene, pairs / "sar" / f"{scene}.png", "auto"


def val_scenes(pairs: Path):
    for scene in split_ids(pairs, "val"):
        with rasterio.open(pairs / "sar" / f"{scene}.png") as src:
            yield scene, src.read(1)


def proxy_sets(pairs: Path, scratch: Path):
    """North-India proxies and single degradations, from the val scenes."""
    rng = np.random.default_rng(21)
    for scene, grey in val_scenes(pairs):
        for factor, dark, quality in itertools.product((2, 3, 4), (0.05, 0.15, 0.25), (60, 70, 80)):
            path = write_jpeg(scratch / f"proxy_{scene}_{factor}_{dark}_{quality}.jpg", degrade(grey, factor, dark, rng), quality)
            yield "proxy (all three)", path.name, path, "auto"
        for name, image, quality in (
            ("only 2x coarser", degrade(grey, 2, 0, rng), None),
            ("only 5 % dark at 0-2", degrade(grey, 1, 0.05, rng), None),
            ("only JPEG q80", grey, 80),
        ):
            path = scratch / f"{name}_{scene}.{'jpg' if quality else 'tif'}".replace(" ", "_")
            if quality:
                write_jpeg(path, image, quality)
            else:
                write_float(path, image.astype(np.uint8), np.uint8)
            yield name, path.name, path, "auto"


def wrong_scale_sets(pairs: Path, scratch: Path):
    for scene, grey in val_scenes(pairs):
        amplitude = np.maximum(grey / 255.0, 1 / 255)
        for unit, data, forced in (
            ("power read as amplitude", amplitude**2, "amplitude"),
            ("dB read as normalised", 20 * np.log10(amplitude), "normalized"),
            ("amplitude read as power", amplitude, "intensity"),
        ):
            yield unit, scene, write_float(scratch / f"{unit}_{scene}.tif".replace(" ", "_"), data), forced


def bigearthnet_sets(folder: Path | None, scratch: Path):
    import bigearthnet_common

    with resources.as_file(resources.files(bigearthnet_common) / "BigEarthNet-S1-Example.tar.bz2") as archive:
        with tarfile.open(archive) as tar:
            tar.extractall(scratch / "bec", filter="data")
    paths = sorted((scratch / "bec").rglob("*.tif")) + (sorted(folder.rglob("s1/*.tif")) if folder else [])
    for path in paths:
        yield "BigEarthNet dB", path.name, path, "auto"
        yield "BigEarthNet dB read as normalised", path.name, path, "normalized"


def example_sets():
    for path in sorted(EXAMPLES.glob("*.tif")):
        yield "examples", path.name, path, "auto"


def pyrosar_sets(pairs: Path):
    """The real terrain-corrected VV dB scene of s1-products (another processor, another polarisation)."""
    path = pairs.parent / "s1-products" / "S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif"
    if path.exists():
        yield "pyroSAR VV dB (other processing)", path.name, path, "auto"


def measure(args) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        sources = itertools.chain(
            pairs_sets(args.pairs, scratch), bigearthnet_sets(args.bigearthnet, scratch), example_sets(), pyrosar_sets(args.pairs),
            proxy_sets(args.pairs, scratch), wrong_scale_sets(args.pairs, scratch),
        )
        encoder = encoder_session(args.encoder, scratch) if args.encoder else None
        for group, name, path, scale in sources:
            x, valid = model_input(path, scale)
            rows.append({"set": group, "scene": name, **candidates(x, valid, encoder)})
    return rows


class EncoderScenes:
    """The training scenes' encoder-channel means: a scene's distance is the RMS over channels of its mean's
    z-score across training scenes."""

    def __init__(self, means: list[list[float]]):
        stack = np.array(means) if means else np.zeros((1, 1))
        self.mean, self.std = stack.mean(0), np.maximum(stack.std(0), 1e-3)

    def distance(self, means: np.ndarray) -> float:
        return float(np.sqrt(np.mean(((means - self.mean) / self.std) ** 2)))


def summary(rows: list[dict]) -> None:
    """One table row per set: smallest-largest value of each candidate, and how many scenes are flagged."""
    training = TrainingScenes.from_scenes([np.array(r["statistics"]) for r in rows if r["set"] == "train"])
    encoder = EncoderScenes([r["encoder means"] for r in rows if r["set"] == "train" and r["encoder means"] is not None])
    near_zero = len(STAT_NAMES) - 1
    for row in rows:
        if row["encoder means"] is not None:
            row["encoder distance"] = encoder.distance(np.array(row["encoder means"]))
        del row["encoder means"]
        statistics = np.array(row.pop("statistics"))
        distances = training.distances(statistics)
        row["near-zero share"] = float(statistics[near_zero])
        row["distance without it"] = float(distances[:near_zero].max())
        row["distance"] = float(distances.max())
        row["flagged"] = bool(row["distance"] > training.threshold)
    names = [k for k in rows[0] if k not in ("set", "scene", "flagged")]
    print("| set | n | " + " | ".join(names) + " | flagged |")
    print("|---|---|" + "---|" * (len(names) + 1))
    for group in dict.fromkeys(r["set"] for r in rows):
        members = [r for r in rows if r["set"] == group]
        cells = [f"{min(r[n] for r in members):.3g}–{max(r[n] for r in members):.3g}" for n in names]
        flagged = sum(r["flagged"] for r in members)
        print(f"| {group} | {len(members)} | " + " | ".join(cells) + f" | {flagged} |")


def model_outputs(path: Path) -> list[np.ndarray]:
    """The model's outputs on a crop of the fields example, for checking that only metadata changed."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with rasterio.open(EXAMPLES / "s1_vh_fields_california.tif") as src:
        sar = src.read(1)[:256, :256].astype(np.float32) / 255
    feed = {"sar": sar[None, None]}
    if len(session.get_inputs()) > 1:
        feed["detail"] = np.ones(1, np.float32)
    return session.run(None, feed)


def update_model(model: Path, pairs: Path) -> None:
    """Rewrite the training-scene statistics in an ONNX model's metadata from the train split, as ``sarcolor
    export --calibrate`` stores them; the graph and weights stay byte for byte (needs onnx)."""
    import onnx

    from sarcolor.backends import TRAINING_SCENES_KEY
    from sarcolor.export import training_scenes

    proto = onnx.load(str(model))
    graph = proto.graph.SerializeToString()
    entries = {entry.key: entry for entry in proto.metadata_props}
    entry = entries.get(TRAINING_SCENES_KEY) or proto.metadata_props.add(key=TRAINING_SCENES_KEY)
    entry.value = training_scenes(pairs).to_json()
    updated = model.with_name(f".{model.name}.tmp")
    onnx.save(proto, str(updated))
    if onnx.load(str(updated)).graph.SerializeToString() != graph:
        raise RuntimeError("the graph changed")
    if any(a.tobytes() != b.tobytes() for a, b in zip(model_outputs(model), model_outputs(updated))):
        raise RuntimeError("the outputs changed")
    updated.replace(model)
    log.warning("%s: %s updated; graph and outputs unchanged", model, TRAINING_SCENES_KEY)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pairs", type=Path)
    parser.add_argument("--bigearthnet", type=Path, help="output folder of scripts/bigearthnet_rasters.py")
    parser.add_argument("--encoder", type=Path, help="also measure the encoder features of this ONNX model (needs onnx)")
    parser.add_argument("--update-model", type=Path, help="rewrite this ONNX model's training-scene statistics and stop")
    parser.add_argument("--cache", type=Path, help="JSON file of measured rows: read if it exists, else written")
    args = parser.parse_args()
    if args.update_model:
        update_model(args.update_model, args.pairs)
        return
    if args.cache and args.cache.exists():
        rows = json.loads(args.cache.read_text())
    else:
        rows = measure(args)
        if args.cache:
            args.cache.write_text(json.dumps(rows))
    summary(rows)


if __name__ == "__main__":
    main()
