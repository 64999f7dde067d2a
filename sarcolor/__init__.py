"""sarcolor: Sentinel-1 SAR to natural-colour RGB, scene-scale, georeferencing kept.

The Python API (``colorize``, ``load_model``, ``Model``) is imported on first use, so the CLI does not load it.
"""

__version__ = "0.1.0"
__all__ = ["Model", "colorize", "load_model"]


def __getattr__(name: str):
    if name in __all__:
        from sarcolor import api

        return getattr(api, name)
    raise AttributeError(f"module 'sarcolor' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
