"""Fixtures for the image checks: which line and target to check, and a Docker client.

nox -s test-<line> sets GDAL_LAMBDA_LINE and GDAL_LAMBDA_TARGET and builds the images first.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import docker
import pytest
from image_helpers import copy_out, make_cog, make_tiles_cog, sh

from gdal_lambda import images, versions
from gdal_lambda.variant import Variant

# Re-exported for the tests that still import them from here.
__all__ = ["copy_out", "make_cog", "sh"]


@pytest.fixture(scope="session")
def matrix() -> versions.Matrix:
    return versions.load_matrix(env=os.environ)


@pytest.fixture(scope="session")
def line(matrix: versions.Matrix) -> versions.Line:
    name = os.environ.get("GDAL_LAMBDA_LINE")
    if not name:
        pytest.fail("GDAL_LAMBDA_LINE is not set: run these through `nox -s test-<line>`")
    return matrix.line(name)


@pytest.fixture(scope="session")
def variant(matrix: versions.Matrix, line: versions.Line) -> Variant:
    """The line on $GDAL_LAMBDA_TARGET for $GDAL_LAMBDA_ARCH with $GDAL_LAMBDA_PYTHON (default the
    target's newest), as tasks.py resolves it."""
    return Variant.resolve(matrix, line=line.name, env=os.environ)


@pytest.fixture(scope="session")
def target(variant: Variant) -> versions.Target:
    return variant.target


@pytest.fixture(scope="session")
def cli() -> docker.DockerClient:
    return images.client()


@pytest.fixture(scope="session")
def gdal_image(cli: docker.DockerClient, variant: Variant) -> str:
    ref = variant.gdal_tag
    if not images.image_exists(cli, ref):
        pytest.fail(f"{ref} is missing: run `nox -s test-{variant.line.name}` first")
    return ref


@pytest.fixture(scope="session")
def cog_dir(cli: docker.DockerClient, gdal_image: str, tmp_path_factory) -> Path:
    """A folder holding cog.tif (image_helpers.make_cog), for the tests that serve it."""
    where = tmp_path_factory.mktemp("www")
    make_cog(cli, gdal_image, where)
    return where


@pytest.fixture(scope="session")
def tiles_cog(cli: docker.DockerClient, gdal_image: str, tmp_path_factory) -> Path:
    """tiles.tif (image_helpers.make_tiles_cog: 17 MB, 512-px blocks, overviews) in a folder of
    its own, for the tests that read web-mercator tiles out of it."""
    return make_tiles_cog(cli, gdal_image, tmp_path_factory.mktemp("tiles"))


@pytest.fixture(scope="session")
def python(variant: Variant) -> str:
    return variant.python


@pytest.fixture(scope="session")
def layer_zip(variant: Variant) -> Path:
    path = variant.layer_zip()
    if not path.is_file():
        pytest.fail(f"{path} missing: run `nox -s test-{variant.line.name}` first")
    return path


@pytest.fixture(scope="session")
def opt(layer_zip: Path, tmp_path_factory) -> Path:
    """The zip unpacked by Info-ZIP's unzip (not our own code), as Lambda unpacks it."""
    dest = tmp_path_factory.mktemp("layer") / "opt"
    subprocess.run(["unzip", "-q", str(layer_zip), "-d", str(dest)], check=True)
    return dest
