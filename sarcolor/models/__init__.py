"""Networks, defined once and built from config."""
from sarcolor.models.discriminator import MultiScaleDiscriminator, PatchDiscriminator
from sarcolor.models.generator import SarColorNet

__all__ = ["MultiScaleDiscriminator", "PatchDiscriminator", "SarColorNet", "build_generator", "build_discriminator"]


def build_generator(model_config) -> SarColorNet:
    return SarColorNet(
        widths=tuple(model_config.widths),
        depths=tuple(model_config.depths),
        decoder_depths=tuple(model_config.decoder_depths),
    )


def build_discriminator(disc_config) -> MultiScaleDiscriminator:
    return MultiScaleDiscriminator(
        in_channels=4,
        base_channels=disc_config.base_channels,
        n_layers=disc_config.n_layers,
        scales=disc_config.scales,
    )
