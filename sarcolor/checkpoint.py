"""The checkpoint format, apart from training: the SAR convention, reading and atomically saving
checkpoints, loading their weights, device choice, and the one ONNX writer (export and benchmarks).

Inference (``backends.TorchModel``) reads checkpoints through this module and never imports training.
"""
from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import torch

from sarcolor.errors import SarcolorError, first_line, write_failure

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
    except FileNotFoundError:
        raise SarcolorError(f"{context}checkpoint not found: {path}") from None
    except Exception:  # noqa: BLE001 - torch's restricted unpickler fails on foreign files with any error type
        # torch's own message is pages long and advises weights_only=False, which would run code from the file
        raise SarcolorError(f"{context}{path} is not a sarcolor training checkpoint (.pt): torch cannot read it as one") from None
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
    with _temporary(tmp, path):
        torch.save(obj, tmp)
        os.replace(tmp, path)


def write_onnx(module: torch.nn.Module, example: tuple, input_names: list[str], metadata: dict[str, str], out: Path,
               opset: int = 17, edit: Callable | None = None) -> Path:
    """Export ``module`` with dynamic batch, height and width (of "sar" and "rgb") and string metadata;
    ``edit(proto)`` changes the graph before it is saved; written to a temporary file and renamed."""
    import onnx

    dynamic = {0: "batch", 2: "height", 3: "width"}
    tmp = out.with_name(f".{out.name}.tmp")
    with _temporary(tmp, out):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module, example, str(tmp), input_names=input_names, output_names=["rgb"],
                dynamic_axes={"sar": dynamic, "rgb": dynamic}, opset_version=opset, dynamo=False,
            )
        proto = onnx.load(str(tmp))
        # Channels are fixed (3, or 4 with an error head); the export cannot always infer that through reshapes.
        with torch.no_grad():
            channels = module(*example).shape[1]
        proto.graph.output[0].type.tensor_type.shape.dim[1].dim_value = channels
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        if edit is not None:
            edit(proto)
        onnx.save(proto, str(tmp))
        tmp.replace(out)
    return out


@contextmanager
def _temporary(tmp: Path, target: Path) -> Iterator[None]:
    """Writing ``target`` through ``tmp``: on any failure the temporary file goes (a full disk gets its space
    back) and the existing target stays; a failed write (torch reports a full disk as a RuntimeError) is one
    user error."""
    try:
        yield
    except (OSError, RuntimeError) as exc:
        error = write_failure(target, exc)
        tmp.unlink(missing_ok=True)
        raise error from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
