"""Fixtures for the image checks: which line and target to check, and a Docker client.

nox -s test-<line> sets GDAL_LAMBDA_LINE and GDAL_LAMBDA_TARGET and builds the images first.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import docker
import pytest

from gdal_lambda import containers, images, versions
from gdal_lambda.variant import Variant


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


def sh(cli: docker.DockerClient, image: str, script: str, **kwargs: object) -> str:
    """Run a bash script in ``image``; fail the test with its output if it exits non-zero."""
    ran = containers.run(cli, image, ["bash", "-euo", "pipefail", "-c", script], **kwargs)  # type: ignore[arg-type]
    code, out = ran.status, ran.output
    if code != 0:
        pytest.fail(f"exit {code} in {image}:\n{out[-3000:]}")
    return out


def copy_out(cli: docker.DockerClient, image: str, path: str, dest: Path) -> Path:
    """``path`` of ``image``, copied to ``dest`` on the host through the engine's archive API:
    no tool inside the image is needed (Lambda's AL2023 images have no find, which or file)."""
    container = cli.containers.create(image, command=["true"])
    try:
        stream, _ = container.get_archive(path)
        archive = dest.with_suffix(".tar")
        with archive.open("wb") as out:
            for chunk in stream:
                out.write(chunk)
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="tar")
        archive.unlink()
    finally:
        container.remove(force=True)
    return dest / Path(path).name


def make_cog(cli: docker.DockerClient, gdal_image: str, where: Path) -> Path:
    """A 512x512 UInt16 COG over lon 0..10, lat 0..10: 1234 everywhere but 4321 in lon 2..4,
    lat 6..8 (pixels 103..204 on both axes). Made with GDAL's own tools, in the GDAL image."""
    where.mkdir(parents=True, exist_ok=True)
    polygon = '{"type":"Polygon","coordinates":[[[2,6],[4,6],[4,8],[2,8],[2,6]]]}'
    sh(
        cli,
        gdal_image,
        "cd /tmp && gdal_create -of GTiff -outsize 512 512 -bands 1 -ot UInt16 -burn 1234 "
        "-a_srs EPSG:4326 -a_ullr 0 10 10 0 src.tif "
        f"&& echo '{polygon}' > square.geojson "
        "&& gdal_rasterize -q -burn 4321 square.geojson src.tif "
        "&& gdal_translate -q -of COG -co COMPRESS=DEFLATE -co BLOCKSIZE=256 src.tif /out/cog.tif "
        "&& chmod 644 /out/cog.tif",
        volumes={str(where): {"bind": "/out", "mode": "rw"}},
    )
    return where / "cog.tif"
