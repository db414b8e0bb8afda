"""Shared test setup: the tests/ folder is importable (httpserver), the repo's src/ too."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def pytest_collection_modifyitems(config, items) -> None:
    """The fast suite checks the shipped matrix and its defaults: a CI overlay
    (GDAL_LAMBDA_MATRIX_OVERLAY) and target (GDAL_LAMBDA_TARGET) only apply to the image
    sessions, so tests/fast run without them."""
    import os

    if all("/tests/fast/" in str(item.fspath) for item in items):
        os.environ.pop("GDAL_LAMBDA_MATRIX_OVERLAY", None)
        os.environ.pop("GDAL_LAMBDA_TARGET", None)
