"""The Processing algorithm "Colourise SAR (sarcolor)": QGIS parameters in, a ``runner.Request`` out."""
import json

from qgis.core import (
    QgsColorRampShader, QgsProcessingAlgorithm, QgsProcessingContext, QgsProcessingException,
    QgsProcessingLayerPostProcessorInterface, QgsProcessingOutputRasterLayer, QgsProcessingParameterBand,
    QgsProcessingParameterBoolean, QgsProcessingParameterEnum, QgsProcessingParameterFile, QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination, QgsProcessingParameterRasterLayer, QgsProcessingParameterString, QgsRasterShader,
    QgsSingleBandPseudoColorRenderer,
)
from qgis.PyQt.QtGui import QColor

from . import runner

EXECUTABLE_SETTING = "SARCOLOR_EXECUTABLE"

HELP = """Colourises one band of a Sentinel-1 SAR layer into a natural-colour, optical-like RGB image on the same grid \
(CRS, transform and nodata kept).

<b>Band</b>: leave it empty for sarcolor's choice: the VH (cross-polarisation) band where the layer says which \
band is which (band descriptions, a Sentinel-1 product's manifest), else band 1. The bundled models expect VH.
<b>Model</b>: default (photo-like colour and texture) or smooth (most accurate per pixel, soft), or a model file.
<b>Detail</b>: 0 gives the smooth colour alone, 1 the full SAR detail; empty: the model's own.
<b>Confidence map</b>: also writes NAME_confidence.tif, the expected colour error per pixel (higher = less sure).
<b>Input scale</b>: the unit of the values; auto decides from the data type, the values and the metadata.
(qgis_process takes Model and Input scale by name, e.g. --MODEL=smooth, or by number, e.g. --MODEL=1.)
<b>Optical reference</b>: an optical image of the same place (any date and CRS, clouds allowed: they are found \
and left out), e.g. a Sentinel-2 GeoTIFF; the colours are fitted on its clear pixels, right where the model alone only \
guesses. A Sentinel-2 raster of more than four bands is read as its bands B4, B3, B2.
<b>Fill cloud gaps</b>: keeps the reference's clear pixels as they are and uses the SAR's colours \
only under its clouds and in its gaps, feathered at the edges.
<b>VV (HH)</b>: a layer whose band is named VV or HH (co-polarisation) is refused unless this is ticked; its colours are then less faithful, and the log says so.

sarcolor runs as the command set in Processing options > Providers > sarcolor (or $SARCOLOR_EXECUTABLE) \
when one is set, else in QGIS's Python when sarcolor is installed there, else as sarcolor on the PATH."""


class ColorizeAlgorithm(QgsProcessingAlgorithm):
    INPUT = "INPUT"
    BAND = "BAND"
    MODEL = "MODEL"
    MODEL_FILE = "MODEL_FILE"
    DETAIL = "DETAIL"
    CONFIDENCE = "CONFIDENCE"
    INPUT_SCALE = "INPUT_SCALE"
    DB_RANGE = "DB_RANGE"
    ALLOW_CO_POL = "ALLOW_CO_POL"
    REFERENCE = "REFERENCE"
    FILL = "FILL"
    REFERENCE_SAR = "REFERENCE_SAR"
    OUTPUT = "OUTPUT"
    CONFIDENCE_MAP = "CONFIDENCE_MAP"
    # sarcolor's messages name its CLI flags: each is shown as the parameter of this dialog that sets it.
    FLAGS = {"--band": BAND, "--model": MODEL, "--detail": DETAIL, "--confidence": CONFIDENCE,
             "--input-scale": INPUT_SCALE, "--db-range": DB_RANGE, "--allow-co-pol": ALLOW_CO_POL,
             "--reference": REFERENCE, "--fill": FILL, "--reference-sar": REFERENCE_SAR}

    def name(self):
        return "colorize"

    def displayName(self):  # noqa: N802
        return "Colourise SAR (sarcolor)"

    def shortHelpString(self):  # noqa: N802
        return HELP

    def tags(self):
        return ["sar", "sentinel-1", "colourise", "colorize", "rgb", "optical", "vh"]

    def createInstance(self):  # noqa: N802
        return ColorizeAlgorithm()

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "SAR layer"))
        self.addParameter(QgsProcessingParameterBand(
            self.BAND, "Band (empty: automatic)", parentLayerParameterName=self.INPUT, optional=True))
        self.addParameter(QgsProcessingParameterEnum(
            self.MODEL, "Model", options=list(runner.BUNDLED_MODELS), defaultValue="default", usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL_FILE, "Model file instead (.onnx, or a training checkpoint .pt)", optional=True,
            fileFilter="sarcolor models (*.onnx *.pt)"))
        self.addParameter(QgsProcessingParameterNumber(
            self.DETAIL, "Detail strength, 0..1 (empty: the model's own)", type=QgsProcessingParameterNumber.Double,
            optional=True, minValue=0.0, maxValue=1.0))
        self.addParameter(QgsProcessingParameterBoolean(self.CONFIDENCE, "Also write a confidence map", defaultValue=False))
        self.addParameter(QgsProcessingParameterEnum(
            self.INPUT_SCALE, "Input scale", options=list(runner.INPUT_SCALES), defaultValue="auto",
            usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterString(
            self.DB_RANGE, "dB levels of an 8-bit dB export's 0 and 255, LO,HI (empty: -25,0)", optional=True))
        self.addParameter(QgsProcessingParameterBoolean(
            self.ALLOW_CO_POL, "Allow a VV (HH) band (the models expect VH)",
            defaultValue=False))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.REFERENCE, "Optical reference image of the same place (optional)", optional=True))
        self.addParameter(QgsProcessingParameterBoolean(
            self.FILL, "Fill cloud gaps in the reference (keep its clear pixels, SAR colours under its clouds)",
            defaultValue=False))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.REFERENCE_SAR, "SAR layer of the reference's date, for an older reference (optional)", optional=True))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Colourised"))
        self.addOutput(QgsProcessingOutputRasterLayer(self.CONFIDENCE_MAP, "Confidence map"))

    def checkParameterValues(self, parameters, context):  # noqa: N802
        return super().checkParameterValues(self.with_choice_names(parameters), context)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        layer = self.input_layer(parameters, context)
        request = self.request(self.with_choice_names(parameters), context, layer)
        try:
            used = runner.colorize(request, feedback, executable_setting())
        except runner.RunError as exc:
            raise QgsProcessingException(str(exc)) from None
        except runner.Cancelled:
            raise QgsProcessingException("cancelled: no output written") from None
        feedback.pushInfo(f"colourised with {used}")
        results = {self.OUTPUT: request.output}
        if context.willLoadLayerOnCompletion(request.output):
            context.layerToLoadOnCompletionDetails(request.output).name = f"{layer.name()} colourised"
        if request.confidence:
            results[self.CONFIDENCE_MAP] = str(runner.confidence_output(request.output))
            details = QgsProcessingContext.LayerDetails(f"{layer.name()} confidence map", context.project(), self.CONFIDENCE_MAP)
            details.setPostProcessor(LegendStyle.create())
            context.addLayerToLoadOnCompletion(results[self.CONFIDENCE_MAP], details)
        return results

    def with_choice_names(self, parameters) -> dict:
        """``parameters`` with each option list's choice as its name: given by name, or by its number as
        ``qgis_process help`` says (``--MODEL=1``)."""
        named = dict(parameters)
        for name in (self.MODEL, self.INPUT_SCALE):
            value, options = named.get(name), self.parameterDefinition(name).options()
            if isinstance(value, (int, str)) and str(value).isdigit() and int(value) < len(options):
                named[name] = options[int(value)]
        return named

    def option_names(self) -> str:
        """The table (``sarcolor.option_names.OptionNames`` as JSON) that names sarcolor's flags by this dialog's labels."""
        names = {}
        for flag, name in self.FLAGS.items():
            definition = self.parameterDefinition(name)
            ticked = " ticked" if isinstance(definition, QgsProcessingParameterBoolean) else ""
            names[flag] = f"'{definition.description()}'{ticked}"
        return json.dumps({"names": names, "style": "label"})

    def input_layer(self, parameters, context):
        return self.file_layer(parameters, self.INPUT, context)

    def reference_path(self, parameters, context):
        """The optical reference layer's file, or None when none is given."""
        return self.optional_file(parameters, self.REFERENCE, context)

    def optional_file(self, parameters, name, context):
        """The file of the optional raster layer ``name``, or None when none is given."""
        return self.file_layer(parameters, name, context).source() if parameters.get(name) else None

    def file_layer(self, parameters, name, context):
        """The raster layer of parameter ``name``, a file GDAL reads."""
        layer = self.parameterAsRasterLayer(parameters, name, context)
        if layer is None:
            raise QgsProcessingException(self.invalidRasterError(parameters, name))
        if layer.providerType() != "gdal":
            raise QgsProcessingException(f"{layer.name()} is a {layer.providerType()} layer: sarcolor reads files (GDAL layers)")
        return layer

    def request(self, parameters, context, layer) -> runner.Request:
        return runner.Request(
            input=layer.source(),
            output=self.parameterAsOutputLayer(parameters, self.OUTPUT, context),
            band=self.parameterAsInt(parameters, self.BAND, context) or None,
            model=self.parameterAsFile(parameters, self.MODEL_FILE, context)
            or self.parameterAsEnumString(parameters, self.MODEL, context),
            detail=self.optional_double(parameters, self.DETAIL, context),
            confidence=self.parameterAsBoolean(parameters, self.CONFIDENCE, context),
            input_scale=self.parameterAsEnumString(parameters, self.INPUT_SCALE, context),
            db_range=self.parameterAsString(parameters, self.DB_RANGE, context).strip() or None,
            allow_co_pol=self.parameterAsBoolean(parameters, self.ALLOW_CO_POL, context),
            reference=self.reference_path(parameters, context),
            fill=self.parameterAsBoolean(parameters, self.FILL, context),
            reference_sar=self.optional_file(parameters, self.REFERENCE_SAR, context),
            option_names=self.option_names(),
        )

    def optional_double(self, parameters, name, context):
        """None when the parameter is left empty (parameterAsDouble would give 0)."""
        value = parameters.get(name)
        return None if value is None or value == "" else self.parameterAsDouble(parameters, name, context)


class LegendStyle(QgsProcessingLayerPostProcessorInterface):
    """Shows a loaded confidence map in the legend its file carries (its ``legend`` tag: sarcolor's one legend,
    the web page's too), on a fixed range rather than the layer's own stretch."""

    instance = None  # Processing keeps a plain pointer to the post-processor: Python must keep the object

    @classmethod
    def create(cls) -> "LegendStyle":
        cls.instance = cls()
        return cls.instance

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        stops = legend_stops(layer.source())
        if not stops:
            feedback.pushInfo(f"{layer.name()}: no legend in the file (an older sarcolor): left in grey")
            return
        ramp = QgsColorRampShader(stops[0][0], stops[-1][0])
        ramp.setColorRampType(QgsColorRampShader.Interpolated)
        ramp.setColorRampItemList([QgsColorRampShader.ColorRampItem(value, QColor(colour), f"{value:g}") for value, colour in stops])
        shader = QgsRasterShader()
        shader.setRasterShaderFunction(ramp)
        renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)
        renderer.setClassificationMin(stops[0][0])
        renderer.setClassificationMax(stops[-1][0])
        layer.setRenderer(renderer)
        layer.triggerRepaint()


def legend_stops(path: str) -> list:
    """The [value, "#rrggbb"] stops of a confidence map's legend tag, or [] where it has none."""
    from osgeo import gdal

    dataset = gdal.Open(path)
    text = dataset.GetMetadataItem("legend") if dataset is not None else None
    try:
        return [(float(value), str(colour)) for value, colour in json.loads(text)] if text else []
    except (ValueError, TypeError):
        return []


def executable_setting() -> str:
    from processing.core.ProcessingConfig import ProcessingConfig

    return (ProcessingConfig.getSetting(EXECUTABLE_SETTING) or "").strip()
