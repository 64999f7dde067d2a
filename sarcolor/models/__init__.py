"""Networks, defined once and built from config."""
from sarcolor.models.discriminator import MultiScaleDiscriminator, PatchDiscriminator
from sarcolor.errors import check_choice
from sarcolor.models.generator import SarColorNet
from sarcolor.models.litecolor import LiteColorNet
from sarcolor.models.pix2pix import Pix2PixUNet

__all__ = ["MultiScaleDiscriminator", "PatchDiscriminator", "LiteColorNet", "Pix2PixUNet", "SarColorNet", "build_generator", "build_discriminator"]


def build_generator(model_config, pretrained: bool = False) -> LiteColorNet | SarColorNet | Pix2PixUNet:
    """The configured generator; ``pretrained`` loads ImageNet weights into a lite0 encoder (a fresh training run)."""
    check_choice("model.arch", model_config.arch, ("lite0", "sarcolor", "pix2pix"))
    if model_config.arch == "pix2pix":
        return Pix2PixUNet()
    if model_config.arch == "lite0":
        return LiteColorNet(
            model_config.lateral_width, model_config.head_width, model_config.head_depth, model_config.taps,
            model_config.smoothing, pretrained, model_config.error_head, model_config.chroma_gain,
            model_config.detail_smoothing, model_config.head_pool,
        )
    return SarColorNet(
        widths=tuple(model_config.widths),
        depths=tuple(model_config.depths),
        decoder_depths=tuple(model_config.decoder_depths),
        log_input=model_config.log_input,
        stem_norm=model_config.stem_norm,
        context_sigmas=tuple(model_config.context_sigmas),
        prior_width=model_config.prior_width,
        head=model_config.head,
        despeckle=model_config.despeckle,
    )


def build_discriminator(disc_config) -> MultiScaleDiscriminator:
    return MultiScaleDiscriminator(
        in_channels=4,
        base_channels=disc_config.base_channels,
        n_layers=disc_config.n_layers,
        scales=disc_config.scales,
    )
