from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import rasterio

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
COAST = EXAMPLES / "s1_vh_coast_california.tif"
FIELDS = EXAMPLES / "s1_vh_fields_california.tif"
PAIRS = EXAMPLES / "pairs"
SHARED_PAIRS = Path(os.environ.get("SARCOLOR_DATA", ROOT.parent / "shared" / "data" / "s1s2-pairs"))


def run_cli(*args: str | Path, check: bool = False, cwd: Path | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "sarcolor", *map(str, args)], capture_output=True, text=True,
        env={**os.environ, "COLUMNS": "200"}, cwd=cwd,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def read_all(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as src:
        return src.read(), src.profile


@pytest.fixture(scope="session")
def model():
    from sarcolor.backends import load_model

    return load_model(None, "cpu")


@pytest.fixture(scope="session")
def shared_pairs() -> Path:
    if not (SHARED_PAIRS / "split.json").is_file():
        pytest.skip(f"full data set not found at {SHARED_PAIRS} (set SARCOLOR_DATA to the s1s2-pairs folder)")
    return SHARED_PAIRS


@contextmanager
def mounted_tmpfs(mount_point: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (e.g. 1200k) at ``mount_point``, to fill; skips the test where it cannot mount (needs root)."""
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 1.2 MB tmpfs: room for one 512² output, not for a 1024² one."""
    with mounted_tmpfs(tmp_path / "small", "1200k") as mount_point:
        yield mount_point


@pytest.fixture(scope="session")
def bigearthnet_pair(tmp_path_factory) -> tuple[Path, Path]:
    """One real BigEarthNet Sentinel-1 patch as bigearthnet-common ships it: (VV path, VH path), float32 sigma0 in
    dB, 120 x 120 px in UTM 33N, the two files side by side as ..._VV.tif and ..._VH.tif."""
    package = pytest.importorskip("bigearthnet_common", reason="bigearthnet-common (test extra) is not installed")
    folder = tmp_path_factory.mktemp("bigearthnet")
    with resources.as_file(resources.files(package) / "BigEarthNet-S1-Example.tar.bz2") as path, tarfile.open(path) as tar:
        tar.extractall(folder, filter="data")
    vh = sorted(folder.rglob("*_VH.tif"))[0]
    return vh.with_name(vh.name.replace("_VH", "_VV")), vh
