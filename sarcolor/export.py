"""Export a training checkpoint's EMA generator to ONNX with its SAR convention as metadata."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from sarcolor.backends import CALIBRATION_KEY, CONVENTION_KEY, MULTIPLE_KEY, TRAINING_SCENES_KEY, UNCALIBRATED_KEY, TorchModel
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
    return write_onnx(model.generator.cpu(), example, input_names, metadata, out, opset)
