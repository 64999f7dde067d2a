"""Typed run configuration, loaded from YAML; every run saves its resolved copy next to its checkpoints."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from sarcolor.errors import SarcolorError, first_line


@dataclass
class ModelConfig:
    # lite0 (LiteColorNet: frozen pretrained EfficientNet-Lite0 + colour and detail heads; the bundled models'),
    # sarcolor (SarColorNet, the earlier from-scratch design; the default of older configs) | pix2pix (the 54M U-Net-256 reference)
    arch: str = "sarcolor"
    lateral_width: int = 32  # lite0: channels taken from each encoder tap
    head_width: int = 64  # lite0: width of the head at 1/4 resolution
    head_depth: int = 2  # lite0: ConvNeXt blocks in the head
    # lite0: 2 runs the head (mix and the head convolutions) at 1/8 resolution on 2x2-averaged inputs, its outputs
    # upsampled to 1/4 before the fixed blurs: a quarter of the head's cost, and the blurred outputs barely need
    # 1/4 (issue 23, experiments/README.md session 13); 1 = at 1/4.
    head_pool: int = 1
    taps: int = 3  # lite0: encoder features used, at SAR strides 8, 16, 32 (and 64 with 4)
    smoothing: float = 2.0  # lite0: sigma (1/4-resolution pixels) of the fixed blur on the heads' outputs; 0 = none
    error_head: bool = False  # lite0: a fourth output channel, the expected colour error per pixel (loss.error_nll trains it)
    # lite0: fixed, not trained: colours pushed away from each pixel's grey by this factor. Squared error
    # desaturates (it averages the possible colours); the bundled model's 1.25 was chosen on train scenes
    # (configs/confidence.yaml, experiments/README.md).
    chroma_gain: float = 1.0
    # lite0: fixed, not trained: a further blur (sigma, 1/4-resolution pixels) of the detail gains only, on top of
    # ``smoothing``. Smoother gains add texture that depends less on where a crop starts, and less wrong texture.
    detail_smoothing: float = 0.0
    # The fields below apply to arch sarcolor only.
    widths: tuple[int, int, int] = (48, 96, 192)
    depths: tuple[int, int, int] = (1, 2, 4)
    decoder_depths: tuple[int, int] = (2, 1)
    log_input: bool = True  # also feed log10 amplitude: SAR gain and speckle are multiplicative
    stem_norm: bool = False  # LayerNorm after the stem (removes local brightness; kept for the ablation)
    context_sigmas: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)  # SpeckleContext scales at 1/4 res; () = off
    prior_width: int = 64  # hidden width of the per-pixel colour prior on the context; 0 = off
    # Output head: shuffle = 48 channels at 1/4 res pixel-shuffled to full res (learns fixed 4x4 stamps under a
    # texture loss); detail = colour at 1/4 res, upsampled, plus learned gains on full-res SAR high-pass bands.
    head: str = "shuffle"
    despeckle: str = "none"  # none | lee: Lee filter (7x7, 4.4 looks) on the amplitude inside the model, before everything else


@dataclass
class DiscriminatorConfig:
    base_channels: int = 32
    n_layers: int = 3
    scales: int = 1


@dataclass
class LossConfig:
    l1: float = 100.0
    mse: float = 0.0  # squared error: its optimum is the conditional mean, what PSNR rewards
    ssim: float = 0.0
    colour_swd: float = 0.0  # sliced Wasserstein distance between predicted and real colour distributions
    texture_swd: float = 0.0  # the same between distributions of texture_patch^2 pixel patches, at texture_scales scales
    texture_patch: int = 5
    texture_scales: int = 2
    adversarial: float = 1.0
    feature_matching: float = 0.0
    gan_mode: str = "lsgan"  # lsgan | hinge | vanilla
    shift_consistency: float = 0.0  # mean |difference| between predictions of two crops shifted by < data.shift_max px, on their overlap
    colour_space: str = "rgb"  # rgb | lab: space of the l1 and mse terms (lab: CIELAB / 100, the space of ΔE)
    vgg: float = 0.0  # VGG16 perceptual distance to the real image (the metric's channel-normalised features)
    error_nll: float = 0.0  # Laplace negative log-likelihood of the colour error under the error channel (model.error_head)


@dataclass
class DataConfig:
    root: str = "../shared/data/s1s2-pairs"
    train_split: str = "train"
    val_split: str = "val"
    crop_size: int = 256
    batch_size: int = 8
    shift_max: int = 32  # with loss.shift_consistency: each crop comes with a copy shifted by 1..shift_max-1 px
    gain_jitter: float = 0.0  # random SAR gain in [1/(1+g), 1+g], mimics other scene normalisations
    # Mirror every pair (train and val) by this many px on each side before cropping: tiles smaller than a crop are
    # then seen whole, with the mirrored margins colorize gives a small image (finetune on 120 px tiles: 36).
    pad: int = 0


@dataclass
class TrainConfig:
    steps: int = 2000
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    lr_decay_start: int = 0  # step after which lr decays linearly to 0 at the last step (0: constant lr)
    ema_decay: float = 0.999
    gan_start_step: int = 0  # L1-only warm-up before the discriminator joins
    checkpoint_every: int = 100
    log_every: int = 10
    sample_every: int = 500  # samples.png and loss_curves.png in out_dir
    seed: int = 0
    train_only: tuple[str, ...] = ()  # train only the generator parameters under these module names (e.g. gain_head); () = all
    init_from: str = ""  # start from this checkpoint's (EMA) generator weights: every tensor whose name and shape match
    max_minutes: float = 0.0  # stop (with a checkpoint) after this much wall-clock time; 0 = run all steps
    # Every val_every steps, score the EMA generator (squared error) on centre crops of the val split; the best
    # weights so far are kept as best.pt. With patience, stop after that many scores without improvement.
    val_every: int = 0
    patience: int = 0
    val_at_start: bool = False  # with val_every: score the starting weights too, so best.pt is never worse than them on val
    # Before the first step (lite0, a fresh run): the closed-form start (sarcolor.ridge.closed_form_start), the model
    # as it is or with its input standardisation and colour head refitted on ridge_crops train crops, whichever does
    # better on val. finetune also refits the error head on those crops (sarcolor.ridge.fit_error_head).
    ridge_start: bool = False
    ridge_crops: int = 64
    device: str = "auto"
    threads: int = 0  # torch intra-op threads; 0 = torch default


@dataclass
class RunConfig:
    out_dir: str = "runs/default"
    model: ModelConfig = field(default_factory=ModelConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise SarcolorError(f"unknown config key(s) in {where}: {', '.join(sorted(unknown))}")
    kwargs = {}
    for name, value in values.items():
        default = getattr(cls(), name)
        if dataclasses.is_dataclass(default):
            if not isinstance(value, dict):
                raise SarcolorError(f"config key {where}.{name} must be a mapping")
            kwargs[name] = _build(type(default), value, f"{where}.{name}")
        elif isinstance(default, tuple):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def config_from_dict(values: dict[str, Any]) -> RunConfig:
    return _build(RunConfig, values or {}, "config")


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Load a YAML config (or defaults when path is None) and apply dotted-key overrides."""
    values: dict[str, Any] = {}
    if path is not None:
        try:
            values = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError:
            raise SarcolorError(f"config file not found: {path}") from None
        except yaml.YAMLError as exc:
            raise SarcolorError(f"config file {path} is not valid YAML: {first_line(exc)}") from None
        if not isinstance(values, dict):
            raise SarcolorError(f"config file {path} must hold a mapping")
    return config_from_dict(apply_overrides(values, overrides))


def apply_overrides(values: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """``values`` (a config as plain data) with each dotted-key override ("train.seed": 1) set in place."""
    for dotted, value in (overrides or {}).items():
        node = values
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return values


def with_overrides(config: RunConfig, overrides: dict[str, Any]) -> RunConfig:
    """``config`` with dotted-key overrides applied and checked as a loaded config's are."""
    return config_from_dict(apply_overrides(config_to_dict(config), overrides))


def config_to_dict(config: RunConfig) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))


def save_config(config: RunConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))
