"""The real job, measured in one run (not a test): web-mercator tiles read out of a COG over
HTTP and S3, by the layer and by PyPI's rasterio wheel. Run after `nox -s test-<line>`.

    python benchmarks/cog_tiles.py --gdal 3.13

A 17 MB COG (tests/image/image_helpers.make_tiles_cog: 4096 px, 512-px blocks, DEFLATE,
overviews) is served by Debian's nginx on 127.0.0.1, whose access log gives every request and
the bytes it sent. Each tile is read the way a tile server reads one (rasterio: open, a window
of the tile's bounds, 256x256 out, so GDAL picks the overview), under a name GDAL has not seen
(a cold open: nothing cached), at three zoom levels:

  * the layer in the floor runtime (no GDAL variable: only its gdalrc; then the README's
    recommended variables) and PyPI's rasterio wheel in the debian13 runtime, where it imports
    (none; recommended): requests, bytes (the bodies) and median ms per tile, beside the
    physical floor: one read of the header (the bytes before the first block) plus one per run
    of adjacent blocks the tile needs, computed from the file's tile offsets and byte counts
    (GDAL's TIFF metadata: BLOCK_OFFSET_x_y, BLOCK_SIZE_x_y). Goal: the layer with no
    configuration at the floor's requests over S3 (/vsicurl/ adds GDAL's one HEAD), bytes
    <= 1.1x the floor;
  * the same through /vsis3/ from a moto S3 server behind the same nginx;
  * cold start the way Lambda's Init counts it: from the runtime container's first process to
    the first tile returned (interpreter start, imports, open, read), median of --runs fresh
    containers, and the peak RSS of that process.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import statistics
import sys
import tempfile
import urllib.parse
from collections import defaultdict
from pathlib import Path

import variant_args

from gdal_lambda import containers, local, runtime
from gdal_lambda.project import project_root
from gdal_lambda.variant import Variant

sys.path[:0] = [str(project_root() / "tests"), str(project_root() / "tests" / "image")]
import nginx  # noqa: E402  (tests/nginx.py: the server and its access log)
from image_helpers import (  # noqa: E402
    LAYOUT,
    READ_TILES,
    Floor,
    Tile,
    floor_of,
    make_tiles_cog,
    moto_s3,
    tiles_to_read,
)
from image_helpers import s3_env as image_s3_env  # noqa: E402

GOAL_BYTES = 1.1
_COPY = re.compile(r"copy-[0-9]+/")


@dataclasses.dataclass
class Measured:
    requests: float  # mean per tile
    bytes: float  # mean body bytes per tile
    ms: float  # median per tile
    floor_requests: float  # mean of the tiles' floors
    floor_bytes: float
    requests_ratio: float  # mean of each tile's own ratio to its floor
    bytes_ratio: float
    worst_bytes_ratio: float
    protocol: str


def measure(
    cli,
    where: Variant,
    server: nginx.Nginx,
    names: dict[Tile, str],
    *,
    opt: Path | None,
    task: Path | None,
    env: dict[str, str],
    floors: dict[Tile, Floor],
) -> dict[int, Measured]:
    """Read every tile in one runtime container; per zoom: mean requests and body bytes per
    tile (from nginx's log, by the tile's own name), median ms."""
    server.clear()
    args = [[names[t], t.z, t.x, t.y] for t in names]
    status, out = runtime.run_clean(
        cli, where, ["python3", "-c", READ_TILES, json.dumps(args)], opt=opt, task=task, env=env
    )
    if status != 0:
        raise SystemExit(f"reading tiles failed in {where.runtime_image}:\n{out[-3000:]}")
    ms = {
        json.loads(line)["name"]: json.loads(line)["ms"]
        for line in out.splitlines()
        if line.startswith("{")
    }
    per_name: dict[str, list[nginx.Entry]] = defaultdict(list)
    by_copy = {_COPY.search(n).group(0): n for n in names.values()}  # type: ignore[union-attr]
    for entry in server.entries():
        # the file, its folder's listing, its side-car probes: all carry its copy-<n>/
        found = _COPY.search(urllib.parse.unquote(entry.path))
        if found and found.group(0) in by_copy:
            per_name[by_copy[found.group(0)]].append(entry)
    by_zoom: dict[int, list[Tile]] = defaultdict(list)
    for tile in names:
        by_zoom[tile.z].append(tile)

    def count(t: Tile) -> int:
        return len(per_name[names[t]])

    def body(t: Tile) -> int:
        return sum(e.body_bytes for e in per_name[names[t]])

    return {
        z: Measured(
            requests=statistics.mean(count(t) for t in group),
            bytes=statistics.mean(body(t) for t in group),
            ms=statistics.median(ms[names[t]] for t in group),
            floor_requests=statistics.mean(floors[t].requests for t in group),
            floor_bytes=statistics.mean(floors[t].bytes for t in group),
            requests_ratio=statistics.mean(count(t) / floors[t].requests for t in group),
            bytes_ratio=statistics.mean(body(t) / floors[t].bytes for t in group),
            worst_bytes_ratio=max(body(t) / floors[t].bytes for t in group),
            protocol=",".join(sorted({e.protocol for t in group for e in per_name[names[t]]})),
        )
        for z, group in sorted(by_zoom.items(), reverse=True)
    }


def cold_start(cli, where: Variant, url: str, tile: Tile, *, opt, task, runs: int):
    """Median seconds from the container's first process to the first tile, and peak RSS."""
    script = 'echo "start $(date +%s.%N)"; exec python3 -c "$0" "$1"'
    samples, rss = [], []
    for _ in range(runs):
        status, out = runtime.run_clean(
            cli,
            where,
            ["/bin/sh", "-c", script, READ_TILES, json.dumps([[url, tile.z, tile.x, tile.y]])],
            opt=opt,
            task=task,
        )
        if status != 0:
            raise SystemExit(f"cold start failed in {where.runtime_image}:\n{out[-3000:]}")
        start = float(
            next(line.split()[1] for line in out.splitlines() if line.startswith("start "))
        )
        first = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
        samples.append(first["done"] - start)
        rss.append(first["rss_kb"] / 1024)
    return statistics.median(samples), max(rss)


def install_wheel(cli, where: Variant, dest: Path) -> None:
    ran = containers.run(
        cli,
        where.python_base,
        ["python3", "-m", "pip", "install", "-q", "--target", "/out", "rasterio"],
        volumes={str(dest): {"bind": "/out", "mode": "rw"}},
        network_mode="host",
    )
    if ran.status != 0:
        raise SystemExit(f"pip install rasterio failed:\n{ran.output[-2000:]}")


def table_row(label: str, zooms: dict[int, Measured]) -> None:
    for z, m in zooms.items():
        print(
            f"| {label} | z{z} | {m.requests:.1f} | {m.bytes:,.0f} | {m.ms:.1f} | "
            f"{m.floor_requests:.0f} / {m.floor_bytes:,.0f} | {m.requests_ratio:.2f} | "
            f"{m.bytes_ratio:.2f} ({m.worst_bytes_ratio:.2f}) | {m.protocol} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5, help="cold starts per reader")
    parser.add_argument("--tiles-per-zoom", type=int, default=3)
    parser.add_argument("--layer-zip", type=Path, default=None, help="default: the variant's")
    args, variant = variant_args.parse(parser)
    layer_zip = args.layer_zip or variant.layer_zip()
    if not layer_zip.is_file():
        raise SystemExit(f"{layer_zip} missing: run `invoke layer --gdal {variant.line.name}`")
    newest = Variant.resolve(
        variant.matrix,
        line=variant.line.name,
        target="debian13",
        python=variant.python,
        arch=variant.arch,
        env=os.environ,
    )
    cli = containers.client()
    tiles = tiles_to_read(args.tiles_per_zoom)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        opt = work / "opt"
        local.extract_zip(layer_zip, opt)
        cog = make_tiles_cog(cli, variant.gdal_tag, work / "www")
        status, out = runtime.run_clean(
            cli,
            variant,
            ["python3", "-c", LAYOUT, "/data/tiles.tif"],
            opt=opt,
            mounts={"/data": cog.parent},
        )
        if status != 0:
            raise SystemExit(f"reading the COG's layout failed:\n{out[-3000:]}")
        layout = json.loads(out.strip().splitlines()[-1])
        floors = {t: floor_of(layout, t) for t in tiles}
        print(
            f"COG {cog.stat().st_size / 1e6:.1f} MB, {len(layout['levels'])} levels, header "
            f"{min(o for lv in layout['levels'] for o, _ in lv['blocks'].values()):,} bytes; "
            f"{args.tiles_per_zoom} tiles per zoom, each a cold open"
        )
        wheel = work / "wheel"
        install_wheel(cli, newest, wheel)
        recommended = dict(runtime.RECOMMENDED_GDAL_ENV)
        readers = [
            ("layer, floor runtime", variant, opt, None),
            ("wheel, debian13 runtime", newest, None, wheel),
        ]
        header = (
            "| reader, configuration | zoom | requests/tile | bytes/tile | ms/tile (median) | "
            "floor (requests / bytes) | requests ÷ floor | bytes ÷ floor (worst) | protocol |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
        )
        results: dict[tuple[str, str, str], dict[int, Measured]] = {}
        print("\nHTTP (/vsicurl/, nginx on 127.0.0.1)\n" + header)
        first_http = None
        with nginx.serve(cog.parent) as server:
            counter = iter(range(10**6))
            for label, where, lopt, task in readers:
                for config, env in (("none", {}), ("recommended", recommended)):
                    names = {
                        t: f"/vsicurl/{server.url(f'copy-{next(counter)}/tiles.tif')}"
                        for t in tiles
                    }
                    result = measure(
                        cli, where, server, names, opt=lopt, task=task, env=env, floors=floors
                    )
                    table_row(f"{label}, {config}", result)
                    results[("HTTP", label, config)] = result
            first_http = server.url("tiles.tif")

            print(
                f"\ncold start to the first tile (z{tiles[0].z}, /vsicurl/, no configuration), "
                f"median of {args.runs} fresh containers; peak RSS"
            )
            layer_d13 = [("layer, debian13 runtime", newest, opt, None)]
            for label, where, lopt, task in [readers[0], *layer_d13, readers[1]]:
                seconds, rss = cold_start(
                    cli,
                    where,
                    f"/vsicurl/{first_http}",
                    tiles[0],
                    opt=lopt,
                    task=task,
                    runs=args.runs,
                )
                print(f"  {label}: {seconds * 1000:.0f} ms, peak RSS {rss:.0f} MiB")

        print("\nS3 (/vsis3/, moto behind nginx on 127.0.0.1)\n" + header)
        with moto_s3() as (endpoint, s3), nginx.serve(proxy=f"http://{endpoint}") as proxy:
            s3_env = {
                **image_s3_env(f"127.0.0.1:{proxy.port}"),
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
            }
            counter = iter(range(10**6))
            for label, where, lopt, task in readers:
                for config, env in (("none", {}), ("recommended", recommended)):
                    names = {}
                    for t in tiles:
                        key = f"copy-{next(counter)}/tiles.tif"
                        s3.upload_file(str(cog), "cogs", key)
                        names[t] = f"/vsis3/cogs/{key}"
                    result = measure(
                        cli,
                        where,
                        proxy,
                        names,
                        opt=lopt,
                        task=task,
                        env={**s3_env, **env},
                        floors=floors,
                    )
                    table_row(f"{label}, {config}", result)
                    results[("S3", label, config)] = result
                    for key in names.values():
                        s3.delete_object(Bucket="cogs", Key=key.removeprefix("/vsis3/cogs/"))

        print("\ngoal: the layer with no configuration at the floor's requests, bytes <= 1.1x")
        for where in ("S3", "HTTP"):
            zooms = results[(where, readers[0][0], "none")].values()
            requests = max(m.requests_ratio for m in zooms)
            worst = max(m.worst_bytes_ratio for m in zooms)
            extra = " (/vsicurl/'s HEAD)" if where == "HTTP" else ""
            print(
                f"  {where}: requests {requests:.2f}x the floor{extra}, bytes {worst:.2f}x at "
                f"worst (goal <= {GOAL_BYTES})"
            )


if __name__ == "__main__":
    main()
