"""Sentinel-1 GRD products with pixels, for tests, from the real product metadata of ../shared/data/s1-products.

The real product there (S1A IW GRDH 1SDV, 2021-01-19) has its manifest, annotation, calibration and noise
tables but no measurement TIFFs. This script writes them, and cuts the product down to a miniature small
enough to commit:

- ``write_measurement``: a measurement TIFF of a product's full size, tiled and sparse (only the written
  blocks take disk space), DN 0 (the GRD no-data fill) everywhere except a window whose DNs are made from
  sigma0 values chosen by the caller, through the product's own calibration and noise tables:
  DN = sqrt(sigma0 * A_sigma² + noise), rounded.
- ``cut_product``: the product cut to a window of lines and samples: its calibration, noise and geolocation
  tables keep the vectors and points around the window, re-indexed to it, and the annotation loses the
  sections GDAL and sarcolor do not read (orbit, attitude, antenna pattern, Doppler: 3 of its 3.3 MB).

``python scripts/make_grd_fixture.py`` writes tests/data/grd_mini/ (committed): the real product cut to
576 x 576 px across the IW1/IW2 sub-swath boundary, its VH band holding the real SAR texture of
examples/s1_vh_coast_california.tif as sigma0 (``example_sigma0``) inside a 32 px no-data border, its VV
band empty (all no-data). Copernicus Sentinel data 2021 (metadata) and 2020 (texture), modified.
"""
from __future__ import annotations

import argparse
import io
import shutil
import tempfile
import warnings
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

from sarcolor.readers.calibration import GrdCalibration
from sarcolor.readers.safe import Manifest

ROOT = Path(__file__).resolve().parents[1]
REAL_PRODUCT = ROOT.parent / "shared" / "data" / "s1-products" / "S1A_IW_GRDH_1SDV_20210119T031653_20210119T031718_036201_043ED0_8255.zip"
EXAMPLE = ROOT / "examples" / "s1_vh_coast_california.tif"
MINI = ROOT / "tests" / "data" / "grd_mini"
# The miniature: lines 4000-4575 and samples 8500-9075 of the real product (IW1 ends at sample 8742).
MINI_WINDOW = (4000, 8500, 576, 576)  # first line, first sample, lines, samples
MINI_BORDER = 32  # px of DN 0 (no data) around the texture
EXAMPLE_MEDIAN_DB = -18.0  # sigma0 given to the example's median: a typical VH land level
# Annotation sections nobody reads here (the bulk of its size).
UNREAD_ANNOTATION = (
    "generalAnnotation/downlinkInformationList", "generalAnnotation/orbitList", "generalAnnotation/attitudeList",
    "generalAnnotation/rawDataAnalysisList", "generalAnnotation/replicaInformationList", "generalAnnotation/noiseList",
    "generalAnnotation/azimuthFmRateList", "dopplerCentroid", "antennaPattern", "coordinateConversion", "swathMerging",
)


def extract_product(zip_path: Path, folder: Path) -> Path:
    """Unzip a product into ``folder``; returns its .SAFE folder."""
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(folder)
        root = next(n for n in archive.namelist() if n.endswith("manifest.safe")).rsplit("/", 1)[0]
    return folder / root


def product_size(safe: Path, annotation: str) -> tuple[int, int]:
    info = ET.parse(safe / annotation).getroot().find("imageAnnotation/imageInformation")
    return int(info.findtext("numberOfLines")), int(info.findtext("numberOfSamples"))


def calibration_of(safe: Path, manifest: Manifest, pol: str) -> GrdCalibration:
    read = (safe / manifest.files[("calibration", pol)]).read_bytes, (safe / manifest.files[("noise", pol)]).read_bytes
    return GrdCalibration.from_xml(read[0](), read[1](), pol)


def dn_from_sigma0(calibration: GrdCalibration, sigma0: np.ndarray, row: int, col: int) -> np.ndarray:
    """The DNs a GRD holds for ``sigma0`` placed at (row, col): the inverse of sigma0 = (DN² - noise) / A²."""
    rows, cols = np.arange(row, row + sigma0.shape[0]), np.arange(col, col + sigma0.shape[1])
    power = sigma0 * np.square(calibration.sigma.at(rows, cols)) + calibration.noise(rows, cols)
    return np.clip(np.rint(np.sqrt(np.maximum(power, 0))), 1, 65535).astype(np.uint16)


def write_measurement(safe: Path, pol: str, sigma0: np.ndarray | None = None, row: int = 0, col: int = 0) -> Path:
    """Write the ``pol`` measurement TIFF of the product in ``safe``: full size, sparse, DN 0 except ``sigma0``
    (linear, float) at (row, col)."""
    manifest = Manifest.parse((safe / "manifest.safe").read_bytes(), str(safe))
    height, width = product_size(safe, manifest.files[("annotation", pol)])
    path = safe / manifest.files[("measurement", pol)]
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(driver="GTiff", width=width, height=height, count=1, dtype="uint16", tiled=True,
                   blockxsize=256, blockysize=256, compress="deflate", predictor=2, sparse_ok=True)
    with warnings.catch_warnings(), rasterio.open(path, "w", **profile) as dst:
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # a measurement TIFF's place is in the annotation
        if sigma0 is not None:
            dn = dn_from_sigma0(calibration_of(safe, manifest, pol), sigma0, row, col)
            dst.write(dn, 1, window=Window(col, row, dn.shape[1], dn.shape[0]))
    return path


def example_sigma0() -> np.ndarray:
    """The coast example's real texture as sigma0: its amplitude scaled so its median is EXAMPLE_MEDIAN_DB."""
    with rasterio.open(EXAMPLE) as src:
        amplitude = src.read(1).astype(np.float64) / 255.0
    amplitude *= 10 ** (EXAMPLE_MEDIAN_DB / 20) / np.median(amplitude)
    return np.square(amplitude)


def shift_text(element: ET.Element, offset: int) -> None:
    element.text = str(int(element.text) - offset)


def shift_numbers(text: str, offset: float) -> str:
    return " ".join(f"{int(v) - offset:d}" for v in text.split())


def keep_around(positions: np.ndarray, first: int, last: int) -> np.ndarray:
    """Indexes of ``positions`` (ascending) inside [first, last] plus one on each side: enough to interpolate."""
    lo = max(np.searchsorted(positions, first, "right") - 1, 0)
    hi = min(np.searchsorted(positions, last, "left") + 1, len(positions) - 1)
    return np.arange(lo, hi + 1)


def cut_vector_list(parent: ET.Element, vector_tag: str, value_tags: tuple[str, ...], window: tuple[int, int, int, int]) -> None:
    """Keep the vectors (line, pixel, values) around ``window``, re-indexed to it."""
    line0, pixel0, lines, pixels = window
    vectors = parent.findall(vector_tag)
    keep = set(keep_around(np.array([int(v.findtext("line")) for v in vectors]), line0, line0 + lines - 1))
    for i, vector in enumerate(vectors):
        if i not in keep:
            parent.remove(vector)
            continue
        shift_text(vector.find("line"), line0)
        pixel = vector.find("pixel")
        positions = np.array(pixel.text.split(), dtype=int)
        kept = keep_around(positions, pixel0, pixel0 + pixels - 1)
        pixel.text = shift_numbers(" ".join(map(str, positions[kept])), pixel0)
        pixel.set("count", str(len(kept)))
        for tag in value_tags:
            values = vector.find(tag)
            values.text = " ".join(np.array(values.text.split())[kept])
            values.set("count", str(len(kept)))
    parent.set("count", str(len(parent.findall(vector_tag))))


def cut_azimuth_noise(parent: ET.Element, window: tuple[int, int, int, int]) -> None:
    line0, pixel0, lines, pixels = window
    for vector in parent.findall("noiseAzimuthVector"):
        first, last = int(vector.findtext("firstRangeSample")), int(vector.findtext("lastRangeSample"))
        if last < pixel0 or first > pixel0 + pixels - 1:
            parent.remove(vector)
            continue
        for tag, offset, low, high in (("firstAzimuthLine", line0, 0, lines - 1), ("lastAzimuthLine", line0, 0, lines - 1),
                                       ("firstRangeSample", pixel0, 0, pixels - 1), ("lastRangeSample", pixel0, 0, pixels - 1)):
            element = vector.find(tag)
            element.text = str(int(np.clip(int(element.text) - offset, low, high)))
        positions = np.array(vector.findtext("line").split(), dtype=int)
        kept = keep_around(positions, line0, line0 + lines - 1)
        vector.find("line").text = shift_numbers(" ".join(map(str, positions[kept])), line0)
        lut = vector.find("noiseAzimuthLut")
        lut.text = " ".join(np.array(lut.text.split())[kept])
        for element in (vector.find("line"), lut):
            element.set("count", str(len(kept)))
    parent.set("count", str(len(parent.findall("noiseAzimuthVector"))))


def cut_annotation(root: ET.Element, window: tuple[int, int, int, int]) -> None:
    line0, pixel0, lines, pixels = window
    for path in UNREAD_ANNOTATION:
        parent_path, _, tag = path.rpartition("/")
        parent = root.find(parent_path) if parent_path else root
        for element in parent.findall(tag):
            parent.remove(element)
    info = root.find("imageAnnotation/imageInformation")
    info.find("numberOfLines").text, info.find("numberOfSamples").text = str(lines), str(pixels)
    grid = root.find("geolocationGrid/geolocationGridPointList")
    points = grid.findall("geolocationGridPoint")
    node_lines = np.unique([int(p.findtext("line")) for p in points])
    node_pixels = np.unique([int(p.findtext("pixel")) for p in points])
    keep_lines = set(node_lines[keep_around(node_lines, line0, line0 + lines - 1)])
    keep_pixels = set(node_pixels[keep_around(node_pixels, pixel0, pixel0 + pixels - 1)])
    for point in points:
        if int(point.findtext("line")) in keep_lines and int(point.findtext("pixel")) in keep_pixels:
            shift_text(point.find("line"), line0)
            shift_text(point.find("pixel"), pixel0)
        else:
            grid.remove(point)
    grid.set("count", str(len(grid.findall("geolocationGridPoint"))))


def write_xml(root: ET.Element, path: Path) -> None:
    buffer = io.BytesIO()
    ET.ElementTree(root).write(buffer, encoding="UTF-8", xml_declaration=True)
    path.write_bytes(buffer.getvalue())


def cut_product(safe: Path, out: Path, window: tuple[int, int, int, int]) -> Path:
    """Copy the product's manifest and tables into ``out`` (a .SAFE folder), cut to ``window``."""
    manifest = Manifest.parse((safe / "manifest.safe").read_bytes(), str(safe))
    out.mkdir(parents=True)
    shutil.copy(safe / "manifest.safe", out / "manifest.safe")
    for (role, _pol), relative in manifest.files.items():
        if role == "measurement":
            continue
        root = ET.parse(safe / relative).getroot()
        if role == "annotation":
            cut_annotation(root, window)
        elif role == "calibration":
            cut_vector_list(root.find("calibrationVectorList"), "calibrationVector", ("sigmaNought", "betaNought", "gamma", "dn"), window)
        elif role == "noise":
            cut_vector_list(root.find("noiseRangeVectorList"), "noiseRangeVector", ("noiseRangeLut",), window)
            cut_azimuth_noise(root.find("noiseAzimuthVectorList"), window)
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        write_xml(root, out / relative)
    return out


def make_mini(real_zip: Path, out: Path, work: Path) -> Path:
    safe = extract_product(real_zip, work)
    mini = cut_product(safe, out / safe.name, MINI_WINDOW)
    texture = example_sigma0()
    size = MINI_WINDOW[2] - 2 * MINI_BORDER
    write_measurement(mini, "VH", texture[:size, :size], MINI_BORDER, MINI_BORDER)
    write_measurement(mini, "VV")
    return mini


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--product", type=Path, default=REAL_PRODUCT)
    parser.add_argument("--out", type=Path, default=MINI)
    args = parser.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    with tempfile.TemporaryDirectory() as work:
        mini = make_mini(args.product, args.out, Path(work))
    size = sum(p.stat().st_size for p in mini.rglob("*") if p.is_file())
    print(f"wrote {mini} ({size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
