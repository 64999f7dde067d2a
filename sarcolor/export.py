"""Export a training checkpoint's EMA generator to ONNX with its SAR convention as metadata."""
from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

from sarcolor.backends import (
    CALIBRATION_KEY, CONVENTION_KEY, FEATURES_OUTPUT, HEAD_BIAS, HEAD_KEY, HEAD_WEIGHT, MULTIPLE_KEY, TRAINING_PLACES_KEY,
    TRAINING_SCENES_KEY, UNCALIBRATED_KEY, TorchModel,
)
from sarcolor.errors import SarcolorError
from sarcolor.io import check_outputs_apart_from_inputs

log = logging.getLogger(__name__)


def calibrate_error(model: TorchModel, pairs_root: str | Path) -> tuple[dict | None, str | None]:
    """The error head's calibration on the val split of a pairs folder (sarcolor.confidence), or None and why
    not: too few val pairs, or a head that does not rank their errors (``ErrorBlocks.calibration_problem``)."""
    from sarcolor.confidence import ErrorBlocks
    from sarcolor.data import load_split
    from sarcolor.evaluate import model_predictor

    blocks = ErrorBlocks.measure(model_predictor(model), load_split(pairs_root, "val"))
    problem = blocks.calibration_problem()
    if problem:
        log.warning("confidence map left uncalibrated on %s: %s", pairs_root, problem)
        return None, problem
    calibration = blocks.calibration()
    log.info(
        "error calibration on %d val blocks: CIEDE2000 = %.3f x expected error + %.2f (Spearman %.2f)",
        calibration["blocks"], calibration["slope"], calibration["intercept"], calibration["spearman"],
    )
    return calibration, None


def training_scenes(pairs_root: str | Path):
    """Statistics of the train split's SAR images (sarcolor.novelty), for "unlike the training data" warnings."""
    from sarcolor.data import load_split
    from sarcolor.novelty import TrainingScenes, scene_statistics

    return TrainingScenes.from_scenes([scene_statistics(pair.sar / 255.0) for pair in load_split(pairs_root, "train")])


def training_places(pairs_root: str | Path):
    """The lon/lat boxes of the train split's regions, from a pairs folder whose metadata.json lists each pair's
    region and corners in EPSG:3395 (as the bundled training data does); None for a folder without them."""
    from rasterio.warp import transform

    from sarcolor.data import split_ids
    from sarcolor.novelty import TrainingPlaces

    root = Path(pairs_root)
    try:
        entries = json.loads((root / "metadata.json").read_text())
    except (OSError, ValueError):
        return None
    train = set(split_ids(root, "train"))
    boxes: dict[str, list[float]] = {}
    for entry in entries if isinstance(entries, list) else []:
        corners = entry.get("corners_EPSG:3395")
        if not corners or entry.get("id") not in train or not entry.get("region"):
            continue
        lons, lats = transform("EPSG:3395", "EPSG:4326", [c[0] for c in corners], [c[1] for c in corners])
        box = boxes.setdefault(entry["region"], [180.0, 90.0, -180.0, -90.0])
        box[:] = [min(box[0], *lons), min(box[1], *lats), max(box[2], *lons), max(box[3], *lats)]
    return TrainingPlaces({name: tuple(box) for name, box in boxes.items()}) if boxes else None


def export_onnx(checkpoint: str | Path, out: str | Path, calibrate: str | Path | None = None, opset: int = 17) -> Path:
    """Write an ONNX model with dynamic batch, height and width; returns the output path.

    ``calibrate``: a pairs folder; its train split gives the training scenes' statistics and its val
    split calibrates an error head (both stored as metadata)."""
    import torch

    from sarcolor.checkpoint import write_onnx

    checkpoint, out = Path(checkpoint), Path(out)
    check_outputs_apart_from_inputs([out], [checkpoint] + ([Path(calibrate)] if calibrate is not None else []))
    if not checkpoint.is_file():
        raise SarcolorError(f"checkpoint not found: {checkpoint}")
    if not out.parent.is_dir():
        raise SarcolorError(f"output folder does not exist: {out.parent}")
    model = TorchModel(checkpoint, device="cpu")
    metadata = {CONVENTION_KEY: json.dumps(model.convention), MULTIPLE_KEY: str(model.multiple)}
    if calibrate is not None:
        metadata[TRAINING_SCENES_KEY] = training_scenes(calibrate).to_json()
        places = training_places(calibrate)
        if places:
            metadata[TRAINING_PLACES_KEY] = places.to_json()
        if model.has_error:
            calibration, problem = calibrate_error(model, calibrate)
            if calibration:
                metadata[CALIBRATION_KEY] = json.dumps(calibration)
            else:
                metadata[UNCALIBRATED_KEY] = problem
    example = (torch.zeros(1, 1, 64, 64),)
    input_names = ["sar"]
    if model.has_detail:  # the detail strength is a second input, so one file serves every strength
        example += (torch.ones(1),)
        input_names.append("detail")
    # With an error head, "rgb" has the expected error as a fourth channel.
    refittable = hasattr(model.generator, "colour_head")  # a reference image can refit its colour head
    edit = functools.partial(expose_head, model_config=model.generator_config) if refittable else None
    return write_onnx(model.generator.cpu(), example, input_names, metadata, out, opset, edit)


def _head_conv(graph):
    """The heads' stacked convolution (colour, gain, error) and the node giving the features it reads: the only
    full (not depthwise) Conv reading an edge-padded output of ``mix``."""
    producers = {out: node for node in graph.node for out in node.output}
    for node in graph.node:
        pad = producers.get(node.input[0]) if node.op_type == "Conv" else None
        groups = next((a.i for a in node.attribute if a.name == "group"), 1)
        if pad is not None and pad.op_type == "Pad" and producers.get(pad.input[0], pad).name.startswith("/mix/") and groups == 1:
            return node, pad.input[0]
    raise SarcolorError("the model has no colour head that a reference can refit (not a LiteColorNet export)")


def expose_head(proto, model_config: dict) -> None:
    """Give an exported LiteColorNet graph the ``features`` output (what its heads read) and a second convolution
    beside its stacked head convolution, on the same padded features, whose weight and bias are inputs defaulting
    to zero (``HEAD_WEIGHT``, ``HEAD_BIAS``): its output is added to the heads', so a
    refit feeds the difference to the trained head; fed nothing, it adds exact zeros, and the trained head keeps
    its constant weights and the optimisations onnxruntime makes with them, so the RGB output is bit for bit what
    it was. What the refit needs to know is metadata (``HEAD_KEY``)."""
    from onnx import helper, numpy_helper

    graph = proto.graph
    conv, features = _head_conv(graph)
    initializers = {init.name: init for init in graph.initializer}
    weights = [numpy_helper.to_array(initializers[name]) for name in conv.input[1:3]]
    for name, value in zip((HEAD_WEIGHT, HEAD_BIAS), weights):
        graph.initializer.append(numpy_helper.from_array(value * 0, name))
        graph.input.append(helper.make_tensor_value_info(name, 1, list(value.shape)))
    change = helper.make_node("Conv", [conv.input[0], HEAD_WEIGHT, HEAD_BIAS], ["/head_change_output"], name="/head_change")
    change.attribute.extend(conv.attribute)
    nodes = [change]
    # Added after the upsampling to 1/4 where there is one (a copy upsamples the change): an Add right after the
    # trained convolution is fused into it, which changes the order of its sums.
    consumers = [node for node in graph.node if conv.output[0] in node.input]
    trained = consumers[0] if len(consumers) == 1 and consumers[0].op_type == "Resize" else conv
    if trained is not conv:
        resized = helper.make_node("Resize", [change.output[0], *trained.input[1:]], ["/head_change_resized"],
                                   name="/head_change_resize")
        resized.attribute.extend(trained.attribute)
        nodes.append(resized)
    heads = trained.output[0]
    trained.output[0] = f"{heads}_trained"
    nodes.append(helper.make_node("Add", [trained.output[0], nodes[-1].output[0]], [heads], name="/head_refit"))
    at = list(graph.node).index(trained) + 1
    for node in reversed(nodes):
        graph.node.insert(at, node)
    graph.node.append(helper.make_node("Identity", [features], [FEATURES_OUTPUT], name="/features_output"))
    graph.output.append(helper.make_tensor_value_info(FEATURES_OUTPUT, 1, ["batch", weights[0].shape[1], "head_height", "head_width"]))
    entry = proto.metadata_props.add()
    entry.key = HEAD_KEY
    entry.value = json.dumps({
        "head_pool": model_config.get("head_pool", 1), "smoothing": model_config.get("smoothing", 2.0),
        "chroma_gain": model_config.get("chroma_gain", 1.0), "heads": int(weights[0].shape[0]),
        "trained_weight": weights[0][:3].tolist(), "trained_bias": weights[1][:3].tolist(),
    })
