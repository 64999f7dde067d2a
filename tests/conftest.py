from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
COAST = EXAMPLES / "s1_vh_coast_california.tif"
FIELDS = EXAMPLES / "s1_vh_fields_california.tif"
PAIRS = EXAMPLES / "pairs"
SHARED_PAIRS = Path(os.environ.get("SARCOLOR_DATA", ROOT.parent / "shared" / "data" / "s1s2-pairs"))


def run_cli(*args: str | Path, check: bool = False) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "sarcolor", *map(str, args)], capture_output=True, text=True,
        env={**os.environ, "COLUMNS": "200"},
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
