"""Sentinel-2 products and STAC Items as the reference (``colorize --reference``), and the one-line errors for a
reference that cannot serve.

The products are built here from the real Punjab band files of ``s1s2-world/ssl4eo-punjab`` (their values, grids and
the real names of the products they were cut from), laid out as the .SAFE folders ESA ships (``GRANULE/.../IMG_DATA``,
lossless JPEG2000, ``MTD_MSIL1C.xml`` / ``MTD_MSIL2A.xml`` with the fields of the real schema that are read) and zipped.
"""
from __future__ import annotations

import json
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.io
from PIL import Image
from rasterio.enums import Resampling
from rasterio.windows import Window
from scipy import ndimage

from conftest import PAIRS, ROOT, run_cli
from sarcolor.errors import SarcolorError
from sarcolor.infer import ColorizeOptions, colorize_file
from sarcolor.reference.clouds import UNUSABLE_CLASSES
from sarcolor.reference.image import ReferenceImage

WORLD = ROOT.parent / "shared" / "data" / "s1s2-world"
PUNJAB = WORLD / "ssl4eo-punjab"
PUNJAB_SAR = PUNJAB / "s1/0000200/S1A_IW_GRDH_1SDV_20200903T131212_20200903T131237_034195_03F8F5_AC1C/VH.tif"
L1C_BANDS = PUNJAB / "s2c/0000200/20200823T054639_20200823T055618_T43RCP"  # with real cumulus
L2A_BANDS = PUNJAB / "s2a/0000200/20200813T054639_20200813T054952_T43RCP"  # clear
SCL_DATES = WORLD / "cloud-masks" / "SCL.npy"  # real L2A scene classifications (Slovenia)
SCL_DATE = 6  # cloud, cirrus and shadow classes over about half of it
GRD_MINI = next((ROOT / "tests" / "data" / "grd_mini").glob("*.SAFE"))
ORDER = ["1", "2", "3", "4", "5", "6", "7", "8", "8A", "9", "10", "11", "12"]  # the metadata's band_id order
NATIVE = {"2": 10, "3": 10, "4": 10, "8": 10, "1": 60, "9": 60, "10": 60}  # metres; the other bands (and SCL) 20
# An L2A's IMG_DATA/R10m, R20m, R60m: each band at its own resolution and resampled to the coarser ones.
L2A_FOLDERS = {10: ["2", "3", "4", "8"], 20: ["1", "2", "3", "4", "5", "6", "7", "8A", "11", "12", "SCL"],
               60: ["1", "2", "3", "4", "5", "6", "7", "8A", "9", "11", "12", "SCL"]}

# The real products the Punjab crops were cut from (their metadata.json), and one of them as the Collection-1
# reprocessing of processing baseline 05.00 would name it.
L1C = ("S2B_MSIL1C_20200823T054639_N0209_R048_T43RCP_20200823T074854", "L1C_T43RCP_A018092_20200823T055618", "02.09")
L1C_C1 = ("S2B_MSIL1C_20200823T054639_N0500_R048_T43RCP_20230401T102214", "L1C_T43RCP_A018092_20200823T055618", "05.00")
L2A = ("S2B_MSIL2A_20200813T054639_N0214_R048_T43RCP_20200813T083230", "L2A_T43RCP_A017949_20200813T054952", "02.14")
OFFSET = 1000  # DNs of baseline 04.00 and later: reflectance x 10,000 + 1000


def band_name(band: str) -> str:
    return "SCL" if band == "SCL" else f"B{band.zfill(2) if band[-1].isdigit() else band.zfill(3)}"


def metadata_xml(level: str, name: str, granule: str, baseline: str, images: list[str]) -> str:
    """The product metadata with the fields the real MTD_MSIL1C.xml / MTD_MSIL2A.xml give them."""
    schema = f"https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-{level}.xsd"
    files = "\n".join(f"            <IMAGE_FILE>{image}</IMAGE_FILE>" for image in images)
    offsets, quantification = "", '<QUANTIFICATION_VALUE unit="none">10000</QUANTIFICATION_VALUE>'
    if level == "2A":
        quantification = ('<QUANTIFICATION_VALUES_LIST><BOA_QUANTIFICATION_VALUE unit="none">10000</BOA_QUANTIFICATION_VALUE>'
                          '<AOT_QUANTIFICATION_VALUE unit="none">1000.0</AOT_QUANTIFICATION_VALUE></QUANTIFICATION_VALUES_LIST>')
    if baseline >= "04.00":
        tag, group = ("RADIO_ADD_OFFSET", "Radiometric_Offset_List") if level == "1C" else ("BOA_ADD_OFFSET", "BOA_ADD_OFFSET_VALUES_LIST")
        offsets = f"<{group}>" + "".join(f'<{tag} band_id="{i}">-{OFFSET}</{tag}>' for i in range(13)) + f"</{group}>"
    spectral = "".join(f'<Spectral_Information bandId="{i}" physicalBand="{band_name(b).replace("B0", "B")}"/>'
                       for i, b in enumerate(ORDER))
    sensing = f"{name[11:15]}-{name[15:17]}-{name[17:19]}T{name[20:22]}:{name[22:24]}:{name[24:26]}.024Z"
    return f"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<n1:Level-{level}_User_Product xmlns:n1="{schema}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="{schema}">
  <n1:General_Info>
    <Product_Info>
      <PRODUCT_START_TIME>{sensing}</PRODUCT_START_TIME>
      <PRODUCT_STOP_TIME>{sensing}</PRODUCT_STOP_TIME>
      <PRODUCT_URI>{name}.SAFE</PRODUCT_URI>
      <PROCESSING_LEVEL>Level-{level}</PROCESSING_LEVEL>
      <PRODUCT_TYPE>S2MSI{level[0]}{level[1]}</PRODUCT_TYPE>
      <PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE>
      <Datatake datatakeIdentifier="GS2B_{name[11:26]}_018092_N{baseline}"><SPACECRAFT_NAME>Sentinel-2B</SPACECRAFT_NAME></Datatake>
      <Product_Organisation>
        <Granule_List>
          <Granule datastripIdentifier="S2B_OPER_MSI_L{level}_DS_VGS1_{name[-15:]}_N{baseline}" granuleIdentifier="{granule}" imageFormat="JPEG2000">
{files}
          </Granule>
        </Granule_List>
      </Product_Organisation>
    </Product_Info>
    <Product_Image_Characteristics>
      <Special_Values><SPECIAL_VALUE_TEXT>NODATA</SPECIAL_VALUE_TEXT><SPECIAL_VALUE_INDEX>0</SPECIAL_VALUE_INDEX></Special_Values>
      {quantification}
      {offsets}
      <Spectral_Information_List>{spectral}</Spectral_Information_List>
    </Product_Image_Characteristics>
  </n1:General_Info>
</n1:Level-{level}_User_Product>
"""


def write_jp2(path: Path, values: np.ndarray, profile: dict) -> None:
    """Lossless JPEG2000, as ESA's band images are written (GDAL's JP2OpenJPEG)."""
    profile = {k: v for k, v in profile.items() if k not in ("blockxsize", "blockysize", "tiled", "interleave", "compress")}
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **{**profile, "driver": "JP2OpenJPEG", "dtype": values.dtype.name, "QUALITY": 100, "REVERSIBLE": "YES"}) as dst:
        dst.write(values, 1)


def real_scl(like: Path) -> np.ndarray:
    """The real scene classification of ``SCL_DATE``, on the grid of the 20 m band ``like``."""
    with rasterio.open(like) as src:
        shape = src.shape
    classes = np.load(SCL_DATES)[SCL_DATE, ..., 0]
    zoom = (shape[0] / classes.shape[0], shape[1] / classes.shape[1])
    return ndimage.zoom(classes, zoom, order=0, grid_mode=True, mode="nearest")[: shape[0], : shape[1]].astype(np.uint8)


def resampled(values: np.ndarray, profile: dict, factor: float, classes: bool) -> tuple[np.ndarray, dict]:
    """``values`` on a grid ``factor`` times as fine over the same bounds (averaged, or the nearest class)."""
    if factor == 1:
        return values, profile
    height, width = round(values.shape[0] * factor), round(values.shape[1] * factor)
    with rasterio.io.MemoryFile() as memory, memory.open(**{**profile, "driver": "GTiff"}) as src:
        src.write(values, 1)
        out = src.read(1, out_shape=(height, width), resampling=Resampling.nearest if classes or factor > 1 else Resampling.average)
        transform = src.transform @ src.transform.scale(values.shape[1] / width, values.shape[0] / height)
    return out, {**profile, "width": width, "height": height, "transform": transform}


def make_product(folder: Path, bands: Path, product: tuple[str, str, str], scl: np.ndarray | None = None) -> Path:
    """A .SAFE product of the band folder ``bands``' real values (DNs of baseline 04.00 and later with the offset)."""
    name, granule, baseline = product
    level = "2A" if "MSIL2A" in name else "1C"
    safe = folder / f"{name}.SAFE"
    tile, sensing = name.split("_")[5], name.split("_")[2]
    images = []
    for band in ORDER + (["SCL"] if scl is not None else []):
        source = bands / f"B{band}.tif" if band != "SCL" else bands / "B5.tif"
        if not source.is_file():
            continue  # L2A has no B10
        with rasterio.open(source) as src:
            values, profile = src.read(1), src.profile
        if band == "SCL":
            values = scl
        elif baseline >= "04.00":
            values = np.where(values > 0, values + OFFSET, 0).astype(np.uint16)
        if level == "1C":
            relative = f"GRANULE/{granule}/IMG_DATA/{tile}_{sensing}_{band_name(band)}"
            write_jp2(safe / f"{relative}.jp2", values, profile)
            images.append(relative)
            continue
        for metres in (m for m, listed in L2A_FOLDERS.items() if band in listed):
            relative = f"GRANULE/{granule}/IMG_DATA/R{metres}m/{tile}_{sensing}_{band_name(band)}_{metres}m"
            write_jp2(safe / f"{relative}.jp2", *resampled(values, profile, NATIVE.get(band, 20) / metres, band == "SCL"))
            images.append(relative)
    (safe / f"MTD_MSIL{level}.xml").write_text(metadata_xml(level, name, granule, baseline, images))
    (safe / "manifest.safe").write_text("<xfdu:XFDU xmlns:xfdu='urn:ccsds:schema:xfdu:1'/>")
    return safe


def zipped(safe: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(safe.rglob("*")):
            archive.write(path, path.relative_to(safe.parent).as_posix())
    return target


@pytest.fixture(scope="module")
def products(tmp_path_factory):
    if not (PUNJAB_SAR.is_file() and SCL_DATES.is_file()):
        pytest.skip(f"the Punjab Sentinel-1/Sentinel-2 data and cloud masks of s1s2-world not found at {WORLD}")
    folder = tmp_path_factory.mktemp("products")
    l1c = make_product(folder, L1C_BANDS, L1C)
    scl = real_scl(L2A_BANDS / "B5.tif")
    return {
        "l1c": l1c, "l1c.zip": zipped(l1c, folder / f"{L1C[0]}.zip"),
        "l1c-c1": make_product(folder, L1C_BANDS, L1C_C1),
        "l2a": make_product(folder, L2A_BANDS, L2A, scl),
        "scl": scl,
    }


def whole(reference: ReferenceImage) -> tuple[np.ndarray, np.ndarray]:
    height, width = reference.shape
    return reference.read(Window(0, 0, width, height))


def read_reference(path, sar: Path = PUNJAB_SAR) -> tuple[np.ndarray, np.ndarray, np.ndarray, ReferenceImage]:
    """(stretched RGB, usable pixels, stretch) of ``path`` on the Punjab SAR's grid."""
    with rasterio.open(sar) as sar_src, ReferenceImage.open(path, sar_src) as reference:
        rgb, usable = whole(reference)
        return rgb, usable, reference.scale, reference


def assert_same_reading(a, b) -> None:
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])


def test_an_l1c_product_its_zip_and_its_metadata_file_read_as_its_band_folder(products):
    """The cumulus L1C of 2020-08-23: the .SAFE, its .zip (read inside, not unpacked) and its MTD_MSIL1C.xml give
    the colours, stretch and clouds the band folder of the same values gives, and the product's sensing time."""
    folder = read_reference(L1C_BANDS)
    assert 0.3 < folder[1].mean() < 0.95  # the cumulus is found, the rest is used
    for given in (products["l1c"], products["l1c.zip"], products["l1c"] / "MTD_MSIL1C.xml", str(products["l1c.zip"])):
        from_product = read_reference(given)
        assert_same_reading(from_product, folder)
        assert from_product[3].taken.isoformat() == "2020-08-23T05:46:39+00:00"


def test_the_offset_of_baseline_04_00_is_removed(products):
    """Its Collection-1 reprocessing (baseline 05.00): the same ground with DNs 1000 higher, as its metadata's
    RADIO_ADD_OFFSET says. Read as the baseline 02.09 product; read without the offset, 1000 higher everywhere."""
    image = next((products["l1c-c1"] / "GRANULE").rglob("*_B04.jp2"))
    with rasterio.open(image) as new, rasterio.open(L1C_BANDS / "B4.tif") as old:
        assert np.array_equal(new.read(1).astype(int), old.read(1).astype(int) + OFFSET)
    assert_same_reading(read_reference(products["l1c-c1"]), read_reference(products["l1c"]))
    with rasterio.open(PUNJAB_SAR) as sar_src, ReferenceImage.open(products["l1c-c1"], sar_src) as reference:
        height, width = reference.shape
        harmonised, covered, _ = reference._raw(Window(0, 0, width, height))
        for channel in reference.channels:
            assert (channel.gain, channel.offset) == (1.0, -OFFSET)
            channel.offset = 0.0
        raw, _, _ = reference._raw(Window(0, 0, width, height))
    assert covered.mean() > 0.95 and np.array_equal(raw[:, covered] - harmonised[:, covered], np.full_like(raw[:, covered], OFFSET))


def test_an_l2a_product_takes_its_clouds_from_its_scene_classification(products, tmp_path):
    """A clear L2A with a real scene classification of cloud, cirrus and shadow over half of it: those pixels (and a
    margin) are left out, nothing else; the same as a band folder with the same SCL file."""
    rgb, usable, scale, reference = read_reference(products["l2a"])
    assert reference.taken.isoformat() == "2020-08-13T05:46:39+00:00"
    assert read_reference(L2A_BANDS)[1].mean() > 0.95  # no cloud in the image itself
    with rasterio.open(PUNJAB_SAR) as sar_src, rasterio.open(L2A_BANDS / "B5.tif") as classes_src:
        from rasterio.warp import reproject
        classes = np.zeros(sar_src.shape, np.uint8)
        reproject(products["scl"], classes, src_transform=classes_src.transform, src_crs=classes_src.crs,
                  dst_transform=sar_src.transform, dst_crs=sar_src.crs, resampling=Resampling.nearest)
    cloud = np.isin(classes, UNUSABLE_CLASSES)
    assert 0.3 < cloud.mean() < 0.7
    assert not usable[cloud].any()
    assert usable[~ndimage.binary_dilation(cloud, iterations=8)].mean() > 0.98
    band_folder = tmp_path / "l2a"
    shutil.copytree(L2A_BANDS, band_folder)
    with rasterio.open(L2A_BANDS / "B5.tif") as src:
        profile = src.profile
    with rasterio.open(band_folder / "SCL.tif", "w", **{**profile, "dtype": "uint8"}) as dst:
        dst.write(products["scl"], 1)
    assert_same_reading((rgb, usable, scale), read_reference(band_folder))


def stac_item(path: Path, assets: dict, properties: dict) -> Path:
    """A Sentinel-2 STAC Item in a real catalogue's layout, its assets at ``assets``' hrefs."""
    item = {
        "type": "Feature", "stac_version": "1.0.0", "id": path.stem,
        "stac_extensions": ["https://stac-extensions.github.io/eo/v1.1.0/schema.json",
                            "https://stac-extensions.github.io/raster/v1.1.0/schema.json"],
        "geometry": {"type": "Polygon", "coordinates": [[[73.29, 30.45], [73.32, 30.45], [73.32, 30.48], [73.29, 30.48], [73.29, 30.45]]]},
        "bbox": [73.29, 30.45, 73.32, 30.48], "properties": properties, "links": [], "assets": assets,
    }
    path.write_text(json.dumps(item, indent=1))
    return path


def test_a_sentinel2_stac_item_reads_its_band_assets(products, tmp_path):
    """Element84's layout (assets red, green, blue by common name, a JPEG2000 duplicate, raster:bands scale 0.0001 and
    offset -0.1) over the baseline 05.00 images; Planetary Computer's (assets B04, B03, B02, SCL, no scale, the
    baseline in the properties, a true-colour composite beside them) over the L2A's: each read as its product, dated
    by the item."""
    images = {p.stem.split("_")[2]: p for p in (products["l1c-c1"] / "GRANULE").rglob("*.jp2")}
    cog = "image/tiff; application=geotiff; profile=cloud-optimized"
    level = [{"nodata": 0, "data_type": "uint16", "scale": 0.0001, "offset": -0.1}]
    earth_search = {
        colour: {"href": str(images[band]), "type": cog, "roles": ["data", "reflectance"], "raster:bands": level,
                 "eo:bands": [{"name": band, "common_name": colour}]}
        for colour, band in (("red", "B04"), ("green", "B03"), ("blue", "B02"), ("nir", "B08"))
    }
    earth_search["red-jp2"] = {"href": "s3://sentinel-s2-l1c/tiles/43/R/CP/2020/8/23/0/B04.jp2", "type": "image/jp2",
                               "roles": ["data"], "eo:bands": [{"name": "B04", "common_name": "red"}]}
    earth_search["thumbnail"] = {"href": "thumbnail.jpg", "type": "image/jpeg", "roles": ["thumbnail"]}
    item = stac_item(tmp_path / "S2B_43RCP_20200823_0_L1C.json", earth_search,
                     {"datetime": "2020-08-23T05:56:18.658Z", "s2:processing_baseline": "05.00", "platform": "sentinel-2b"})
    from_item = read_reference(item)
    assert_same_reading(from_item, read_reference(products["l1c"]))
    assert from_item[3].taken.isoformat() == "2020-08-23T05:56:18.658000+00:00"

    l2a = {p.stem.split("_")[2]: p for p in (products["l2a"] / "GRANULE").rglob("*.jp2")}
    planetary = {"visual": {"href": "TCI.tif", "type": cog, "roles": ["data"],  # true colour, 8-bit: not a band
                            "eo:bands": [{"name": b, "common_name": c} for b, c in (("B04", "red"), ("B03", "green"), ("B02", "blue"))]}}
    planetary |= {band: {"href": str(l2a[band].relative_to(products["l2a"].parent)), "type": "image/jp2", "roles": ["data"],
                        **({"eo:bands": [{"name": band}]} if band != "SCL" else {})} for band in ("B04", "B03", "B02", "SCL")}
    shutil.copytree(products["l2a"], tmp_path / products["l2a"].name)  # relative hrefs, resolved from the item's folder
    item = stac_item(tmp_path / "S2B_MSIL2A_20200813T054639_R048_T43RCP_20200814T000000.json", planetary,
                     {"datetime": "2020-08-13T05:46:39.024Z", "s2:processing_baseline": "02.14"})
    assert_same_reading(read_reference(item), read_reference(products["l2a"]))


def test_a_zipped_product_colours_a_scene_as_its_band_folder(products, tmp_path, model):
    """End to end: ``colorize --reference`` the .zip: the output its band folder gives, tagged with the product and
    its sensing time, which ``--stac`` records."""
    from_zip, from_folder = tmp_path / "zip.tif", tmp_path / "folder.tif"
    sar = tmp_path / f"{PUNJAB_SAR.parent.name}_VH.tif"  # named as its product, whose time --stac needs
    shutil.copy(PUNJAB_SAR, sar)
    run_cli("colorize", sar, "-o", from_zip, "--reference", products["l1c.zip"], "--stac", check=True)
    colorize_file(sar, from_folder, model, ColorizeOptions(reference=L1C_BANDS))
    with rasterio.open(from_zip) as a, rasterio.open(from_folder) as b:
        assert np.array_equal(a.read(), b.read())
        tags = a.tags()
    assert tags["SARCOLOR_REFERENCE"] == products["l1c.zip"].name
    assert tags["SARCOLOR_REFERENCE_DATE"] == "2020-08-23T05:46:39Z"
    properties = json.loads(from_zip.with_suffix(".json").read_text())["properties"]
    assert properties["sarcolor:reference"] == str(products["l1c.zip"])
    assert properties["sarcolor:reference_date"] == "2020-08-23T05:46:39Z"


def grey_sar_png(folder: Path, mode: str) -> Path:
    """An 8-bit amplitude SAR PNG (the example pair's) saved grey (``L``) or as grey RGB, as quicklooks are."""
    target = folder / f"sar-{mode}.png"
    Image.open(PAIRS / "sar" / "014_r512_c0.png").convert(mode).save(target)
    return target


@pytest.mark.parametrize("case, error", [
    ("sar-png", "error: the reference sar-L.png is not an optical image: it has 1 band(s)"),
    ("sar-png-rgb", "error: the reference sar-RGB.png is not an optical image: its red, green and blue are the same"),
    ("s1-product", f"error: the reference {GRD_MINI.name} is a Sentinel-1 product (radar), not an optical image"),
    ("empty-safe", "error: the reference S2B_MSIL1C_20200823T054639_N0209_R048_T43RCP_20200823T074854.SAFE is not a "
                   "Sentinel-2 product: no MTD_MSIL1C.xml or MTD_MSIL2A.xml inside"),
    ("other-zip", "error: {tmp}/photos.zip holds no Sentinel-2 product (no MTD_MSIL1C.xml or MTD_MSIL2A.xml inside)"),
    ("broken-zip", "error: {tmp}/S2A_MSIL2A_20220105T054231_N0301_R005_T43RCP_20220105T080000.zip is not a readable zip"),
    ("nodata", "error: the reference nodata.tif does not overlap the SAR scene, or holds only no data over it"),
    ("item-without-bands", "error: S1A_IW_GRDH_1SDV_20210119T031653_20210119T031718_036201_043ED0_8255: no red, green or blue band asset"),
    ("unreachable-item", "error: cannot fetch STAC item https://example.invalid/sentinel-2-l2a/items/S2B_43RCP_20200813_0_L2A"),
])
def test_references_that_cannot_serve_are_one_line_errors(tmp_path, case, error):
    sar = grey_sar_png(tmp_path, "L")
    if case == "sar-png":
        reference = sar
    elif case == "sar-png-rgb":
        reference = grey_sar_png(tmp_path, "RGB")
    elif case == "s1-product":
        reference = GRD_MINI
    elif case == "empty-safe":
        reference = tmp_path / f"{L1C[0]}.SAFE"
        reference.mkdir()
    elif case == "other-zip":
        reference = tmp_path / "photos.zip"
        with zipfile.ZipFile(reference, "w") as archive:
            archive.writestr("holiday/beach.jpg", (PAIRS / "opt" / "014_r512_c0.png").read_bytes())
    elif case == "broken-zip":
        reference = tmp_path / "S2A_MSIL2A_20220105T054231_N0301_R005_T43RCP_20220105T080000.zip"
        reference.write_bytes(b"PK\x03\x04" + bytes(100))
    elif case == "nodata":  # a uint16 optical image of the SAR's size, all no data (DN 0)
        reference = tmp_path / "nodata.tif"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(reference, "w", driver="GTiff", width=256, height=256, count=3, dtype="uint16") as dst:
                dst.write(np.zeros((3, 256, 256), np.uint16))
    elif case == "unreachable-item":
        reference = "https://example.invalid/sentinel-2-l2a/items/S2B_43RCP_20200813_0_L2A"
    else:  # a Sentinel-1 item given as the reference
        reference = ROOT / "tests" / "data" / "stac" / "s1_grd_item.json"
    result = run_cli("colorize", sar, "-o", tmp_path / "out.tif", "--reference", reference)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(error.format(tmp=tmp_path)), result.stderr
    assert len(result.stderr.strip().splitlines()) <= 3, result.stderr  # the error, at most after a log line or two
    assert not (tmp_path / "out.tif").exists()


@pytest.mark.parametrize("damage, error", [
    ("missing", "GRANULE/L1C_T43RCP_A018092_20200823T055618/IMG_DATA/T43RCP_20200823T054639_B03.jp2 is missing: incomplete download?"),
    ("truncated", "cannot read the reference"),
    ("metadata", "unreadable MTD_MSIL1C.xml"),
])
def test_a_damaged_product_is_a_one_line_error(products, tmp_path, damage, error):
    safe = tmp_path / products["l1c"].name
    shutil.copytree(products["l1c"], safe)
    image = next(safe.rglob("*_B03.jp2"))
    if damage == "missing":
        image.unlink()
    elif damage == "truncated":
        image.write_bytes(image.read_bytes()[:3000])
    else:
        (safe / "MTD_MSIL1C.xml").write_text((safe / "MTD_MSIL1C.xml").read_text()[:500])
    with pytest.raises(SarcolorError, match="^" + error if damage == "truncated" else error) as caught:
        read_reference(zipped(safe, tmp_path / f"{safe.stem}.zip") if damage == "truncated" else safe)
    assert "\n" not in str(caught.value)


def test_an_l2a_product_clouded_all_over_is_a_one_line_error(products, tmp_path):
    """Its scene classification cloud (class 9) everywhere: no usable pixel, refused before any colouring."""
    safe = tmp_path / products["l2a"].name
    shutil.copytree(products["l2a"], safe)
    for image in safe.rglob("*_SCL_*.jp2"):
        with rasterio.open(image) as src:
            values, profile = src.read(1), src.profile
        write_jp2(image, np.full_like(values, 9), profile)
    result = run_cli("colorize", PUNJAB_SAR, "-o", tmp_path / "out.tif", "--reference", safe)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"error: the reference {safe.name} has 0.0 % clear pixels over the SAR scene"), result.stderr
    assert not (tmp_path / "out.tif").exists()
