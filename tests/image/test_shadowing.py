"""No collisions with the runtime's copies of a library, in either direction.

Lambda puts /var/lang/lib, /lib64 and /usr/lib64 ahead of /opt/lib on LD_LIBRARY_PATH, and a
process holds one copy of each soname (lambgeo/docker-lambda#71, #101). The layer's bundled
libraries carry unique names (gdal_lambda.policy.graft), so:

* an older runtime copy ahead of /opt/lib (Debian 11's libsqlite3.so.0, 3.34.1, lacking
  sqlite3_error_offset that GDAL uses) does not break GDAL, PROJ or the Python bindings;
* the runtime's own Python modules (sqlite3, ssl) keep their own libraries whether the layer's
  modules were imported before or after them.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
import requests

from gdal_lambda import runtime

pytestmark = pytest.mark.image

# Debian 11's libsqlite3-0 3.34.1-3, per Debian architecture; each digest as bullseye's
# Packages index (dists/bullseye/main/binary-<arch>/Packages.xz) lists it.
OLD_SQLITE_DEBS = {
    "amd64": (
        "http://deb.debian.org/debian/pool/main/s/sqlite3/libsqlite3-0_3.34.1-3_amd64.deb",
        "a0b8d3acf4a0483048637637d269be93af48d5c16f6f139f53edd13384ad4686",
    ),
    "arm64": (
        "http://deb.debian.org/debian/pool/main/s/sqlite3/libsqlite3-0_3.34.1-3_arm64.deb",
        "1e33cd39dc4fff2a7edd7bb7e90a71e20fb528f6a581fe0287652e4dae77e0d0",
    ),
}
# A folder ahead of /opt/lib on LD_LIBRARY_PATH, as /var/lang/lib is on Lambda (not /var/lang/lib
# itself: on the al2023 images it holds the interpreter's own libpython).
SHADOW = "/var/shadow"


@pytest.fixture(scope="module")
def old_sqlite(tmp_path_factory, variant) -> Path:
    """A folder holding Debian 11's libsqlite3.so.0 (3.34.1) for the variant's architecture,
    fetched and verified."""
    url, sha256 = OLD_SQLITE_DEBS[variant.architecture.debian]
    work = tmp_path_factory.mktemp("old-sqlite")
    deb = work / "libsqlite3-0.deb"
    response = requests.get(url, timeout=60)
    response.raise_for_status()
    deb.write_bytes(response.content)
    assert hashlib.sha256(deb.read_bytes()).hexdigest() == sha256
    subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "root")], check=True)
    folder = work / "lib"
    folder.mkdir()
    lib = next((work / "root").rglob("libsqlite3.so.0.8.6"))
    (folder / "libsqlite3.so.0").write_bytes(lib.read_bytes())
    return folder


def _run(cli, variant, opt: Path, code: str, **kwargs) -> str:
    status, out = runtime.run_clean(cli, variant, ["python3", "-c", code], opt=opt, **kwargs)
    if status != 0:
        pytest.fail(f"exit {status} in the clean runtime:\n{out[-4000:]}")
    return out


SHADOWED = """
import ctypes, json, subprocess
from osgeo import gdal, ogr, osr
import rasterio, pyproj
gdal.UseExceptions()
ds = ogr.GetDriverByName("GPKG").CreateDataSource("/tmp/x.gpkg")
layer = ds.CreateLayer("p", osr.SpatialReference(), ogr.wkbPoint)
del layer, ds
maps = open("/proc/self/maps").read()
print(json.dumps({
    "gpkg": ogr.Open("/tmp/x.gpkg").GetLayerCount(),
    "wkt": osr.SpatialReference().ImportFromEPSG(32631) == 0,
    "pyproj": pyproj.CRS.from_epsg(32631).name,
    "rasterio_crs": rasterio.crs.CRS.from_epsg(3857).to_epsg(),
    "projinfo": subprocess.run(["projinfo", "-q", "-o", "PROJ", "EPSG:32631"],
                               capture_output=True, text=True, check=True).stdout.strip(),
    # what a plain dlopen of the soname gets: the runtime's copy (it is ahead on the path)
    "plain_sqlite": ctypes.CDLL("libsqlite3.so.0").sqlite3_libversion_number(),
    "old_sqlite_loaded": "OLD_SQLITE" in open("/proc/self/maps").read(),
    "layer_sqlite": sorted({l.split()[-1] for l in maps.splitlines() if "/opt/lib/libsqlite3" in l}),
}))
"""


def test_an_older_runtime_sqlite_ahead_of_opt_lib_breaks_nothing(
    cli, variant, opt: Path, old_sqlite: Path
) -> None:
    path = ":".join([SHADOW, *variant.ld_library_path])
    out = _run(
        cli,
        variant,
        opt,
        SHADOWED.replace("OLD_SQLITE", f"{SHADOW}/libsqlite3.so.0"),
        env={**runtime.data_env(), "LD_LIBRARY_PATH": path},
        mounts={SHADOW: old_sqlite},
    )
    facts = json.loads(out.strip().splitlines()[-1])
    assert facts["gpkg"] == 1 and facts["wkt"]
    assert facts["pyproj"] == "WGS 84 / UTM zone 31N" and facts["rasterio_crs"] == 3857
    assert "+proj=utm +zone=31" in facts["projinfo"]
    # The shadowing copy is really there and really first: a plain dlopen gets 3.34.1.
    assert facts["plain_sqlite"] == 3034001 and facts["old_sqlite_loaded"]
    # The layer used its own sqlite, under its own name, not the runtime's older one.
    assert len(facts["layer_sqlite"]) == 1 and "libsqlite3-" in facts["layer_sqlite"][0]


RUNTIME_MODULES = """
import json, sqlite3, ssl
def runtime_modules():
    conn = sqlite3.connect(":memory:")
    # serialize() needs SQLite >= 3.36 (Lambda's runtimes have it; the floor stand-in's is 3.34)
    if hasattr(conn, "serialize"):
        assert len(conn.serialize()) > 0
    # the module answers with its own library's version, whatever the layer loaded before
    assert conn.execute("select sqlite_version()").fetchone()[0] == sqlite3.sqlite_version
    context = ssl.create_default_context()
    return context.verify_mode == ssl.CERT_REQUIRED
def layer_modules():
    from osgeo import gdal
    import rasterio, pyproj
    return gdal.VersionInfo() and pyproj.CRS.from_epsg(4326).is_geographic
order = %r
results = [runtime_modules() if what == "runtime" else layer_modules() for what in order]
maps = open("/proc/self/maps").read()
print(json.dumps({
    "ok": all(results),
    "sqlite": sorted({l.split()[-1] for l in maps.splitlines() if "libsqlite3" in l}),
    "ssl": sorted({l.split()[-1] for l in maps.splitlines() if "libssl" in l}),
}))
"""


@pytest.mark.parametrize("order", [("layer", "runtime"), ("runtime", "layer")], ids="-then-".join)
def test_runtime_modules_keep_their_own_libraries(cli, variant, opt: Path, order) -> None:
    out = _run(cli, variant, opt, RUNTIME_MODULES % (order,), env=runtime.data_env())
    facts = json.loads(out.strip().splitlines()[-1])
    assert facts["ok"]
    # Both copies are loaded side by side: the runtime's for its modules, the layer's (grafted,
    # unique name) for GDAL and PROJ.
    assert any(p.startswith("/opt/lib/libsqlite3-") for p in facts["sqlite"]), facts
    assert any(not p.startswith("/opt/") for p in facts["sqlite"]), facts
    assert any(p.startswith("/opt/lib/libssl-") for p in facts["ssl"]), facts
    assert any(not p.startswith("/opt/") for p in facts["ssl"]), facts
