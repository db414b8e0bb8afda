"""matrix.toml as shipped, without CI's overlay (.ci/reachable-pins.toml narrows the floor to
the one Python whose CPython source CI reaches): for tests of names and of the release."""

from __future__ import annotations

import os
from unittest import mock

from gdal_lambda import versions


def shipped_matrix() -> versions.Matrix:
    with mock.patch.dict(os.environ):
        os.environ.pop("GDAL_LAMBDA_MATRIX_OVERLAY", None)
        return versions.load_matrix()
