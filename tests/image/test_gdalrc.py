"""The gdalrc every artifact carries: where GDAL finds it, that its values are in effect with no
variable set and that a variable still wins, and the core claim it is there for: a tile read
with no configuration at all costs the physical floor of requests and about its bytes."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import nginx
import pytest
from image_helpers import (
    LAYOUT,
    READ_TILES,
    floor_of,
    moto_s3,
    s3_env,
    sh,
    tiles_to_read,
)

from gdal_lambda import runtime

pytestmark = pytest.mark.image

GDALRC_VALUES = {name: runtime.RECOMMENDED_GDAL_ENV[name] for name in runtime.GDALRC_OPTIONS}
SHOW_OPTIONS = (
    "import json\nfrom osgeo import gdal\n"
    f"print(json.dumps({{k: gdal.GetConfigOption(k) for k in {list(runtime.GDALRC_OPTIONS)!r}}}))"
)


def _last_json(out: str) -> dict:
    return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])


def _run(cli, variant, command: list[str], **kwargs) -> str:
    status, out = runtime.run_clean(cli, variant, command, **kwargs)
    if status != 0:
        pytest.fail(f"exit {status} in the clean runtime:\n{out[-4000:]}")
    return out


def test_the_gdal_image_reads_its_gdalrc_from_the_compiled_in_sysconfdir(cli, gdal_image) -> None:
    """libgdal's compiled-in sysconfdir is /opt/etc: GDAL loads /opt/etc/gdal/gdalrc (a link to
    share/gdal/gdalrc) with nothing set, and a variable of the same name wins."""
    out = sh(
        cli,
        gdal_image,
        "grep -c /opt/etc /opt/lib/libgdal.so; readlink /opt/etc/gdal/gdalrc; "
        "cat /opt/etc/gdal/gdalrc; gdalinfo --debug on --version 2>&1 | grep CPL; "
        "GDAL_HTTP_MAX_RETRY=0 gdalinfo --debug on --version 2>&1 | grep -i ignoring",
    )
    assert "../../share/gdal/gdalrc" in out
    assert runtime.gdalrc_text() in out
    assert f"Loading configuration from /opt/{runtime.SYSCONF_GDALRC}" in out
    assert "Ignoring configuration option GDAL_HTTP_MAX_RETRY" in out


def test_the_layer_zip_carries_the_gdalrc(layer_zip: Path) -> None:
    with zipfile.ZipFile(layer_zip) as zf:
        assert zf.read(runtime.GDALRC).decode() == runtime.gdalrc_text()
        link = zf.getinfo(runtime.SYSCONF_GDALRC)
        assert (link.external_attr >> 16) & 0o170000 == 0o120000, "etc/gdal/gdalrc is a link"
        assert zf.read(link).decode() == "../../share/gdal/gdalrc"


def test_gdalrc_values_are_in_effect_with_no_variable_set(cli, variant, opt: Path) -> None:
    """The floor runtime with exactly Lambda's environment: no GDAL variable at all."""
    out = _run(cli, variant, ["python3", "-c", SHOW_OPTIONS], opt=opt)
    assert _last_json(out) == GDALRC_VALUES


def test_an_environment_variable_overrides_the_gdalrc(cli, variant, opt: Path, tiles_cog) -> None:
    """Bad input for the file: a function that needs other values sets the variable, and the
    variable wins, both as GDAL reports it and in what GDAL does (the directory listing and the
    side-car probes EMPTY_DIR prevents come back)."""
    env = {"GDAL_DISABLE_READDIR_ON_OPEN": "NO", "GDAL_HTTP_MAX_RETRY": "0"}
    out = _run(cli, variant, ["python3", "-c", SHOW_OPTIONS], opt=opt, env=env)
    assert _last_json(out) == {**GDALRC_VALUES, **env}
    [tile] = tiles_to_read(1)[:1]
    with nginx.serve(tiles_cog.parent) as server:
        args = [[f"/vsicurl/{server.url('copy-1/tiles.tif')}", tile.z, tile.x, tile.y]]
        _run(cli, variant, ["python3", "-c", READ_TILES, json.dumps(args)], opt=opt, env=env)
        paths = [e.path for e in server.entries()]
    assert "/copy-1/" in paths, paths  # the listing GDAL skips under the gdalrc
    assert any(p.endswith(".aux.xml") for p in paths), paths


@pytest.fixture(scope="module")
def layout(cli, variant, opt: Path, tiles_cog: Path) -> dict:
    out = _run(
        cli,
        variant,
        ["python3", "-c", LAYOUT, "/data/tiles.tif"],
        opt=opt,
        mounts={"/data": tiles_cog.parent},
    )
    return _last_json(out)


def _per_tile(entries, names: dict) -> dict:
    found: dict = {tile: [] for tile in names}
    for entry in entries:
        for tile, name in names.items():
            if f"/{name.split('/')[-2]}/" in entry.path:
                found[tile].append(entry)
    return found


def test_tiles_over_http_cost_the_floor_plus_gdals_head(
    cli, variant, opt: Path, tiles_cog: Path, layout
) -> None:
    """The issue's core claim over HTTP, with no configuration: per tile (one at each of three
    zoom levels, each a cold open) no directory listing, no side-car probe, the header read and
    one read of the tile's block, plus the one HEAD /vsicurl/ always sends for the file's size
    (a plain HTTP handle has no ranged-GET-instead-of-HEAD, unlike /vsis3/'s, GDAL's
    port/cpl_vsil_curl.cpp), and bytes within 1.1x the floor."""
    tiles = tiles_to_read(1)
    with nginx.serve(tiles_cog.parent) as server:
        names = {t: f"/vsicurl/{server.url(f'copy-{i}/tiles.tif')}" for i, t in enumerate(tiles)}
        args = [[names[t], t.z, t.x, t.y] for t in tiles]
        _run(cli, variant, ["python3", "-c", READ_TILES, json.dumps(args)], opt=opt)
        per_tile = _per_tile(server.entries(), names)
    for tile, entries in per_tile.items():
        floor = floor_of(layout, tile)
        assert floor.requests == 2
        methods = [(e.method, e.status) for e in entries]
        assert methods == [("HEAD", 200), ("GET", 206), ("GET", 206)], (tile, entries)
        body = sum(e.body_bytes for e in entries)
        assert body <= 1.1 * floor.bytes, (tile, body, floor)


def test_tiles_over_s3_cost_the_floor(cli, variant, opt: Path, tiles_cog: Path, layout) -> None:
    """The same through /vsis3/ (moto behind nginx, whose log counts): exactly the floor's two
    requests per tile with no configuration, bytes within 1.1x the floor."""
    tiles = tiles_to_read(1)
    with moto_s3() as (endpoint, s3), nginx.serve(proxy=f"http://{endpoint}") as proxy:
        names = {}
        for i, tile in enumerate(tiles):
            s3.upload_file(str(tiles_cog), "cogs", f"copy-{i}/tiles.tif")
            names[tile] = f"/vsis3/cogs/copy-{i}/tiles.tif"
        env = {
            **s3_env(f"127.0.0.1:{proxy.port}"),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        args = [[names[t], t.z, t.x, t.y] for t in tiles]
        _run(cli, variant, ["python3", "-c", READ_TILES, json.dumps(args)], opt=opt, env=env)
        per_tile = _per_tile(proxy.entries(), names)
    for tile, entries in per_tile.items():
        floor = floor_of(layout, tile)
        assert [(e.method, e.status) for e in entries] == [("GET", 206)] * floor.requests, entries
        body = sum(e.body_bytes for e in entries)
        assert body <= 1.1 * floor.bytes, (tile, body, floor)
