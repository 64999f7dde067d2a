"""sarcolor: Sentinel-1 SAR to natural-colour RGB, scene-scale, georeferencing kept."""

__version__ = "0.1.0"
