"""QGIS plugin: "Colourise SAR (sarcolor)" in the Processing Toolbox."""


def classFactory(iface):  # noqa: N802  (the name QGIS calls)
    from .plugin import SarcolorPlugin

    return SarcolorPlugin(iface)
