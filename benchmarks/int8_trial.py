"""INT8 (static QDQ) copies of the bundled model against the float model: model-only speed, and how to score them.

Two copies, both calibrated on crops of the pairs folder's train split (onnxruntime.quantization.quantize_static,
weights per channel, activations per tensor, MinMax ranges): every convolution quantised, and only the
pointwise (1x1, ungrouped) convolutions, which hold most of the multiply-adds. The float model's metadata is
copied in, so both load as the float model does. Timing: one onnxruntime session each (spinning off, as
sarcolor runs it), batches of tiles run in turn, A B A B, the fastest of --repeat kept. Prints a markdown table,
then the `sarcolor evaluate` command that scores the copies beside the float model on val.

    python benchmarks/int8_trial.py [--data ../shared/data/s1s2-pairs] [--out DIR] [--repeat 8] [--batch 2]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from sarcolor.backends import bundled_model_path
from sarcolor.data import load_split

ROOT = Path(__file__).resolve().parents[1]
CROP = 512


def calibration_crops(pairs_root: Path, per_scene: int = 1, seed: int = 0) -> list[np.ndarray]:
    """(1, 1, CROP, CROP) float32 model inputs: ``per_scene`` random crops of every train SAR image."""
    rng = np.random.default_rng(seed)
    crops = []
    for pair in load_split(pairs_root, "train"):
        height, width = pair.sar.shape
        for _ in range(per_scene):
            y, x = int(rng.integers(height - CROP + 1)), int(rng.integers(width - CROP + 1))
            crops.append(pair.sar[None, None, y : y + CROP, x : x + CROP].astype(np.float32) / 255.0)
    return crops


class CropReader:
    """onnxruntime's CalibrationDataReader: the crops, at detail strengths 1 and 0 in turn (both bundled models)."""

    def __init__(self, crops: list[np.ndarray]) -> None:
        self._feeds = iter({"sar": crop, "detail": np.array([i % 2 == 0], np.float32)} for i, crop in enumerate(crops))

    def get_next(self) -> dict | None:
        return next(self._feeds, None)


def pointwise_convs(model) -> list[str]:
    weights = {init.name: init for init in model.graph.initializer}
    return [node.name for node in model.graph.node if node.op_type == "Conv" and node.input[1] in weights
            and list(weights[node.input[1]].dims[2:]) == [1, 1]
            and all(a.i == 1 for a in node.attribute if a.name == "group")]


def quantize(float_path: Path, out: Path, crops: list[np.ndarray], pointwise_only: bool) -> Path:
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    float_model = onnx.load(str(float_path))
    nodes = pointwise_convs(float_model) if pointwise_only else None
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(out), CropReader(crops), quant_format=QuantFormat.QDQ, op_types_to_quantize=["Conv"],
                        nodes_to_quantize=nodes, per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    quantized = onnx.load(str(out))
    onnx.helper.set_model_props(quantized, {p.key: p.value for p in float_model.metadata_props})
    onnx.save(quantized, str(out))
    return out


def session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def time_models(paths: dict[str, Path], batch: np.ndarray, repeat: int) -> dict[str, float]:
    """Fastest seconds per batch of each model, run in turn."""
    sessions = {name: session(path) for name, path in paths.items()}
    feed = {"sar": batch, "detail": np.ones(1, np.float32)}
    for s in sessions.values():
        s.run(None, feed)
    best = dict.fromkeys(sessions, float("inf"))
    for _ in range(repeat):
        for name, s in sessions.items():
            start = time.perf_counter()
            s.run(None, feed)
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "s1s2-pairs")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()), help="where the INT8 copies are written")
    parser.add_argument("--repeat", type=int, default=8)
    parser.add_argument("--batch", type=int, default=2)
    args = parser.parse_args()
    crops = calibration_crops(args.data)
    float_path = bundled_model_path()
    paths = {"float (bundled)": float_path,
             "int8, every convolution": quantize(float_path, args.out / "int8_all.onnx", crops, pointwise_only=False),
             "int8, pointwise convolutions": quantize(float_path, args.out / "int8_pointwise.onnx", crops, pointwise_only=True)}
    batch = np.concatenate(calibration_crops(args.data, seed=1)[: args.batch])
    best = time_models(paths, batch, args.repeat)
    reference = best["float (bundled)"]
    print("| model | file (KB) | tile MP/s | speed vs float |\n|---|---|---|---|")
    for name, path in paths.items():
        print(f"| {name} | {path.stat().st_size // 1024} | {batch.size / 1e6 / best[name]:.2f} | {reference / best[name]:.2f}x |")
    print(f"\nquality: sarcolor evaluate --data {args.data} --model {paths['int8, every convolution']} --name int8-all "
          f"--compare float=default --compare int8-pointwise={paths['int8, pointwise convolutions']} --no-baselines --no-perceptual")


if __name__ == "__main__":
    main()
