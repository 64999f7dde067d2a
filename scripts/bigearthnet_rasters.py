"""Rebuild the BigEarthNet example rasters of docs/your_region.md from the configilm 0.7.1 wheel (MIT).

The wheel ships 53 real BigEarthNet Sentinel-1 / Sentinel-2 patch pairs from Europe (120 x 120 px at
10 m) as test data: 23 in BENv2's LMDB (safetensors), 30 in BENv1's (pickled patch objects, read here
with an unpickler that builds plain containers and refuses any other class). Each pair becomes two
GeoTIFF-less rasters of equal size, the form `sarcolor pairs` takes for co-registered images:
``s1/NAME.tif`` (VH sigma0 in dB, float32) and ``s2/NAME.tif`` (B04, B03, B02: red, green, blue, uint16).

Pairs from Sentinel-2 acquisitions that BENv2 covers (33UUP, 35VNJ) and BENv1's train list go to
``adapt/``; BENv1's val and test patches from other acquisitions go to ``heldout/``, so the patches
used to judge the adapted model share no acquisition with those it was fitted on.

    pip install lmdb safetensors
    python scripts/bigearthnet_rasters.py data/bigearthnet            # downloads the wheel with pip
    python scripts/bigearthnet_rasters.py data/bigearthnet --wheel configilm-0.7.1-py3-none-any.whl
"""
from __future__ import annotations

import argparse
import io
import logging
import pickle
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import rasterio

log = logging.getLogger("bigearthnet_rasters")
MOCK = "configilm/extra/mock_data"


class _Record:
    """Stands in for BENv1's pydantic patch classes: keeps their pickled state as a dict."""

    def __setstate__(self, state):
        self.state = state


class PatchUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module.startswith("bigearthnet_patch_interface"):
            return type(name, (_Record,), {})
        if module.split(".")[0] in ("numpy", "builtins", "collections", "copyreg", "_codecs"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing {module}.{name} in the BENv1 LMDB")


def _band(record: _Record) -> np.ndarray:
    fields = record.state["__dict__"] if "__dict__" in record.state else record.state
    return np.asarray(fields["data"])


def benv1_pairs(lmdb_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    import lmdb

    pairs = {}
    with lmdb.open(str(lmdb_dir), readonly=True, lock=False) as env, env.begin() as txn:
        for key, value in txn.cursor():
            patch = PatchUnpickler(io.BytesIO(value)).load().state
            s1, s2 = patch["s1_patch"].state, patch["s2_patch"].state
            rgb = np.stack([_band(s2[f"band0{b}"]) for b in (4, 3, 2)])
            pairs[key.decode()] = (_band(s1["bandVH"]).astype(np.float32), rgb.astype(np.uint16))
    return pairs


def benv2_pairs(lmdb_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    import lmdb
    from safetensors.numpy import load

    with lmdb.open(str(lmdb_dir), readonly=True, lock=False) as env, env.begin() as txn:
        records = {key.decode(): load(value) for key, value in txn.cursor()}
    s1 = {re.search(r"_(\d\d[A-Z]{3}_\d+_\d+)$", k).group(1): v for k, v in records.items() if k.startswith("S1")}
    s2 = {re.search(r"_T(\d\d[A-Z]{3}_\d+_\d+)$", k).group(1): (k, v) for k, v in records.items() if k.startswith("S2")}
    return {
        s2[place][0]: (s1[place]["VH"].astype(np.float32), np.stack([s2[place][1][b] for b in ("B04", "B03", "B02")]).astype(np.uint16))
        for place in sorted(set(s1) & set(s2))
    }


def acquisition(name: str) -> str:
    """The Sentinel-2 product's sensing time in a patch name (S2A_MSIL2A_20170613T101031_...)."""
    return name.split("_")[2]


def write_raster(path: Path, data: np.ndarray) -> None:
    bands = data if data.ndim == 3 else data[None]
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=bands.shape[2], height=bands.shape[1], count=bands.shape[0], dtype=bands.dtype) as dst:
        dst.write(bands)


def wheel_path(given: Path | None, scratch: Path) -> Path:
    if given is not None:
        return given
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "configilm==0.7.1", "-d", str(scratch)], check=True)
    return next(scratch.glob("configilm-0.7.1-*.whl"))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--wheel", type=Path, help="configilm-0.7.1 wheel (default: pip download it)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        with zipfile.ZipFile(wheel_path(args.wheel, scratch)) as wheel:
            wheel.extractall(scratch, [n for n in wheel.namelist() if n.startswith(f"{MOCK}/BENv")])
        v1 = benv1_pairs(scratch / MOCK / "BENv1" / "BigEarthNetEncoded.lmdb")
        v1_train = set((scratch / MOCK / "BENv1" / "train.csv").read_text().split())
        v2 = benv2_pairs(scratch / MOCK / "BENv2" / "BigEarthNet-V2-LMDB")
    adapt = {**v2, **{k: v for k, v in v1.items() if k in v1_train}}
    seen = {acquisition(k) for k in adapt}
    heldout = {k: v for k, v in v1.items() if k not in v1_train and acquisition(k) not in seen}
    for folder, pairs in (("adapt", adapt), ("heldout", heldout)):
        for name, (vh, rgb) in pairs.items():
            write_raster(args.out / folder / "s1" / f"{name}.tif", vh)
            write_raster(args.out / folder / "s2" / f"{name}.tif", rgb)
        log.info("%s: %d pairs in %s", folder, len(pairs), args.out / folder)


if __name__ == "__main__":
    main()
