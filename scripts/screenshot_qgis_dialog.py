"""Screenshot of the plugin's algorithm dialog in QGIS (docs/qgis_dialog.png), the coast example as its input.

Run with QGIS's Python (Debian: /usr/bin/python3 with python3-qgis) under Xvfb, outside sarcolor's venv:

    xvfb-run -a -s "-screen 0 1280x1024x24" /usr/bin/python3 scripts/screenshot_qgis_dialog.py
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COAST = ROOT / "examples" / "s1_vh_coast_california.tif"
TARGET = ROOT / "docs" / "qgis_dialog.png"
SIZE = (780, 780)


def settle(app, seconds: float = 1.0) -> None:
    """Let Qt lay the dialog out and paint it."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def main() -> None:
    os.environ.setdefault("QGIS_CUSTOM_CONFIG_PATH", tempfile.mkdtemp(prefix="qgis_profile_"))  # not the user's profile
    from qgis.core import QgsApplication, QgsProject, QgsRasterLayer

    app = QgsApplication([], True)
    app.initQgis()
    sys.path[:0] = ["/usr/share/qgis/python/plugins", str(ROOT / "qgis_plugin")]
    from processing.core.Processing import Processing
    from processing.gui.AlgorithmDialog import AlgorithmDialog

    import sarcolor_qgis

    Processing.initialize()
    plugin = sarcolor_qgis.classFactory(None)
    plugin.initProcessing()
    layer = QgsRasterLayer(str(COAST), COAST.stem)
    QgsProject.instance().addMapLayer(layer)
    dialog = AlgorithmDialog(QgsApplication.processingRegistry().createAlgorithmById("sarcolor:colorize"))
    dialog.setParameters({"INPUT": layer.id()})
    dialog.resize(*SIZE)
    dialog.show()
    settle(app)
    dialog.grab().save(str(TARGET))
    print(f"wrote {TARGET}")
    dialog.close()
    plugin.unload()
    app.exitQgis()


if __name__ == "__main__":
    main()
