"""Model backends: a loaded model is a plain callable (N,1,h,w) float32 -> (N,C,h,w) float32.

C is 3 (RGB), or 4 for a model with an error head (``has_error``): the fourth channel is the expected
mean absolute colour error per pixel, which ``error_calibration`` turns into expected CIEDE2000.

onnxruntime runs exported models (the default model is one) and needs no torch; torch runs
training checkpoints (``.pt``) and needs the ``train`` extra. Both carry the SAR convention the
model was trained with, read from the checkpoint or the ONNX metadata.
"""
from __future__ import annotations

import copy
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path

import numpy as np

from sarcolor.errors import SarcolorError, check_choice, first_line
from sarcolor.novelty import TrainingPlaces, TrainingScenes

log = logging.getLogger(__name__)

CONVENTION_KEY = "sar_convention"
MULTIPLE_KEY = "size_multiple"
CALIBRATION_KEY = "error_calibration"
UNCALIBRATED_KEY = "error_uncalibrated"  # why a model's confidence map has no calibration (sarcolor.export)
TRAINING_SCENES_KEY = "training_scenes"
TRAINING_PLACES_KEY = "training_places"  # lon/lat boxes of the training regions (sarcolor.novelty.TrainingPlaces)
# What a reference image refits (sarcolor.reference, sarcolor.export.expose_head): the head's input features as a
# second output, a change to the stacked head convolution's weight and bias as inputs defaulting to zero, and under
# HEAD_KEY the head's resolution, blur, saturation and trained colour rows.
HEAD_KEY = "reference_head"
FEATURES_OUTPUT = "features"
HEAD_WEIGHT, HEAD_BIAS = "head_weight", "head_bias"
DEVICES = ("auto", "cpu", "cuda")


# Models shipped in sarcolor/weights, by the name --model accepts in place of a path, with a short
# description for the web page. Both are one network (default.onnx) at two detail strengths:
# default: colour plus the SAR's own detail; smooth: the colour alone, the highest PSNR/SSIM
# (README, "The bundled models").
BUNDLED_MODELS = {"default": "photo-like", "smooth": "most accurate per pixel, soft"}
BUNDLED_DETAIL = {"default": 1.0, "smooth": 0.0}


def bundled_model_path(name: str = "default") -> Path:
    del name  # every bundled model is the one network; the name sets its detail strength
    return Path(str(resources.files("sarcolor") / "weights" / "default.onnx"))


def check_detail(value: float | None) -> None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise SarcolorError(f"--detail must be in [0, 1], got {value:g}")


class DetailControl:
    """The detail strength of a model that has one (0: smooth colour only, 1: the full SAR detail)."""

    has_detail = False
    detail = 1.0
    has_error = False  # a fourth output channel: the expected colour error
    error_calibration: dict | None = None  # {"slope", "intercept"}: expected error -> expected CIEDE2000
    error_uncalibrated: str | None = None  # without a calibration: why (e.g. a fine-tune's val pairs were too few)
    training_scenes: TrainingScenes | None = None  # statistics of the training scenes, for novelty warnings
    training_places: TrainingPlaces | None = None  # where the model learned, for "far from the training places" notices

    def with_detail(self, value: float | None) -> "DetailControl":
        """This model at another detail strength (the weights are shared); None keeps the current one."""
        if value is None:
            return self
        check_detail(value)
        if not self.has_detail:
            raise SarcolorError("this model has no detail control (--detail needs a model trained with a detail head)")
        other = copy.copy(self)
        other.detail = float(value)
        return other


def default_model_path() -> Path:
    return bundled_model_path("default")


def session_layout(threads: int, use_cuda: bool) -> tuple[int, int]:
    """How many onnxruntime sessions a model runs, and the intra-op threads of each (0: onnxruntime's default).

    On a CPU of two cores or more, two sessions of half the threads each, each on half of every batch at once:
    one session's threads wait on each other at the end of each of the graph's many small operations, while two
    independent ones keep the cores busy (model alone, 2 x 512² on 2 cores: 1.25x; docs/benchmarks.md)."""
    cores = threads or os.cpu_count() or 1
    if use_cuda or cores < 2:
        return 1, threads
    return 2, cores // 2


class OnnxModel(DetailControl):
    def __init__(self, path: Path, device: str = "auto", threads: int = 0) -> None:
        import onnxruntime as ort

        available = ort.get_available_providers()
        if device == "cuda" and "CUDAExecutionProvider" not in available:
            raise SarcolorError("--device cuda asked for, but onnxruntime has no CUDA provider (install onnxruntime-gpu)")
        use_cuda = device in ("cuda", "auto") and "CUDAExecutionProvider" in available
        providers = (["CUDAExecutionProvider"] if use_cuda else []) + ["CPUExecutionProvider"]
        sessions, session_threads = session_layout(threads, use_cuda)
        session_options = ort.SessionOptions()
        session_options.intra_op_num_threads = session_threads
        # Idle worker threads sleep instead of spinning: the strip reader and GDAL's DEFLATE threads run beside
        # the model on the same cores, and spinning took a third of a 2-core run's CPU time from them.
        session_options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # onnxruntime's errors only: the refittable head's inputs with defaults draw a warning at every load, which users
        # cannot act on (the warning is logged before a session's own level applies, so the process's level is set).
        ort.set_default_logger_severity(3)
        try:
            self.sessions = [ort.InferenceSession(str(path), session_options, providers=providers) for _ in range(sessions)]
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise SarcolorError(f"cannot load model {path}: {first_line(exc)}") from None
        self._beside = ThreadPoolExecutor(1, thread_name_prefix="sarcolor-model") if sessions > 1 else None
        session = self.sessions[0]
        meta = session.get_modelmeta().custom_metadata_map
        if CONVENTION_KEY not in meta:
            raise SarcolorError(f"model {path} has no {CONVENTION_KEY} metadata: export it with `sarcolor export`")
        self.convention = json.loads(meta[CONVENTION_KEY])
        self.multiple = int(meta.get(MULTIPLE_KEY, 16))
        inputs = session.get_inputs()
        self.input_name = inputs[0].name
        self.output_names = [session.get_outputs()[0].name]  # the image (and error); not the features
        self.has_detail = len(inputs) > 1
        self.has_error = session.get_outputs()[0].shape[1] == 4
        self.error_calibration = json.loads(meta[CALIBRATION_KEY]) if CALIBRATION_KEY in meta else None
        self.error_uncalibrated = meta.get(UNCALIBRATED_KEY)
        if TRAINING_SCENES_KEY in meta:
            self.training_scenes = TrainingScenes.from_json(meta[TRAINING_SCENES_KEY])
        if TRAINING_PLACES_KEY in meta:
            self.training_places = TrainingPlaces.from_json(meta[TRAINING_PLACES_KEY])
        self.device = "cuda" if use_cuda else "cpu"
        self.head = json.loads(meta[HEAD_KEY]) if HEAD_KEY in meta else None  # what a reference refits
        self.head_change: dict[str, np.ndarray] = {}  # fed to the refittable head (a reference's fit); none: as trained

    def with_head_change(self, weight: np.ndarray, bias: np.ndarray, error_calibration: dict | None = None) -> "OnnxModel":
        """This model with ``weight`` and ``bias`` added to its stacked head convolution's (sarcolor.reference), and
        with ``error_calibration`` (where given) in place of its own: the error head's calibration on the reference."""
        other = copy.copy(self)
        other.head_change = {HEAD_WEIGHT: weight.astype(np.float32), HEAD_BIAS: bias.astype(np.float32)}
        if error_calibration is not None:
            other.error_calibration = error_calibration
        return other

    def features(self, batch: np.ndarray) -> np.ndarray:
        """What the heads read (N, C, h / f, w / f), f 4 or 8 (the head's resolution): the features a reference's
        colours are fitted on."""
        return self.sessions[0].run([FEATURES_OUTPUT], self._feed(np.ascontiguousarray(batch, dtype=np.float32)))[0]

    def features_and_outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``features`` and the model's outputs (RGB, and the expected error where it has an error head) of one run."""
        features, outputs = self.sessions[0].run([FEATURES_OUTPUT, self.output_names[0]],
                                                 self._feed(np.ascontiguousarray(batch, dtype=np.float32)))
        return features, outputs

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if self._beside is None or len(batch) < 2:
            return self._run(self.sessions[0], batch)
        half = (len(batch) + 1) // 2
        second = self._beside.submit(self._run, self.sessions[1], batch[half:])
        return np.concatenate([self._run(self.sessions[0], batch[:half]), second.result()])

    def _feed(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        feed = {self.input_name: batch, **self.head_change}
        if self.has_detail:
            feed["detail"] = np.array([self.detail], np.float32)
        return feed

    def _run(self, session, batch: np.ndarray) -> np.ndarray:
        return session.run(self.output_names, self._feed(batch))[0]


class TorchModel(DetailControl):
    def __init__(self, path: Path, device: str = "auto", threads: int = 0) -> None:
        try:
            import torch
        except ImportError:
            raise SarcolorError(f"{path} is a torch checkpoint: install sarcolor[train] to use it") from None
        from sarcolor.config import config_from_dict
        from sarcolor.models import build_generator
        from sarcolor.checkpoint import load_weights, read_checkpoint, resolve_device

        self.torch = torch
        if threads:
            torch.set_num_threads(threads)
        self.device = resolve_device(device)
        state = read_checkpoint(path, self.device, ("config", "ema", "sar_convention"))
        self.generator = build_generator(config_from_dict(state["config"]).model).to(self.device).eval()
        load_weights(self.generator, state["ema"], path)
        self.convention = state["sar_convention"]
        self.generator_config = state["config"]["model"]
        self.multiple = self.generator.multiple
        self.has_detail = hasattr(self.generator, "gain_head")
        self.has_error = getattr(self.generator, "error_head", None) is not None
        self.error_calibration = state.get(CALIBRATION_KEY)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            sar = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
            if self.has_detail:
                return self.generator(sar, torch.tensor([self.detail], device=self.device)).float().cpu().numpy()
            return self.generator(sar).float().cpu().numpy()


def bundled_name(path: str | Path | None) -> str | None:
    """The bundled model ``path`` names (None: the default), or None when it is a file."""
    if not path:
        return "default"
    return str(path) if str(path) in BUNDLED_MODELS and not Path(path).exists() else None


def resolve_model_path(path: str | Path | None) -> Path:
    """The absolute path of a model given as a file, a bundled model's name, or None (the default)."""
    name = bundled_name(path)
    if name is not None:
        path = bundled_model_path(name)
    path = Path(path)
    if not path.is_file():
        raise SarcolorError(f"model not found: {path} (bundled models: {', '.join(BUNDLED_MODELS)})")
    return path.resolve()


def load_model(path: str | Path | None = None, device: str = "auto", threads: int = 0, detail: float | None = None):
    """The model at ``path`` (.onnx or .pt), or a bundled model by name (None: the default); threads 0 = the backend's default.

    ``detail`` sets the detail strength (0..1) of a model that has one; None: the bundled model's own
    (default 1, smooth 0), or 1 for a file.
    """
    check_choice("--device", device, DEVICES)
    check_detail(detail)
    resolved = resolve_model_path(path)
    backend = TorchModel if resolved.suffix in (".pt", ".pth") else OnnxModel
    model = backend(resolved, device, threads)
    name = bundled_name(path)
    if name is not None:
        model.detail = BUNDLED_DETAIL[name]
    model = model.with_detail(detail)
    if model.has_error and model.error_uncalibrated:
        log.info("%s: confidence map uncalibrated (%s): it gives the expected mean absolute error in 8-bit levels, "
                 "not CIEDE2000", resolved.name, model.error_uncalibrated)
    log.debug("model %s on %s, detail %s", resolved.name, model.device, model.detail if model.has_detail else "n/a")
    return model
