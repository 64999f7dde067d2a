"""Build the QGIS plugin's zip, the file QGIS's "Install from ZIP" takes: dist/sarcolor_qgis-VERSION.zip with
the plugin folder (qgis_plugin/sarcolor_qgis) at its top level.

The plugin's version, e-mail and links are the package's, written into the zip's metadata.txt from
sarcolor/__init__.py (``__version__``) and pyproject.toml (``authors``, ``[project.urls]``): one source of truth,
so the plugin and the package cannot disagree.

    python scripts/build_qgis_plugin.py                 # -> dist/sarcolor_qgis-0.1.0.zip
    python scripts/build_qgis_plugin.py --out-dir /tmp
"""
from __future__ import annotations

import argparse
import ast
import configparser
import io
import logging
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "qgis_plugin" / "sarcolor_qgis"
PLUGIN_FILES = ("*.py", "metadata.txt", "*.png")

log = logging.getLogger("build_qgis_plugin")


def package_version(root: Path = ROOT) -> str:
    """``sarcolor.__version__``, read without importing sarcolor (and its dependencies)."""
    module = ast.parse((root / "sarcolor" / "__init__.py").read_text(encoding="utf-8"))
    for node in module.body:
        if isinstance(node, ast.Assign) and any(getattr(target, "id", None) == "__version__" for target in node.targets):
            return ast.literal_eval(node.value)
    raise ValueError("sarcolor/__init__.py sets no __version__")


def pyproject(root: Path = ROOT) -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))


def package_metadata(root: Path = ROOT) -> dict[str, str]:
    """The plugin's metadata fields that the package decides."""
    project = pyproject(root)["project"]
    urls = project["urls"]
    return {"version": package_version(root), "email": project["authors"][0]["email"],
            "homepage": urls["Homepage"], "repository": urls["Repository"], "tracker": urls["Issues"]}


def plugin_metadata(plugin: Path = PLUGIN, root: Path = ROOT) -> str:
    """metadata.txt as it goes into the zip: the plugin's own fields, then the package's."""
    metadata = configparser.ConfigParser(interpolation=None)
    metadata.optionxform = str  # QGIS's keys are camelCase (qgisMinimumVersion)
    metadata.read(plugin / "metadata.txt", encoding="utf-8")
    metadata["general"].update(package_metadata(root))
    text = io.StringIO()
    metadata.write(text, space_around_delimiters=False)
    return text.getvalue()


def plugin_files(plugin: Path = PLUGIN) -> list[Path]:
    """The files the plugin is made of, not caches or editor leftovers."""
    return sorted({path for pattern in PLUGIN_FILES for path in plugin.glob(pattern)})


def build_zip(out_dir: Path, plugin: Path = PLUGIN) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{plugin.name}-{package_version()}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in plugin_files(plugin):
            if path.name == "metadata.txt":
                archive.writestr(f"{plugin.name}/{path.name}", plugin_metadata(plugin))
            else:
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
