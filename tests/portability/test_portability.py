"""One layer, built on the ABI floor, unchanged in newer runtimes.

Run by `nox -s portability-<line>` after `nox -s test-<line>` built the layer zip for
$GDAL_LAMBDA_TARGET (CI: the debian11 floor stand-in). Every other stand-in runtime runs the
layer's native tools (gdalinfo, ogr2ogr, projinfo, cs2cs) with Lambda's environment; one whose
Python is the layer's (debian13: 3.13) also imports the layer's Python packages.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from gdal_lambda import images, runtime, versions
from gdal_lambda.variant import Variant

MATRIX = versions.load_matrix(env=os.environ)
# What `nox -s test-<line>[-arm64]` built the zip for: $GDAL_LAMBDA_TARGET (default the matrix's,
# the floor), $GDAL_LAMBDA_PYTHON (default its newest), $GDAL_LAMBDA_ARCH; the line in `built`.
BUILT_ON = MATRIX.target(os.environ.get("GDAL_LAMBDA_TARGET") or None)
PYTHON = BUILT_ON.check_python(os.environ.get("GDAL_LAMBDA_PYTHON") or None)
RUNTIMES = sorted(n for n, t in MATRIX.targets.items() if t.is_standin and n != BUILT_ON.name)
# The runtimes whose Python is the layer's, where its imports are proven ("(none)" fails).
SAME_PYTHON = [n for n in RUNTIMES if PYTHON in MATRIX.targets[n].pythons] or ["(none)"]

TOOLS = (
    "set -e; gdalinfo --version; projinfo EPSG:3857 -o PROJ | tail -1; "
    "echo '49 2' | cs2cs -f '%.2f' EPSG:4326 EPSG:3857; "
    'echo \'{"type":"Point","coordinates":[1,2]}\' > /tmp/p.geojson; '
    "ogr2ogr -f GPKG /tmp/p.gpkg /tmp/p.geojson; ogrinfo -ro -so -al /tmp/p.gpkg | grep 'Feature Count'"
)
IMPORTS = """
import json
import numpy, rasterio, shapely, pyproj
from osgeo import gdal, osr
from shapely.geometry import Point
print(json.dumps({
    "gdal": gdal.__version__, "rasterio_gdal": rasterio.__gdal_version__,
    "proj": pyproj.proj_version_str, "geos": shapely.geos_version_string,
    "transform": pyproj.Transformer.from_crs(4326, 3857, always_xy=True).transform(2, 49),
    "area": Point(0, 0).buffer(1).area, "numpy": numpy.arange(4).sum().item(),
}))
"""


def built_variant(env: Mapping[str, str]) -> Variant:
    """The zip's variant; its line is $GDAL_LAMBDA_LINE, never a default: without it, the tests
    fail saying how to run them (like tests/image's conftest)."""
    line = env.get("GDAL_LAMBDA_LINE")
    if not line:
        pytest.fail("GDAL_LAMBDA_LINE is not set: run these through `nox -s portability-<line>`")
    return Variant.resolve(MATRIX, line=line, env=env)


@pytest.fixture(scope="module")
def built() -> Variant:
    return built_variant(os.environ)


def unpacked(variant: Variant, dest: Path) -> Path:
    """The variant's layer zip unpacked at ``dest`` by Info-ZIP's unzip, as Lambda unpacks it."""
    zip_path = variant.layer_zip()
    if not zip_path.is_file():
        pytest.fail(f"{zip_path} missing: run `nox -s test-{variant.line.name}` first")
    subprocess.run(["unzip", "-q", str(zip_path), "-d", str(dest)], check=True)
    return dest


@pytest.fixture(scope="module")
def opt(built: Variant, tmp_path_factory) -> Path:
    return unpacked(built, tmp_path_factory.mktemp("layer") / "opt")


def _run(built: Variant, target: versions.Target, command: list[str], opt: Path) -> str:
    """``command`` in another target's runtime (its newest Python), same architecture."""
    where = Variant.resolve(
        MATRIX, line=built.line.name, env={}, target=target.name, arch=built.arch
    )
    code, out = runtime.run_clean(images.client(), where, command, opt=opt, env=runtime.data_env())
    assert code == 0, out[-3000:]
    return out


@pytest.mark.parametrize("run_on", RUNTIMES)
def test_native_tools_run_in_another_runtime(built: Variant, opt: Path, run_on: str) -> None:
    out = _run(built, MATRIX.targets[run_on], ["sh", "-c", TOOLS], opt)
    assert f"GDAL {built.line.version('gdal')}" in out
    assert "+proj=merc" in out
    assert "222638.98\t6274861.39" in out
    assert "Feature Count: 1" in out


@pytest.mark.parametrize("run_on", SAME_PYTHON)
def test_python_imports_in_another_runtime_with_the_same_python(
    built: Variant, opt: Path, run_on: str
) -> None:
    if run_on == "(none)":
        pytest.fail(f"no other stand-in runtime has Python {PYTHON}: nothing proves the imports")
    line = built.line
    out = _run(built, MATRIX.targets[run_on], ["python3", "-c", IMPORTS], opt)
    facts = json.loads(out.strip().splitlines()[-1])
    assert facts["gdal"] == facts["rasterio_gdal"] == line.version("gdal")
    assert facts["proj"] == line.version("proj")
    assert facts["geos"].startswith(line.version("geos"))
    x, y = facts["transform"]
    assert x == pytest.approx(222638.98, abs=0.01) and y == pytest.approx(6274861.39, abs=0.01)
    assert facts["area"] == pytest.approx(3.1365, abs=0.001) and facts["numpy"] == 6


GEOPANDAS = """
import json, geopandas as gpd, pyogrio
from osgeo import gdal
from shapely.geometry import Point
df = gpd.GeoDataFrame({"n": [1, 2]}, geometry=[Point(0, 0), Point(1, 1)], crs=4326)
df.to_file("/tmp/t.gpkg", engine="pyogrio")
back = gpd.read_file("/tmp/t.gpkg", engine="pyogrio").to_crs(3857)
print(json.dumps({"gdal": gdal.__version__, "pyogrio_gdal": pyogrio.__gdal_version_string__,
                  "rows": len(back), "x": round(back.geometry[1].x, 2)}))
"""


@pytest.mark.parametrize("run_on", SAME_PYTHON)
def test_geopandas_layer_in_another_runtime_with_the_same_python(
    built: Variant, tmp_path: Path, run_on: str
) -> None:
    if run_on == "(none)":
        pytest.fail(f"no other stand-in runtime has Python {PYTHON}: nothing proves the imports")
    opt = unpacked(dataclasses.replace(built, recipe="geopandas"), tmp_path / "opt")
    out = _run(built, MATRIX.targets[run_on], ["python3", "-c", GEOPANDAS], opt)
    facts = json.loads(out.strip().splitlines()[-1])
    assert facts["gdal"] == facts["pyogrio_gdal"] == built.line.version("gdal")
    assert facts["rows"] == 2 and facts["x"] == pytest.approx(111319.49, abs=0.01)
