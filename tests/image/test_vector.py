"""Vector users on the layers' one GDAL: pyogrio in geo, geopandas in its own recipe, proven in
the target's plain runtime image with Lambda's environment."""

from __future__ import annotations

import dataclasses
import json
import stat
import subprocess
import zipfile
from pathlib import Path

import pytest
from helpers import ROOT
from httpserver import serve
from image_helpers import sh

from gdal_lambda import recipes, runtime
from gdal_lambda.variant import Variant

pytestmark = pytest.mark.image

RECIPES = ["geo", "geopandas"]


@pytest.fixture(scope="module", params=RECIPES)
def recipe_variant(request, variant: Variant) -> Variant:
    return dataclasses.replace(variant, recipe=request.param)


@pytest.fixture(scope="module")
def recipe_opt(recipe_variant: Variant, tmp_path_factory) -> Path:
    path = recipe_variant.layer_zip()
    if not path.is_file():
        pytest.fail(f"{path} missing: run `nox -s test-{recipe_variant.line.name}` first")
    dest = tmp_path_factory.mktemp(recipe_variant.recipe) / "opt"
    subprocess.run(["unzip", "-q", str(path), "-d", str(dest)], check=True)
    return dest


def run(cli, variant: Variant, opt: Path, code: str) -> dict:
    status, out = runtime.run_clean(cli, variant, ["python3", "-c", code], opt=opt)
    if status != 0:
        pytest.fail(f"exit {status} in the clean runtime:\n{out[-4000:]}")
    return json.loads(out.strip().splitlines()[-1])


def test_every_recipe_is_tested_here() -> None:
    shipped = {p.parent.name for p in (ROOT / "layers").glob("*/requirements.txt")}
    assert shipped == set(RECIPES)
    assert [r.name for r in recipes.load("geopandas").chain()] == RECIPES


ONE_PROCESS = """
import json, re
from osgeo import gdal
import rasterio, pyogrio, shapely, pyproj
try:
    import geopandas
except ImportError:
    geopandas = None
def loaded(name):
    paths = set()
    for line in open("/proc/self/maps"):
        path = line.split()[-1] if len(line.split()) >= 6 else ""
        if re.search(r"/" + name + r"[-.][^/]*so", path):
            paths.add(path)
    return sorted(paths)
print(json.dumps({
    "gdal": gdal.__version__, "rasterio_gdal": rasterio.__gdal_version__,
    "pyogrio_gdal": pyogrio.__gdal_version_string__,
    "pyproj_proj": pyproj.proj_version_str,
    "shapely_geos": shapely.geos_version_string,
    "geopandas": geopandas.__version__ if geopandas else None,
    "pyogrio_driver_count": len(pyogrio.list_drivers()),
    "libgdal": loaded("libgdal"), "libproj": loaded("libproj"),
    "libgeos_c": loaded("libgeos_c"), "openblas": loaded("libscipy_openblas64_") + loaded("libopenblas"),
}))
"""


def test_one_process_holds_one_gdal_and_one_proj(cli, recipe_variant, recipe_opt, line) -> None:
    """osgeo.gdal, rasterio, pyogrio, shapely and pyproj (and geopandas) in one process: the same
    GDAL and PROJ, exactly one libgdal and one libproj mapped, all from /opt/lib."""
    facts = run(cli, recipe_variant, recipe_opt, ONE_PROCESS)
    gdal = line.version("gdal")
    assert facts["gdal"] == facts["rasterio_gdal"] == facts["pyogrio_gdal"] == gdal
    assert facts["pyproj_proj"] == line.version("proj")
    assert facts["shapely_geos"].startswith(line.version("geos"))
    for lib in ("libgdal", "libproj", "libgeos_c"):
        assert len(facts[lib]) == 1 and facts[lib][0].startswith("/opt/lib/"), (lib, facts[lib])
    assert facts["openblas"] == []
    assert facts["pyogrio_driver_count"] > 50
    if recipe_variant.recipe == "geopandas":
        assert facts["geopandas"]
    else:
        assert facts["geopandas"] is None, "geo must not carry geopandas"


def test_no_recipe_ships_openblas_or_a_second_gdal(recipe_variant: Variant) -> None:
    with zipfile.ZipFile(recipe_variant.layer_zip()) as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    assert not [n for n in names if "openblas" in n.lower()]
    assert not [n for n in names if ".libs/" in n and "python/" in n], "a wheel's bundled libs"
    # one libgdal file; its other names (libgdal.so, libgdal.so.39) are symlinks to it
    gdal = [i for i in infos if i.filename.startswith("lib/libgdal.so")]
    files = [i.filename for i in gdal if not stat.S_ISLNK(i.external_attr >> 16)]
    assert len(files) == 1 and len(gdal) >= 2, [i.filename for i in gdal]


GEOPANDAS_IO = """
import json, geopandas as gpd
from shapely.geometry import Point
df = gpd.GeoDataFrame({{"n": [1, 2, 3], "name": ["a", "b", "c"]}},
                      geometry=[Point(0, 0), Point(1, 1), Point(2, 2)], crs=4326)
out = {{"engine": gpd.options.io_engine or "pyogrio"}}
for driver, ext in [("GPKG", "gpkg"), ("FlatGeobuf", "fgb"), ("GeoJSON", "geojson"),
                    ("ESRI Shapefile", "shp")]:
    path = "/tmp/t." + ext
    df.to_file(path, driver=driver, engine="pyogrio")
    back = gpd.read_file(path, engine="pyogrio")
    out[driver] = [len(back), sorted(back["name"]), back.crs.to_epsg(),
                   sorted(round(g.x, 6) for g in back.geometry)]  # FlatGeobuf's index reorders
merc = df.to_crs(3857)
out["to_crs"] = [round(merc.geometry[1].x, 2), round(merc.geometry[1].y, 2)]
remote = gpd.read_file("/vsicurl/{url}", engine="pyogrio")
out["remote"] = [len(remote), remote.crs.to_epsg(), sorted(remote["name"])]
print(json.dumps(out))
"""


def test_geopandas_writes_reads_reprojects_and_reads_over_http(
    cli, variant: Variant, gdal_image: str, tmp_path: Path
) -> None:
    gp = dataclasses.replace(variant, recipe="geopandas")
    opt = tmp_path / "opt"
    subprocess.run(["unzip", "-q", str(gp.layer_zip()), "-d", str(opt)], check=True)
    www = tmp_path / "www"
    www.mkdir()
    features = [
        {
            "type": "Feature",
            "properties": {"name": n},
            "geometry": {"type": "Point", "coordinates": c},
        }
        for n, c in (("x", [5, 5]), ("y", [6, 6]))
    ]
    (www / "in.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    sh(
        cli,
        gdal_image,
        "ogr2ogr -f GPKG -a_srs EPSG:4326 /www/remote.gpkg /www/in.geojson && chmod 644 /www/*",
        volumes={str(www): {"bind": "/www", "mode": "rw"}},
    )
    with serve(www) as server:
        facts = run(cli, gp, opt, GEOPANDAS_IO.format(url=server.url("remote.gpkg")))
        ranged = [r for method, path, r in server.state.requests if path == "/remote.gpkg" and r]
    for driver in ("GPKG", "FlatGeobuf", "GeoJSON", "ESRI Shapefile"):
        assert facts[driver] == [3, ["a", "b", "c"], 4326, [0.0, 1.0, 2.0]], driver
    assert facts["to_crs"] == pytest.approx([111319.49, 111325.14], abs=0.01)
    assert facts["remote"] == [2, 4326, ["x", "y"]]
    assert ranged, "the GeoPackage should be read with HTTP Range requests"
