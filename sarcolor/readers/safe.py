"""Sentinel-1 GRD products as downloaded: a ``.SAFE`` folder, its ``manifest.safe``, or the ``.zip``.

The manifest says what the product is and which files hold each polarisation; the band the models
expect (the cross-polarisation: VH, or HV for HH+HV products) is read through GDAL's SAFE driver, which
also gives the annotation's geolocation grid as GCPs and reads inside zips (``/vsizip/``), and is
calibrated to sigma0 with thermal noise removed from the product's own tables (``calibration.py``).
"""
from __future__ import annotations

import logging
import math
import posixpath
import re
import warnings
import xml.etree.ElementTree as ET
import zipfile
import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

from sarcolor.errors import SarcolorError, first_line
from sarcolor.readers.calibration import GrdCalibration
from sarcolor.readers.polarisation import ALLOW_CO_POL_FLAG, CROSS_POLARISATIONS, co_pol_check

log = logging.getLogger(__name__)

MANIFEST = "manifest.safe"
# repID of the manifest's data objects: which file is what.
ROLES = {
    "s1Level1MeasurementSchema": "measurement",
    "s1Level1ProductSchema": "annotation",
    "s1Level1CalibrationSchema": "calibration",
    "s1Level1NoiseSchema": "noise",
}
POLARISATION_IN_NAME = re.compile(r"-(vv|vh|hh|hv)-", re.I)
CO_POLARISATIONS = ("VV", "HH")
CHECK_CHUNK = 2**22  # bytes read at a time when a zip member's CRC is checked


class ProductFiles(ABC):
    """The files of one product, wherever they are: ``read`` a file by its path inside the product."""

    def __init__(self, path: Path):
        self.path = path

    @property
    @abstractmethod
    def name(self) -> str:
        """The product's name (the .SAFE folder's, without the suffix)."""

    @abstractmethod
    def exists(self, relative: str) -> bool: ...

    @abstractmethod
    def read(self, relative: str) -> bytes: ...

    @abstractmethod
    def size(self, relative: str) -> int:
        """A file's size in bytes (uncompressed, in a zip)."""

    @abstractmethod
    def gdal_path(self, relative: str) -> str:
        """A file as GDAL opens it (the manifest: as GDAL's SAFE driver opens the product)."""

    def check_intact(self, relative: str) -> None:
        """Refuse a file the product's packaging says is damaged, for files GDAL reads without checking."""

    def close(self) -> None:
        """Release what the product holds open (a zip)."""


class FolderProduct(ProductFiles):
    """An unpacked product: the ``.SAFE`` folder."""

    @property
    def name(self) -> str:
        return self.path.name.removesuffix(".SAFE").removesuffix(".safe")

    def exists(self, relative: str) -> bool:
        return (self.path / relative).is_file()

    def read(self, relative: str) -> bytes:
        try:
            return (self.path / relative).read_bytes()
        except OSError as exc:
            raise SarcolorError(f"cannot read {self.path / relative}: {exc.strerror or first_line(exc)}") from None

    def size(self, relative: str) -> int:
        return (self.path / relative).stat().st_size

    def gdal_path(self, relative: str) -> str:
        return str(self.path / relative)


class ZipProduct(ProductFiles):
    """A product zipped as the hubs ship it (``NAME.SAFE/...`` inside), with or without directory entries."""

    def __init__(self, path: Path, markers: tuple[str, ...] = (MANIFEST,), kind: str = "Sentinel-1"):
        """``markers``: the names of the file at the product's root (``kind``'s), one of which the zip must hold."""
        super().__init__(path)
        try:
            self.zip = zipfile.ZipFile(path)
            names = self.zip.namelist()
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise SarcolorError(f"{path} is not a readable zip ({first_line(exc)}): truncated download?") from None
        found = sorted((n for n in names if posixpath.basename(n) in markers), key=lambda n: n.count("/"))
        if not found:
            self.zip.close()
            raise SarcolorError(f"{path} holds no {kind} product (no {' or '.join(markers)} inside)")
        self.root, self.marker = posixpath.split(found[0])
        self.members = set(names)

    @property
    def name(self) -> str:
        return posixpath.basename(self.root).removesuffix(".SAFE") or self.path.stem

    def member(self, relative: str) -> str:
        return posixpath.normpath(posixpath.join(self.root, relative))

    def exists(self, relative: str) -> bool:
        return self.member(relative) in self.members

    def read(self, relative: str) -> bytes:
        try:
            return self.zip.read(self.member(relative))
        except (zipfile.BadZipFile, KeyError, OSError, EOFError, zlib.error) as exc:
            raise SarcolorError(f"cannot read {relative} from {self.path} ({first_line(exc)}): truncated download?") from None

    def size(self, relative: str) -> int:
        return self.zip.getinfo(self.member(relative)).file_size

    def gdal_path(self, relative: str) -> str:
        return f"/vsizip/{self.path.resolve()}/{self.member(relative)}"

    def check_intact(self, relative: str) -> None:
        """GDAL's /vsizip/ reads a member without checking its CRC, so a damaged download would be coloured: the
        member is streamed through zipfile, which checks the CRC at its end. The cost is inflating it once more
        (about 5 s for a GRDH's 870 MB band on two cores, 180 MB/s; the CRC itself is a twentieth of that)."""
        try:
            with self.zip.open(self.member(relative)) as member:
                while member.read(CHECK_CHUNK):
                    pass
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
            raise SarcolorError(
                f"{self.path}: {relative} is damaged ({first_line(exc)}): download the product again"
            ) from None

    def close(self) -> None:
        self.zip.close()


def product_files(path: Path) -> ProductFiles | None:
    """The product at ``path`` (a .SAFE folder, its manifest.safe, a .zip), or None when it is not one."""
    if path.is_dir():
        if (path / MANIFEST).is_file():
            return FolderProduct(path)
        if path.suffix.lower() == ".safe":
            raise SarcolorError(f"{path} has no {MANIFEST}: not a complete Sentinel-1 product")
        return None
    if path.name.lower() == MANIFEST and path.is_file():
        return FolderProduct(path.parent)
    if path.suffix.lower() == ".zip" and path.is_file():
        return ZipProduct(path)
    return None


PRODUCT_SUFFIXES = (".safe", ".zip")  # how products are named where they lie among other scenes


def is_product(path: Path) -> bool:
    """Whether ``path`` names a Sentinel-1 product (checked by name and layout, without reading it)."""
    path = Path(path)
    return (path.is_dir() and ((path / MANIFEST).is_file() or path.suffix.lower() == ".safe")) or (
        path.is_file() and (path.name.lower() == MANIFEST or path.suffix.lower() == ".zip")
    )


def manifest_time(root: ET.Element, tag: str) -> datetime | None:
    """A time of the manifest's acquisitionPeriod (``safe:startTime``, UTC without a zone), or None."""
    text = (root.findtext(f".//{{*}}acquisitionPeriod/{{*}}{tag}") or "").strip()
    try:
        return datetime.fromisoformat(text).replace(tzinfo=timezone.utc) if text else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Manifest:
    product_type: str
    polarisations: tuple[str, ...]
    files: dict[tuple[str, str], str]  # (role, polarisation) -> path inside the product
    start: datetime | None = None  # the acquisition's, whatever the product's folder or zip is named
    stop: datetime | None = None

    @classmethod
    def parse(cls, text: bytes, source: str) -> "Manifest":
        try:
            root = ET.fromstring(text)
        except ET.ParseError as exc:
            raise SarcolorError(f"{source}: unreadable {MANIFEST} ({exc})") from None
        files = {}
        for obj in root.iter("dataObject"):
            role, location = ROLES.get(obj.get("repID", "")), obj.find(".//fileLocation")
            match = POLARISATION_IN_NAME.search(location.get("href", "")) if location is not None else None
            if role and match:
                files[(role, match.group(1).upper())] = location.get("href").removeprefix("./")
        return cls(
            product_type=root.findtext(".//{*}productType", "").strip(),
            polarisations=tuple(p.text.strip() for p in root.iter() if p.tag.endswith("}transmitterReceiverPolarisation")),
            files=files,
            start=manifest_time(root, "startTime"),
            stop=manifest_time(root, "stopTime"),
        )


def chosen_polarisation(manifest: Manifest, name: str, allow_co_pol: bool) -> tuple[str, str | None]:
    """(band, warning): the band the models expect (VH, or HV), or a single-polarisation product's co-pol band when
    ``allow_co_pol`` (with the warning a co-pol raster gets); else a one-line error saying why there is none."""
    if manifest.product_type != "GRD":
        kind = manifest.product_type or "unknown"
        raise SarcolorError(f"{name} is a Sentinel-1 {kind} product; sarcolor reads GRD products (Level-1 Ground Range Detected)")
    cross = [p for p in manifest.polarisations if p in CROSS_POLARISATIONS]
    if cross:
        return cross[0], None
    co = [p for p in manifest.polarisations if p in CO_POLARISATIONS]
    if co and allow_co_pol:
        return co[0], co_pol_check(name, co[0], allow_co_pol, "its only polarisation")
    pols = "+".join(manifest.polarisations) or "no"
    anyway = f", or {ALLOW_CO_POL_FLAG} to colourise {co[0]} anyway" if co else ""
    raise SarcolorError(
        f"{name} has {pols} polarisation only: the models expect the cross-polarisation (VH or HV), "
        f"so use a dual-polarisation product (1SDV or 1SDH){anyway}"
    )


@dataclass
class GrdProduct:
    """An opened GRD product: the chosen band as a rasterio dataset (with the annotation's GCPs) and its calibration."""

    files: ProductFiles
    polarisation: str
    dataset: rasterio.DatasetReader
    calibration: GrdCalibration
    pixel_spacing: float | None
    manifest: Manifest
    warning: str | None = None  # a co-pol band colourised on request

    def tags(self) -> dict[str, str]:
        """Provenance for the output's metadata."""
        return {
            "SARCOLOR_INPUT": self.files.name,
            "SARCOLOR_POLARISATION": self.polarisation,
            "SARCOLOR_GEOMETRY": "geocoded on the ellipsoid by the product's geolocation grid (GCPs), not terrain-corrected",
        }

    def close(self) -> None:
        self.dataset.close()
        self.files.close()


def required_file(files: ProductFiles, manifest: Manifest, role: str, pol: str, optional: bool = False) -> str | None:
    relative = manifest.files.get((role, pol))
    if relative is None or not files.exists(relative):
        if optional:
            return None
        where = f" ({relative})" if relative else ""
        raise SarcolorError(f"{files.name}: the {pol} {role} file is missing{where}: incomplete download?")
    return relative


def tiff_data_end(tiff: rasterio.DatasetReader) -> int:
    """Where the last block a TIFF lists ends, in bytes (0 when it lists none: a sparse file)."""
    (block_rows, block_cols), end = tiff.block_shapes[0], 0
    for row in range(math.ceil(tiff.height / block_rows)):
        for col in range(math.ceil(tiff.width / block_cols)):
            offset = tiff.get_tag_item(f"BLOCK_OFFSET_{col}_{row}", "TIFF", bidx=1)
            if offset:
                end = max(end, int(offset) + int(tiff.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=1) or 0))
    return end


def check_measurement(files: ProductFiles, relative: str) -> None:
    """Refuse in words, before any work, a measurement TIFF that GDAL would fail on vaguely or halfway through the
    scene: empty, not a TIFF, or cut short (a block it lists ends past its end)."""
    size = files.size(relative)
    if size == 0:
        raise SarcolorError(f"{files.name}: {relative} is empty (0 bytes): incomplete download? Download the product again")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(files.gdal_path(relative)) as tiff:
                end = tiff_data_end(tiff)
    except RasterioIOError as exc:
        raise SarcolorError(f"{files.name}: {relative} is not a readable TIFF ({first_line(exc)}): download the product again") from None
    if end > size:
        raise SarcolorError(
            f"{files.name}: {relative} is cut short ({size} bytes, its image needs {end}): incomplete download? "
            "Download the product again"
        )


def open_band(files: ProductFiles, pol: str) -> rasterio.DatasetReader:
    """The ``pol`` measurement through GDAL's SAFE driver (uncalibrated DN, with the annotation's GCPs)."""
    manifest = files.gdal_path(MANIFEST)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(manifest) as product:
                subdatasets = [s for s in product.subdatasets if s.upper().endswith(f"_{pol}:AMPLITUDE")]
            if not subdatasets:
                raise SarcolorError(f"{files.name}: GDAL finds no {pol} band in the product")
            return rasterio.open(subdatasets[0])
    except RasterioIOError as exc:
        raise SarcolorError(f"cannot read {files.path} as a Sentinel-1 product: {first_line(exc)}") from None


def open_grd(path: Path, files: ProductFiles, allow_co_pol: bool = False) -> GrdProduct:
    """Open the cross-polarisation band of the GRD product ``files`` (found at ``path``), calibrated; a
    single-polarisation product's co-pol band with ``allow_co_pol``."""
    manifest = Manifest.parse(files.read(MANIFEST), str(path))
    pol, warning = chosen_polarisation(manifest, files.name, allow_co_pol)
    measurement = required_file(files, manifest, "measurement", pol)
    annotation = required_file(files, manifest, "annotation", pol)  # GDAL's SAFE driver would only find no band
    calibration_file = required_file(files, manifest, "calibration", pol)
    noise_file = required_file(files, manifest, "noise", pol, optional=True)
    for read_by_gdal in (annotation, measurement):  # the measurement's check takes seconds in a zip: once all is there
        files.check_intact(read_by_gdal)
    check_measurement(files, measurement)
    if noise_file is None:
        log.warning("%s: no %s noise table; thermal noise is not removed", files.name, pol)
    calibration = GrdCalibration.from_xml(
        files.read(calibration_file), files.read(noise_file) if noise_file else None,
        ", ".join(posixpath.basename(f) for f in (calibration_file, noise_file) if f),
    )
    dataset = open_band(files, pol)
    spacing = dataset.tags().get("PIXEL_SPACING")
    why = "on request" if warning else "the cross-polarisation the models expect"
    log.info("%s: %s band chosen, %s (the product has %s)", files.name, pol, why, ", ".join(manifest.polarisations))
    if warning:
        log.warning("%s: %s", files.name, warning)
    return GrdProduct(files, pol, dataset, calibration, float(spacing) if spacing else None, manifest, warning)
