"""Export a training checkpoint's EMA generator to ONNX with its SAR convention as metadata."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

from sarcolor.backends import CONVENTION_KEY, MULTIPLE_KEY, TorchModel
from sarcolor.errors import SarcolorError


def export_onnx(checkpoint: str | Path, out: str | Path, opset: int = 17) -> Path:
    """Write an ONNX model with dynamic batch, height and width; returns the output path."""
    import onnx
    import torch

    checkpoint, out = Path(checkpoint), Path(out)
    if not checkpoint.is_file():
        raise SarcolorError(f"checkpoint not found: {checkpoint}")
    if not out.parent.is_dir():
        raise SarcolorError(f"output folder does not exist: {out.parent}")
    model = TorchModel(checkpoint, device="cpu")
    example = (torch.zeros(1, 1, 64, 64),)
    dynamic = {0: "batch", 2: "height", 3: "width"}
    input_names = ["sar"]
    if model.has_detail:  # the detail strength is a second input, so one file serves every strength
        example += (torch.ones(1),)
        input_names.append("detail")
    tmp = out.with_name(f".{out.name}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.generator.cpu(),
            example,
            str(tmp),
            input_names=input_names,
            output_names=["rgb"],
            dynamic_axes={"sar": dynamic, "rgb": dynamic},
            opset_version=opset,
            dynamo=False,
        )
    proto = onnx.load(str(tmp))
    for key, value in ((CONVENTION_KEY, json.dumps(model.convention)), (MULTIPLE_KEY, str(model.multiple))):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(tmp))
    tmp.replace(out)
    return out
