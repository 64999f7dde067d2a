"""Write the bundled example GeoTIFFs: real SAR crops of val scenes with their EPSG:3395 georeferencing.

    python scripts/make_examples.py --data ../shared/data/s1s2-pairs --out examples
"""
from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import rasterio
import rasterio.errors
from rasterio.transform import from_origin

from sarcolor.readers.raster import read_plain_image

# (pair id, row, col, size, name): a coast with town and sea, and farmland beside a town.
CROPS = [
    ("199", 256, 0, 512, "s1_vh_coast_california"),
    ("014", 384, 0, 512, "s1_vh_fields_california"),
]
# Small SAR/optical pairs in the pairs-folder layout, for tests and a quick `sarcolor evaluate`.
PAIR_CROPS = {"train": [("003", 384, 384), ("162", 512, 256)], "val": [("014", 512, 0), ("253", 0, 512)]}
PAIR_CROP_SIZE = 256
PIXEL_SIZE = 10.0


def write_crop(data: Path, meta: dict, pair_id: str, row: int, col: int, size: int, out: Path) -> None:
    x_left, y_top = meta["corners_EPSG:3395"][0]
    sar = read_plain_image(data / "sar" / f"{pair_id}.png")[:, row : row + size, col : col + size]
    profile = dict(
        driver="GTiff", width=size, height=size, count=1, dtype="uint8", crs="EPSG:3395",
        transform=from_origin(x_left + col * PIXEL_SIZE, y_top - row * PIXEL_SIZE, PIXEL_SIZE, PIXEL_SIZE),
        tiled=True, blockxsize=256, blockysize=256, compress="deflate",
    )
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(sar)
        dst.update_tags(
            source=f"s1s2-pairs {pair_id} rows {row}:{row + size} cols {col}:{col + size}",
            sar_tile=meta["sar_tile_name"], sar_date=meta["sar_tile_sensing_date"],
            scaling="Sentinel-1 VH amplitude / scene 99% quantile, clipped to 1, x255",
        )
        dst.set_band_description(1, "VH")


def write_pairs(data: Path, out: Path) -> None:
    for kind in ("sar", "opt"):
        (out / kind).mkdir(parents=True, exist_ok=True)
    split = {}
    for name, crops in PAIR_CROPS.items():
        split[name] = []
        for pair_id, row, col in crops:
            crop_id = f"{pair_id}_r{row}_c{col}"
            for kind in ("sar", "opt"):
                image = read_plain_image(data / kind / f"{pair_id}.png")[:, row : row + PAIR_CROP_SIZE, col : col + PAIR_CROP_SIZE]
                profile = dict(driver="PNG", width=image.shape[2], height=image.shape[1], count=image.shape[0], dtype="uint8")
                with rasterio.open(out / kind / f"{crop_id}.png", "w", **profile) as dst:
                    dst.write(image)
            split[name].append(crop_id)
    (out / "split.json").write_text(json.dumps(split, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/s1s2-pairs"))
    parser.add_argument("--out", type=Path, default=Path("examples"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=rasterio.errors.NotGeoreferencedWarning)
    metadata = {m["id"]: m for m in json.loads((args.data / "metadata.json").read_text())}
    args.out.mkdir(parents=True, exist_ok=True)
    for pair_id, row, col, size, name in CROPS:
        write_crop(args.data, metadata[pair_id], pair_id, row, col, size, args.out / f"{name}.tif")
    write_pairs(args.data, args.out / "pairs")


if __name__ == "__main__":
    main()
