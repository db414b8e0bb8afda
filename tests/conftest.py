"""Shared test setup. gdal_lambda is installed (nox installs it; see the README); pytest puts
this folder on sys.path for httpserver."""

from __future__ import annotations


def pytest_collection_modifyitems(config, items) -> None:
    """The fast suite checks the shipped matrix and its defaults: a CI overlay
    (GDAL_LAMBDA_MATRIX_OVERLAY) and target (GDAL_LAMBDA_TARGET) only apply to the image
    sessions, so tests/fast run without them."""
    import os

    if all("/tests/fast/" in str(item.fspath) for item in items):
        os.environ.pop("GDAL_LAMBDA_MATRIX_OVERLAY", None)
        os.environ.pop("GDAL_LAMBDA_TARGET", None)
