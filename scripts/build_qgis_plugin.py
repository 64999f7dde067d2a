"""Build the QGIS plugin's zip, the file QGIS's "Install from ZIP" takes: dist/sarcolor_qgis-VERSION.zip with
the plugin folder (qgis_plugin/sarcolor_qgis) at its top level, the version from the plugin's metadata.txt.

    python scripts/build_qgis_plugin.py                 # -> dist/sarcolor_qgis-0.1.0.zip
    python scripts/build_qgis_plugin.py --out-dir /tmp
"""
from __future__ import annotations

import argparse
import configparser
import logging
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "qgis_plugin" / "sarcolor_qgis"
PLUGIN_FILES = ("*.py", "metadata.txt", "*.png")

log = logging.getLogger("build_qgis_plugin")


def plugin_version(plugin: Path = PLUGIN) -> str:
    metadata = configparser.ConfigParser()
    metadata.read(plugin / "metadata.txt", encoding="utf-8")
    return metadata["general"]["version"]


def plugin_files(plugin: Path = PLUGIN) -> list[Path]:
    """The files the plugin is made of, not caches or editor leftovers."""
    return sorted({path for pattern in PLUGIN_FILES for path in plugin.glob(pattern)})


def build_zip(out_dir: Path, plugin: Path = PLUGIN) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{plugin.name}-{plugin_version(plugin)}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in plugin_files(plugin):
            archive.write(path, f"{plugin.name}/{path.name}")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "dist", help="Folder for the zip (default: dist/).")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log.info("wrote %s", build_zip(args.out_dir))


if __name__ == "__main__":
    main()
