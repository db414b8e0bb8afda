"""Shared test setup. gdal_lambda is installed (nox installs it; see the README); pytest puts
this folder on sys.path for httpserver and helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
# Folders whose tests need built images and a Docker engine (nox -s test-<line>, portability-*).
IMAGE_FOLDERS = ("image", "portability")


def _bare(config: pytest.Config) -> bool:
    """`pytest` named no path and no -m: the fast suite only, as `nox -s tests` runs it."""
    return config.args_source is not pytest.Config.ArgsSource.ARGS and not config.option.markexpr


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """A bare `pytest` collects no image test (nor imports one: their modules need Docker's
    images and share base names with tests/fast's)."""
    if _bare(config) and collection_path.parent == HERE and collection_path.name in IMAGE_FOLDERS:
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/image and tests/portability is an ``image`` test.

    The fast suite checks the shipped matrix and its defaults: a CI overlay
    (GDAL_LAMBDA_MATRIX_OVERLAY) and target (GDAL_LAMBDA_TARGET) only apply to the image
    sessions, so tests/fast run without them."""
    for item in items:
        if Path(item.fspath).resolve().parent.name in IMAGE_FOLDERS:
            item.add_marker(pytest.mark.image)
    if all("/tests/fast/" in str(item.fspath) for item in items):
        os.environ.pop("GDAL_LAMBDA_MATRIX_OVERLAY", None)
        os.environ.pop("GDAL_LAMBDA_TARGET", None)
