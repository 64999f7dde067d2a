"""sarcolor's Python API: ``colorize`` a SAR scene given as an xarray DataArray, a NumPy array or a path, and
``load_model`` for code that colours many.

Every input goes through the readers, tiling and blending the CLI uses, so the API returns the pixels
``sarcolor colorize`` writes. A Dask-backed DataArray stays lazy: its scaling is measured on the whole scene
(one decimated pass), then each chunk is coloured with the halo its tiles need (``sarcolor.blockwise``).
"""
from __future__ import annotations

import functools
import logging
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from sarcolor import backends
from sarcolor.blockwise import colorize_chunks, colorize_window, fill_chunks, valid_chunks
from sarcolor.errors import SarcolorError
from sarcolor.infer import ColorizeOptions, error_map_tags, far_notice, fit_scene_for, open_as_options_say, tile_plan
from sarcolor.option_names import OptionNames, named_for
from sarcolor.readers.raster import SarReader
from sarcolor.reference.apply import FitScene, check_reference_sar, fitted_reference, with_reference_detail
from sarcolor.reference.fill import DetachedReference, check_fill, filled_colours
from sarcolor.xarrays import (
    Grid, confidence_dataarray, dataarray_dataset, import_xarray, is_dask, is_dataarray, numpy_dataset,
    raster_grid, rgb_dataarray,
)

log = logging.getLogger(__name__)

# The CLI's options, as messages name them, as this API's keywords (``colorize``, ``load_model``).
OPTION_NAMES = OptionNames({
    "--input-scale": "input_scale", "--db-range": "db_range", "--band": "band", "--allow-co-pol": "allow_co_pol=True",
    "--model": "model", "--detail": "detail", "--confidence": "confidence=True", "--device": "device", "--tile": "tile",
    "--overlap": "overlap", "--batch-size": "batch_size", "--reference": "reference", "--reference-bands": "reference_bands",
    "--reference-sar": "reference_sar", "--fill": "fill=True",
})


@functools.lru_cache(maxsize=8)
def _loaded(name: str, device: str, threads: int):
    """One loaded network per process, model and device: a Dask worker loads it for its first chunk only."""
    return backends.load_model(name, device, threads)


class Model:
    """A colourising model, loaded once, with what it expects and gives.

    Call it on a batch (N, 1, h, w) float32 of model input for (N, C, h, w) float32 outputs in [0, 1]; pass it
    to ``colorize`` to colour scenes. Pickled (to Dask workers) it travels as its name and settings, and each
    process loads the network once.
    """

    def __init__(self, name: str = "default", device: str = "auto", threads: int = 0, detail: float | None = None,
                 head_change: tuple[np.ndarray, np.ndarray] | None = None, error_calibration: dict | None = None):
        self.name, self.threads, self._device = name, threads, device
        self._net = _loaded(name, device, threads).with_detail(detail)
        # A reference's fit (sarcolor.reference) and its calibration of the error head, travelling with the model to workers
        self.head_change, self._error_calibration = head_change, error_calibration
        if head_change is not None:
            self._net = self._net.with_head_change(*head_change, error_calibration)

    @property
    def path(self) -> Path:
        return backends.resolve_model_path(self.name)

    @property
    def device(self) -> str:
        """Where it runs: cpu or cuda."""
        return self._net.device

    @property
    def convention(self) -> dict:
        """The scaling of its input: {'polarisation', 'quantity', 'quantile', 'clip'} (amplitude / quantile, clipped)."""
        return dict(self._net.convention)

    @property
    def expected_input(self) -> str:
        c = self.convention
        return (f"one band of Sentinel-1 {c.get('polarisation', 'VH')} {c.get('quantity', 'amplitude')}, divided by the "
                f"scene's {c['quantile']:.0%} quantile and clipped to [0, {c.get('clip', 1.0):g}]")

    @property
    def multiple(self) -> int:
        """Tile sizes must be a multiple of this."""
        return self._net.multiple

    @property
    def detail(self) -> float | None:
        """Detail strength (0: smooth colour only, 1: the SAR's full detail); None for a model without one."""
        return self._net.detail if self._net.has_detail else None

    @property
    def has_detail(self) -> bool:
        return self._net.has_detail

    @property
    def detail_range(self) -> tuple[float, float] | None:
        return (0.0, 1.0) if self._net.has_detail else None

    @property
    def has_error(self) -> bool:
        """Whether it predicts its own colour error (``colorize(..., confidence=True)``)."""
        return self._net.has_error

    @property
    def error_calibration(self) -> dict | None:
        """How its error channel becomes expected CIEDE2000: the line of its validation scenes ({'slope', 'intercept',
        ...}), or with a reference the monotone map of its held-out clear places ({'levels', 'ciede2000', ...}); or None."""
        return self._net.error_calibration

    @property
    def training_scenes(self):
        """Statistics of its training scenes: a scene far from them gets a warning."""
        return self._net.training_scenes

    @property
    def training_places(self):
        """Where it learned (lon/lat boxes): a scene far from them gets a notice that suggests a reference."""
        return self._net.training_places

    def with_detail(self, detail: float | None) -> Model:
        """This model at another detail strength (the network is shared); None keeps this one's."""
        if detail is None:
            return self
        return Model(self.name, self._device, self.threads, detail, self.head_change, self._error_calibration)

    def with_head_change(self, weight: np.ndarray, bias: np.ndarray, error_calibration: dict | None = None) -> Model:
        """This model with a reference's fit added to its heads (``sarcolor.reference``), and the error head's
        calibration on the reference where given."""
        return Model(self.name, self._device, self.threads, self.detail, (weight, bias), error_calibration)

    @property
    def head(self) -> dict | None:
        """What a reference refits (None: this model cannot take one)."""
        return getattr(self._net, "head", None)

    def features(self, batch: np.ndarray) -> np.ndarray:
        return self._net.features(batch)

    def features_and_outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._net.features_and_outputs(batch)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self._net(batch)

    def __reduce__(self):
        return Model, (self.name, self._device, self.threads, self.detail, self.head_change, self._error_calibration)

    def __repr__(self) -> str:
        return f"Model({self.name!r}, device={self.device!r}, detail={self.detail}, has_error={self.has_error})"


@named_for(OPTION_NAMES)
def load_model(model: str | Path = "default", device: str = "auto", threads: int = 0, detail: float | None = None) -> Model:
    """A bundled model by name ("default", "smooth") or a model file (.onnx, or .pt with the train extra).

    ``threads``: the backend's threads per call (0: its default); ``detail``: the detail strength in [0, 1]
    (None: the bundled model's own)."""
    name = backends.bundled_name(model) or str(backends.resolve_model_path(model))  # a file: absolute, for workers
    return Model(name, device, threads, detail)


@named_for(OPTION_NAMES)
def colorize(
    data, model: str | Path | Model = "default", detail: float | None = None, confidence: bool = False, *,
    band: int | None = None, input_scale: str = "auto", tile: int = 512, overlap: int = 32, batch_size: int = 2,
    device: str = "auto", allow_co_pol: bool = False, db_range: tuple[float, float] | str | None = None,
    reference: str | Path | None = None, reference_bands: tuple[int, int, int] | None = None,
    reference_sar: str | Path | None = None, fill: bool = False,
):
    """Colourise a SAR scene; returns its colours on the input's grid.

    ``data``: an ``xarray.DataArray`` (y, x) or (band, y, x) with rioxarray's CRS and transform, a NumPy array,
    or a path to anything ``sarcolor colorize`` reads (a GeoTIFF, a Sentinel-1 GRD product, a STAC Item's path or
    URL). ``band`` (1-based) picks the SAR band of a multi-band input; left out, a path's VH band (or VH file) is
    chosen as ``sarcolor colorize`` chooses it, and ``allow_co_pol`` lets a VV-only input through, with a warning.
    ``input_scale``: the unit of the values, as ``--input-scale``; ``db_range`` (LO, HI): the dB levels an 8-bit
    dB export's 0 and 255 stand for (default -25, 0 dB, Earth Engine's and SEN1-2's), as ``--db-range``.
    ``reference``: the path of an optical image of the same place, as ``--reference`` (``reference_bands`` as
    ``--reference-bands``): the colours are fitted on its clear pixels (a Dask-backed input stays lazy: the fit
    reads a few of its tiles at once; ``detail`` left out is then 0, the fitted colours alone). ``reference_sar``: a
    path to a SAR scene of the reference's date, as ``--reference-sar``: the colours are fitted there (read as
    ``data`` is read) and applied to ``data``. ``fill=True``, as ``--fill``: the reference's clear pixels are kept
    as they are and the SAR's colours used only in its gaps (clouds, nodata), joined without a seam.

    Returns a DataArray ``band: [red, green, blue]`` (uint8) with the input's CRS, transform and coordinates.
    Where the input has no data the colours are 0 and, for an input that can have nodata, the ``valid``
    coordinate (y, x) is False; no nodata value is set, since 0 is also a colour (dark water's red). Its
    attributes: ``model``, ``detail``, ``input_scale``, ``input_scale_reason``, and ``warnings`` when the scene is
    unlike the model's training data or its scale is doubtful. With ``confidence=True``, a Dataset of it
    (``rgb``) and ``confidence``: the expected colour error per pixel (float32, CIEDE2000 for the bundled model,
    NaN where there is no data).

    A Dask-backed DataArray gives a lazy result, coloured chunk by chunk (chunks of 2048 px or more spend
    little on their halos). Compute ``rgb`` and ``confidence`` together (``dask.compute(result.rgb,
    result.confidence)``), not one after the other, or the model runs twice.
    """
    import_xarray()
    net = model if isinstance(model, Model) else load_model(model, device)
    net = with_reference_detail(net.with_detail(detail), detail, reference)
    if confidence and not net.has_error:
        raise SarcolorError(f"confidence=True needs a model with an error head; {net.name} has none")
    if batch_size < 1:
        raise SarcolorError(f"batch_size must be at least 1, got {batch_size}")
    check_fill(fill, reference)
    check_reference_sar(reference_sar, reference)
    reading = ColorizeOptions(tile, overlap, band, input_scale, db_range, allow_co_pol=allow_co_pol, reference=reference,
                              reference_bands=reference_bands, reference_sar=reference_sar, fill=fill)
    if isinstance(data, (str, Path)):
        with open_as_options_say(data, net, reading) as scene:
            return _colorize_scene(scene.reader, raster_grid(scene.src), net, confidence, batch_size, reading,
                                   scene.provenance.start if scene.provenance else None)
    if is_dataarray(data):
        dataset, grid = dataarray_dataset(data, band)
    elif isinstance(data, np.ndarray) or is_dask(data):
        dataset, grid = numpy_dataset(data, band)
    else:
        raise SarcolorError(f"data must be an xarray.DataArray, a NumPy array or a path, not {type(data).__name__}")
    reader = SarReader(dataset, 1, input_scale, net.convention["quantile"], db_range=db_range)
    return _colorize_scene(reader, grid, net, confidence, batch_size, reading)


def _colorize_scene(reader: SarReader, grid: Grid, net: Model, confidence: bool, batch_size: int, reading: ColorizeOptions,
                    taken: datetime | None = None):
    plan = tile_plan(reader, reading.tile, reading.overlap, net)
    warning = reader.scene_warning(net.training_scenes)
    if reading.reference is None:
        warning = "; ".join(w for w in (warning, far_notice(net, reader.src)) if w) or None
    with ExitStack() as using:
        fitted, reference_tags = None, {}
        if reading.reference is not None:
            fit_on = fit_scene_for(reading, net, FitScene(reader.src, reader.read, plan, reader.metadata.name, taken), using)
            fitted = using.enter_context(fitted_reference(reading.reference, reader.src, net, fit_on, reading.reference_bands))
            net, reference_tags = fitted.model, fitted.tags(reading.fill)
            warning = "; ".join(w for w in (warning, fitted.date_notice) if w) or None
        log.debug("%s: %dx%d px, %d tiles", reader.metadata.name, reader.width, reader.height, plan.tile_count)
        data = getattr(reader.src, "data", None)
        if is_dask(data):
            colours = colorize_chunks(data, net, reader, plan, confidence, batch_size)
            rgb, error = (colours[:3].astype(np.uint8), colours[3]) if confidence else (colours, None)
            valid = valid_chunks(data, reader) if reader.may_have_invalid else None
            if reading.fill:  # each chunk opens the reference again: the one open here closes before the chunks run
                rgb = fill_chunks(rgb, valid, DetachedReference(Path(reading.reference), reader.src.without_data(),
                                                                reading.reference_bands, fitted.image.scale))
        else:
            whole = colorize_window(net, reader, plan, Window(0, 0, reader.width, reader.height), confidence, batch_size)
            rgb, error = whole.rgb, whole.error
            valid = whole.valid if reader.may_have_invalid else None
            if reading.fill:
                rgb = filled_colours(rgb, whole.valid, fitted.image, Window(0, 0, reader.width, reader.height))
    attrs = _attributes(net, reader, warning)
    attrs.update({key.removeprefix("SARCOLOR_").lower(): value for key, value in reference_tags.items()})
    colours_array = rgb_dataarray(rgb, grid, attrs, valid)
    if not confidence:
        return colours_array
    xarray = import_xarray()
    confidence_array = confidence_dataarray(error, grid, error_map_tags(net))
    return xarray.Dataset({"rgb": colours_array, "confidence": confidence_array}, attrs=attrs)


def _attributes(net: Model, reader: SarReader, warning: str | None) -> dict:
    attrs = {"model": net.name, "input_scale": reader.scale_decision.scale, "input_scale_reason": reader.scale_decision.reason}
    if net.detail is not None:
        attrs["detail"] = net.detail
    if warning:
        attrs["warnings"] = warning
    return attrs
