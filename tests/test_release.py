"""What a published package needs: one version number everywhere, a licence, a citation, a complete plugin."""
from __future__ import annotations

import configparser
import sys
import zipfile

import pytest

import sarcolor
from conftest import ROOT, run_cli_process

sys.path.insert(0, str(ROOT / "scripts"))
import build_qgis_plugin  # noqa: E402

PLACEHOLDERS = ("example.org", "example.com", "TODO", "changeme")
pyproject = build_qgis_plugin.pyproject


def test_the_package_takes_its_version_from_sarcolor_and_the_cli_prints_it():
    project = pyproject()
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "sarcolor.__version__"}
    done = run_cli_process("--version", check=True)  # `python -m sarcolor` itself, started as users start it
    assert done.stdout.strip() == f"sarcolor {sarcolor.__version__}"


def test_the_plugin_zip_carries_the_package_version_and_contacts(tmp_path):
    with zipfile.ZipFile(build_qgis_plugin.build_zip(tmp_path)) as archive:
        metadata = configparser.ConfigParser(interpolation=None)
        metadata.read_string(archive.read("sarcolor_qgis/metadata.txt").decode())
    general = metadata["general"]
    project = pyproject()["project"]
    assert general["version"] == sarcolor.__version__
    assert general["email"] == project["authors"][0]["email"]
    assert (general["homepage"], general["repository"], general["tracker"]) == (
        project["urls"]["Homepage"], project["urls"]["Repository"], project["urls"]["Issues"])
    assert general["qgisMinimumVersion"] == "3.22"  # the plugin's own fields survive the rewrite
    text = "\n".join(general.values())
    assert not [word for word in PLACEHOLDERS if word in text]


def test_the_source_metadata_leaves_the_package_fields_to_the_build():
    """metadata.txt in the source holds no version or contact of its own that could drift from the package's."""
    metadata = configparser.ConfigParser(interpolation=None)
    metadata.read(ROOT / "qgis_plugin" / "sarcolor_qgis" / "metadata.txt")
    assert not set(build_qgis_plugin.package_metadata()) & set(metadata["general"])


def test_licence_and_citation_agree_with_the_package():
    yaml = pytest.importorskip("yaml")
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert pyproject()["project"]["license"] == "MIT"
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["license"] == "MIT"
    assert str(citation["version"]) == sarcolor.__version__
    assert citation["repository-code"] == pyproject()["project"]["urls"]["Repository"]
