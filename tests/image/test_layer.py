"""The geo layer zip, proven in the target's plain runtime image the way Lambda runs it."""

from __future__ import annotations

import hashlib
import json
import stat
import zipfile
from pathlib import Path

import pytest
from helpers import ROOT
from httpserver import serve
from image_helpers import make_cog

from gdal_lambda import layer, naming, runtime

pytestmark = pytest.mark.image


def run(cli, variant, opt: Path, code: str, env: dict[str, str] | None = None) -> str:
    status, out = runtime.run_clean(cli, variant, ["python3", "-c", code], opt=opt, env=env)
    if status != 0:
        pytest.fail(f"exit {status} in the clean runtime:\n{out[-4000:]}")
    return out


def test_layout_and_slimming(layer_zip: Path, python: str) -> None:
    with zipfile.ZipFile(layer_zip) as zf:
        names = zf.namelist()
        infos = zf.infolist()
    tops = {n.split("/", 1)[0] for n in names}
    # etc/: GDAL's compiled-in ${sysconfdir}, holding only the link to share/gdal/gdalrc
    assert tops == {"bin", "etc", "lib", "share", "python"}
    assert [n for n in names if n.startswith("etc/") and not n.endswith("/")] == [
        runtime.SYSCONF_GDALRC
    ]
    for bad in ("include/", "lib/pkgconfig/", "lib/cmake/", "share/man/", "share/doc/"):
        assert not [n for n in names if n.startswith(bad)], bad
    assert not [n for n in names if "/tests/" in n]
    # Bytecode ships (read-only /opt): every module has its .pyc beside it, for this Python.
    sources = [n for n in names if n.startswith("python/") and n.endswith(".py")]
    compiled = {n for n in names if n.endswith(".pyc")}
    tag = "cpython-" + python.replace(".", "")

    def pyc(source: str) -> str:
        folder, name = source.rsplit("/", 1)
        return f"{folder}/__pycache__/{name[:-3]}.{tag}.pyc"

    missing = [s for s in sources if pyc(s) not in compiled]
    assert sources and not missing, missing[:5]
    assert not [n for n in names if n.endswith((".h", ".c", ".cpp", ".pyx", ".pyi"))]
    assert not [n for n in names if n.startswith("python/numpy/_core/_simd.")]
    assert not [n for n in names if n.startswith("python/osgeo_utils/samples/")]
    assert "python/osgeo_utils/gdal_calc.py" in names, "GDAL's utilities stay"
    assert not [n for n in names if n.endswith((".a", ".la"))]
    assert not [n for n in names if n.startswith(("python/boto3/", "python/botocore/"))]
    assert [n for n in names if n.endswith(".dist-info/METADATA") and "rasterio" in n]
    assert "share/proj/proj.db" in names and "share/gdal/gdalvrt.xsd" in names
    assert sum(1 for n in names if n.endswith("/proj.db")) == 1, "one proj.db for every package"
    assert "bin/gdalinfo" in names and "bin/ogr2ogr" in names and "bin/projinfo" in names
    assert "bin/gdal-config" not in names
    for info in infos:
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            continue
        if info.is_dir():
            assert stat.S_IMODE(mode) == 0o755, info.filename
        else:
            assert stat.S_IMODE(mode) in (0o644, 0o755), info.filename
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
    assert any(stat.S_ISLNK(i.external_attr >> 16) for i in infos), (
        "library symlinks must stay links"
    )
    assert names == sorted(names)


def test_manifest_records_components(layer_zip: Path, line) -> None:
    with zipfile.ZipFile(layer_zip) as zf:
        manifest = json.loads(zf.read("share/gdal-lambda/manifest.json"))
    for name in ("gdal", "proj", "geos"):
        assert manifest["components"][name]["version"] == line.version(name)
        assert manifest["components"][name]["sha256"] in {
            m.sha256 for m in line.sources[name].mirrors
        }
    packages = manifest["python_packages"]
    assert packages["GDAL"]["version"] == line.version("gdal")
    assert packages["GDAL"]["sha256"] == line.bindings_sha256
    assert packages["GDAL"]["file"] == f"gdal-{line.version('gdal')}.tar.gz"
    for pkg in ("rasterio", "shapely", "pyproj", "numpy"):
        assert pkg in packages
    for pkg in ("rasterio", "shapely", "pyproj"):  # compiled here: from their locked sdists
        assert packages[pkg]["file"].endswith(".tar.gz"), packages[pkg]


def test_manifest_python_entries_match_the_layer_and_its_lock(
    cli, variant, opt: Path, layer_zip: Path, matrix
) -> None:
    """Every distribution importlib.metadata finds in /opt/python (in the clean runtime) is in
    the manifest with the same version, and its file's sha256 is one the lock lists."""
    from gdal_lambda import locks

    with zipfile.ZipFile(layer_zip) as zf:
        packages = json.loads(zf.read("share/gdal-lambda/manifest.json"))["python_packages"]
    code = (
        "import importlib.metadata as m, json\n"
        "print(json.dumps({d.metadata['Name']: d.version for d in "
        "m.distributions(path=['/opt/python'])}))"
    )
    seen = json.loads(run(cli, variant, opt, code).strip().splitlines()[-1])
    assert seen == {name: entry["version"] for name, entry in packages.items()}
    overrides = matrix.requirement_overrides
    lock = locks.require(ROOT / "layers/geo/requirements.txt", variant.python, overrides)
    pins = locks.read_lock(lock).pins
    for name, entry in packages.items():
        if name == "GDAL":
            continue
        version, hashes = pins[naming.distribution_name(name)]
        assert entry["version"] == version, name
        assert entry["sha256"] in hashes, f"{name}: {entry['file']} is not a file of the lock"


def test_native_tools_in_the_clean_runtime(cli, variant, opt: Path) -> None:
    script = """
import subprocess, sys
print(subprocess.run(["gdalinfo", "--version"], capture_output=True, text=True, check=True).stdout)
open("/tmp/p.geojson", "w").write('{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"n":1},"geometry":{"type":"Point","coordinates":[1,2]}}]}')
subprocess.run(["ogr2ogr", "-f", "GPKG", "/tmp/p.gpkg", "/tmp/p.geojson"], check=True)
out = subprocess.run(["ogrinfo", "-ro", "-al", "-so", "/tmp/p.gpkg"], capture_output=True, text=True, check=True).stdout
print("COUNT", [l for l in out.splitlines() if "Feature Count" in l][0])
"""
    out = run(cli, variant, opt, script, runtime.data_env())
    assert "GDAL " in out and "COUNT Feature Count: 1" in out


IMPORTS = """
import json, sqlite3, ssl, lzma
import numpy
from osgeo import gdal, osr, gdal_array
from osgeo_utils import gdal_calc  # GDAL's utilities import without their samples
import rasterio, shapely, pyproj
from shapely.geometry import Point
print(json.dumps({
    "gdal": gdal.__version__,
    "rasterio_gdal": rasterio.__gdal_version__,
    "gdal_proj_paths": list(osr.GetPROJSearchPaths() or []),
    "pyproj_datadir": pyproj.datadir.get_data_dir(),
    "pyproj_proj": pyproj.proj_version_str,
    "shapely_geos": shapely.geos_version_string,
    "transform": pyproj.Transformer.from_crs(4326, 3857, always_xy=True).transform(2, 49),
    "buffer": Point(0, 0).buffer(1).area,
    "gdal_array": gdal_array.BandReadAsArray is not None,
    "sqlite": sqlite3.sqlite_version, "ssl": ssl.OPENSSL_VERSION,
    "numpy": numpy.__version__,
}))
"""


@pytest.mark.parametrize("with_data_env", [True, False], ids=["data-env", "no-data-env"])
def test_python_imports_share_one_proj(cli, variant, opt: Path, line, with_data_env) -> None:
    env = runtime.data_env() if with_data_env else {}
    out = run(cli, variant, opt, IMPORTS, env)
    facts = json.loads(out.strip().splitlines()[-1])
    assert facts["gdal"] == facts["rasterio_gdal"] == line.version("gdal")
    assert facts["pyproj_proj"] == line.version("proj")
    assert facts["shapely_geos"].startswith(line.version("geos"))
    assert facts["pyproj_datadir"] == "/opt/share/proj"
    if with_data_env:
        assert facts["gdal_proj_paths"] == ["/opt/share/proj"]
    x, y = facts["transform"]
    assert x == pytest.approx(222638.98, abs=0.01) and y == pytest.approx(6274861.39, abs=0.01)
    assert facts["buffer"] == pytest.approx(3.1365, abs=0.001)


READ_WINDOW = """
import json, rasterio
from rasterio.windows import Window
with rasterio.open("{url}") as src:
    a = src.read(1, window=Window(100, 100, 10, 10))
    b = src.read(1, window=Window(300, 300, 4, 4))
    print(json.dumps({{"a": sorted(set(a.ravel().tolist())), "a_corner": int(a[0, 0]), "a_in": int(a[5, 5]),
                      "b": sorted(set(b.ravel().tolist())), "shape": [src.width, src.height],
                      "crs": src.crs.to_epsg()}}))
"""


@pytest.mark.parametrize("with_data_env", [True, False], ids=["data-env", "no-data-env"])
def test_rasterio_reads_a_cog_over_vsicurl(
    cli, variant, opt: Path, gdal_image, tmp_path: Path, with_data_env
) -> None:
    make_cog(cli, gdal_image, tmp_path / "www")
    env = {**runtime.RECOMMENDED_GDAL_ENV, **(runtime.data_env() if with_data_env else {})}
    with serve(tmp_path / "www") as server:
        out = run(cli, variant, opt, READ_WINDOW.format(url=server.url("cog.tif")), env)
        ranged = [r for method, _, r in server.state.requests if method == "GET" and r]
    facts = json.loads(out.strip().splitlines()[-1])
    assert facts["shape"] == [512, 512] and facts["crs"] == 4326
    assert facts["a_corner"] == 1234 and facts["a_in"] == 4321
    assert facts["b"] == [1234]
    assert ranged, "rasterio should read through HTTP Range requests"


def test_zip_is_deterministic(cli, variant, layer_zip: Path, tmp_path: Path) -> None:
    again = layer.build_layer_zip(variant, dist=tmp_path)
    first = hashlib.sha256(layer_zip.read_bytes()).hexdigest()
    second = hashlib.sha256(again.zip_path.read_bytes()).hexdigest()
    assert first == second
