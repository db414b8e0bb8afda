"""What the image tests share besides fixtures: running a script in an image, copying a path
out of one, a small COG made with GDAL's own tools. Imported as `from image_helpers import ...`
(tests/image is on sys.path through its conftest.py)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import docker
import pytest

from gdal_lambda import containers


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


# The web-mercator tile the tiles COG covers (z, x, y), and how many zoom levels finer its full
# resolution is: 4096 px = 2**4 tiles of 256 px on each axis at z12.
TILES_COG_TILE = (8, 132, 88)
TILES_COG_ZOOMS = 4
WEB_MERCATOR_HALF = 20037508.342789244  # EPSG:3857's half extent, in metres


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) of a web-mercator tile, in EPSG:3857 metres."""
    size = 2 * WEB_MERCATOR_HALF / 2**z
    return (
        -WEB_MERCATOR_HALF + x * size,
        WEB_MERCATOR_HALF - (y + 1) * size,
        -WEB_MERCATOR_HALF + (x + 1) * size,
        WEB_MERCATOR_HALF - y * size,
    )


def make_tiles_cog(cli: docker.DockerClient, gdal_image: str, where: Path) -> Path:
    """``where/tiles.tif``: a 4096x4096 Byte COG in EPSG:3857 covering tile TILES_COG_TILE
    exactly (full resolution: z12), 512-px blocks, DEFLATE, overviews down to 512 px (z11, z10,
    z9). The pixels are a row gradient plus 6 bits of seeded noise, so its blocks stay about
    200 KB compressed (17 MB in all), like imagery rather than a constant. The raw pixels are
    made here, the COG with GDAL's own tools in the GDAL image."""
    import random

    where.mkdir(parents=True, exist_ok=True)
    size = 4096
    rng = random.Random(20)
    noise = bytes(b & 0x3F for b in range(256))
    with (where / "tiles.bil").open("wb") as raw:
        for row in range(size):
            base = row * 160 // size
            table = bytes((b & 0x3F) + base for b in range(256))
            raw.write(rng.randbytes(size).translate(table if base else noise))
    (where / "tiles.hdr").write_text(
        f"BYTEORDER I\nLAYOUT BIL\nNROWS {size}\nNCOLS {size}\nNBANDS 1\nNBITS 8\n"
    )
    left, bottom, right, top = tile_bounds(*TILES_COG_TILE)
    sh(
        cli,
        gdal_image,
        "gdal_translate -q -of COG -co COMPRESS=DEFLATE -co BLOCKSIZE=512 -a_srs EPSG:3857 "
        f"-a_ullr {left!r} {top!r} {right!r} {bottom!r} /out/tiles.bil /out/tiles.tif "
        "&& chmod 644 /out/tiles.tif",
        volumes={str(where): {"bind": "/out", "mode": "rw"}},
    )
    (where / "tiles.bil").unlink()
    (where / "tiles.hdr").unlink()
    return where / "tiles.tif"
