"""What the image tests share besides fixtures: running a script in an image, copying a path
out of one, a small COG made with GDAL's own tools. Imported as `from image_helpers import ...`
(tests/image is on sys.path through its conftest.py)."""

from __future__ import annotations

import dataclasses
import logging
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
        # The raw file's header is a side-car (tiles.hdr), which the gdalrc's EMPTY_DIR hides
        # from GDAL on local disk too: the variable restores the directory listing.
        environment={"GDAL_DISABLE_READDIR_ON_OPEN": "NO"},
    )
    (where / "tiles.bil").unlink()
    (where / "tiles.hdr").unlink()
    return where / "tiles.tif"


# Run inside the runtime: read tiles, print one JSON line each (ms from open to array).
READ_TILES = r"""
import json, resource, sys, time
import rasterio
from rasterio.enums import Resampling
H = 20037508.342789244
def bounds(z, x, y):
    s = 2 * H / 2 ** z
    return (-H + x * s, H - (y + 1) * s, -H + (x + 1) * s, H - y * s)
for name, z, x, y in json.loads(sys.argv[1]):
    t0 = time.perf_counter()
    with rasterio.open(name) as src:
        a = src.read(1, window=src.window(*bounds(z, x, y)), out_shape=(256, 256),
                     resampling=Resampling.nearest)
    print(json.dumps({"name": name, "ms": (time.perf_counter() - t0) * 1000,
                      "done": time.time(), "mean": float(a.mean()),
                      "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), flush=True)
"""

# Run inside the floor runtime with the layer: the COG's levels, blocks and header size.
LAYOUT = r"""
import json, sys
from osgeo import gdal
ds = gdal.Open(sys.argv[1])
band = ds.GetRasterBand(1)
levels = []
for level in [band] + [band.GetOverview(i) for i in range(band.GetOverviewCount())]:
    bx, by = level.GetBlockSize()
    nx, ny = -(-level.XSize // bx), -(-level.YSize // by)
    blocks = {f"{i},{j}": [int(level.GetMetadataItem(f"BLOCK_OFFSET_{i}_{j}", "TIFF")),
                           int(level.GetMetadataItem(f"BLOCK_SIZE_{i}_{j}", "TIFF"))]
              for i in range(nx) for j in range(ny)}
    levels.append({"size": level.XSize, "block": bx, "blocks": blocks})
print(json.dumps({"levels": levels}))
"""


@dataclasses.dataclass(frozen=True)
class Tile:
    z: int
    x: int
    y: int


@dataclasses.dataclass(frozen=True)
class Floor:
    requests: int
    bytes: int


def tiles_to_read(per_zoom: int) -> list[Tile]:
    """``per_zoom`` tiles at each of the three finest zoom levels, inside the COG."""
    z0, x0, y0 = TILES_COG_TILE
    out = []
    for z in range(z0 + TILES_COG_ZOOMS, z0 + TILES_COG_ZOOMS - 3, -1):
        n = 2 ** (z - z0)
        out += [Tile(z, x0 * n + (1 + i) % n, y0 * n + (1 + 2 * i) % n) for i in range(per_zoom)]
    return out


def floor_of(layout: dict, tile: Tile) -> Floor:
    """The header read plus one read per run of adjacent blocks of the level the tile is read
    from (a COG's block leader and trailer, 8 bytes between two blocks, count as adjacent)."""
    levels = layout["levels"]
    header = min(offset for level in levels for offset, _ in level["blocks"].values())
    z0, x0, y0 = TILES_COG_TILE
    level = levels[z0 + TILES_COG_ZOOMS - tile.z]
    col, row = (tile.x - x0 * 2 ** (tile.z - z0)) * 256, (tile.y - y0 * 2 ** (tile.z - z0)) * 256
    block = level["block"]
    spans = sorted(
        level["blocks"][f"{i},{j}"]
        for i in range(col // block, (col + 255) // block + 1)
        for j in range(row // block, (row + 255) // block + 1)
    )
    runs, end = 0, -1
    for offset, size in spans:
        if offset > end + 8:
            runs += 1
        end = offset + size
    return Floor(1 + runs, header + sum(size for _, size in spans))


@contextmanager
def moto_s3(bucket: str = "cogs") -> Iterator[tuple[str, Any]]:
    """moto's S3 in server mode on 127.0.0.1 with ``bucket`` made: (host:port, a boto3 client)."""
    import boto3
    import requests
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://{host}:{port}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket=bucket)
        try:
            yield f"{host}:{port}", s3
        finally:  # moto's state lives in this process, not in the server: start the next clean
            requests.post(f"http://{host}:{port}/moto-api/reset", timeout=10)
    finally:
        server.stop()


def s3_env(endpoint: str) -> dict[str, str]:
    """GDAL's /vsis3/ pointed at a local S3 endpoint (host:port) over plain HTTP, path-style."""
    return {"AWS_S3_ENDPOINT": endpoint, "AWS_HTTPS": "NO", "AWS_VIRTUAL_HOSTING": "FALSE"}
