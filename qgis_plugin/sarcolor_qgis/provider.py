"""The "sarcolor" Processing provider: its algorithm and its one setting, the sarcolor executable."""
from pathlib import Path

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .algorithm import EXECUTABLE_SETTING, ColorizeAlgorithm

ICON = Path(__file__).with_name("icon.png")


class SarcolorProvider(QgsProcessingProvider):
    def id(self):
        return "sarcolor"

    def name(self):
        return "sarcolor"

    def longName(self):  # noqa: N802
        return "sarcolor: Sentinel-1 SAR to natural colour"

    def icon(self):
        return QIcon(str(ICON))

    def load(self):
        from processing.core.ProcessingConfig import ProcessingConfig, Setting

        ProcessingConfig.settingIcons[self.name()] = self.icon()
        ProcessingConfig.addSetting(Setting(
            self.name(), EXECUTABLE_SETTING,
            "sarcolor executable, e.g. /home/me/sarcolor/.venv/bin/sarcolor (empty: $SARCOLOR_EXECUTABLE, else "
            "sarcolor in QGIS's Python if it has it, else sarcolor on the PATH)",
            "", valuetype=Setting.STRING,
        ))
        ProcessingConfig.readSettings()
        self.refreshAlgorithms()
        return True

    def unload(self):
        from processing.core.ProcessingConfig import ProcessingConfig

        ProcessingConfig.removeSetting(EXECUTABLE_SETTING)

    def loadAlgorithms(self):  # noqa: N802
        self.addAlgorithm(ColorizeAlgorithm())

    def supportedOutputRasterLayerExtensions(self):  # noqa: N802
        return ["tif", "png", "jpg"]
