"""The checkpoint format, apart from training: the SAR convention, reading and atomically saving
checkpoints, loading their weights, device choice, and the one ONNX writer (export and benchmarks).

Inference (``backends.TorchModel``) reads checkpoints through this module and never imports training.
"""
from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import torch

from sarcolor.errors import SarcolorError, first_line

# How the training data was scaled; stored in every checkpoint and exported model.
SAR_CONVENTION = {"polarisation": "VH", "quantity": "amplitude", "quantile": 0.99, "clip": 1.0}
LAST = "last.pt"  # a training run's latest state, written every train.checkpoint_every steps
BEST = "best.pt"  # with train.val_every: the state whose weights scored best on val (plus its "val_mse")
RESUME_KEYS = ("generator", "ema", "opt_g", "step", "torch_rng")  # what --resume needs of a checkpoint


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SarcolorError("--device cuda asked for, but no CUDA device is available")
    return torch.device(name)


def read_checkpoint(path: str | Path, device: torch.device, keys: tuple[str, ...], context: str = "") -> dict:
    """A checkpoint's saved state, holding at least ``keys``; else one user error naming the file."""
    try:
        # weights_only: a checkpoint is tensors, numbers, strings and plain containers; unpickling anything
        # else could run code that came with the file.
        state = torch.load(path, map_location=device, weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, TypeError, pickle.UnpicklingError) as exc:
        raise SarcolorError(f"{context}cannot load checkpoint {path}: {first_line(exc)}") from None
    missing = [key for key in keys if not isinstance(state, dict) or key not in state]
    if missing:
        raise SarcolorError(f"{context}{path} is not a sarcolor training checkpoint (no {', '.join(missing)})")
    return state


def load_weights(module: torch.nn.Module, weights: dict, path: str | Path) -> None:
    """Load saved weights into a module built from config; a mismatch (other architecture) is a user error."""
    try:
        module.load_state_dict(weights)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise SarcolorError(f"checkpoint {path} does not fit the configured model: {first_line(exc)}") from None


def atomic_torch_save(obj: dict, path: Path) -> None:
    """Save to a temp file and rename, so a kill mid-save never leaves a truncated checkpoint."""
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def write_onnx(module: torch.nn.Module, example: tuple, input_names: list[str], metadata: dict[str, str], out: Path,
               opset: int = 17) -> Path:
    """Export ``module`` with dynamic batch, height and width (of "sar" and "rgb") and string metadata;
    written to a temporary file and renamed."""
    import onnx

    dynamic = {0: "batch", 2: "height", 3: "width"}
    tmp = out.with_name(f".{out.name}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, example, str(tmp), input_names=input_names, output_names=["rgb"],
            dynamic_axes={"sar": dynamic, "rgb": dynamic}, opset_version=opset, dynamo=False,
        )
    proto = onnx.load(str(tmp))
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(tmp))
    tmp.replace(out)
    return out
