"""Function packages: both examples built and invoked in the clean runtime against a COG on a
local HTTP server; companion contents; the full package alone; determinism; bad input."""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
import zipfile
from pathlib import Path

import pytest
from helpers import ROOT
from httpserver import serve

from gdal_lambda import local, package, runtime, sbom
from gdal_lambda.errors import GdalLambdaError

pytestmark = pytest.mark.image


@pytest.fixture(scope="session")
def full_zip(variant, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist") / "package.zip"
    package.build_package(variant, ROOT / "examples" / "package", out=out)
    return out


@pytest.fixture(scope="session")
def companion_zip(variant, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist") / "layer.zip"
    package.build_package(variant, ROOT / "examples" / "layer", with_layer=True, out=out)
    return out


def _event(tmp_path: Path, **event) -> Path:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    return path


def test_full_package_runs_with_no_layer(cli, variant, full_zip, cog_dir, tmp_path) -> None:
    with serve(cog_dir) as server:
        event = _event(tmp_path, url=server.url("cog.tif"), z=5, x=16, y=15, size=64)
        result = local.invoke_local(cli, variant, full_zip, event, env=runtime.RECOMMENDED_GDAL_ENV)
    assert result.ok, result.error
    png = base64.b64decode(result.result["tile"]["png_base64"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    stats = result.result["stats"][0]
    assert stats["max"] == pytest.approx(4321, abs=1) and stats["min"] >= 0
    assert result.result["request_id"]


def test_full_package_layout(full_zip: Path) -> None:
    with zipfile.ZipFile(full_zip) as zf:
        names = zf.namelist()
    assert "handler.py" in names
    assert "requirements.txt" not in names and "event.json" not in names
    assert "share/proj/proj.db" in names and "share/gdal/gdalvrt.xsd" in names
    assert any(n.startswith("lib/libgdal.so") for n in names)
    assert any(n.startswith("rasterio/") for n in names) and any(
        n.startswith("mercantile/") for n in names
    )
    assert "bin/gdalinfo" in names
    # It redistributes the native stack as a layer does: the licence texts and an SBOM that
    # covers every library and distribution.
    assert "share/licenses/geos/COPYING" in names and "share/licenses/geos/SOURCE" in names
    with zipfile.ZipFile(full_zip) as zf, tempfile.TemporaryDirectory() as tmp:
        zf.extractall(tmp)
        text = (Path(tmp) / sbom.SBOM).read_text()
        assert sbom.check_licences(Path(tmp), text, python_dir=".") == []


def test_full_package_gdalrc_is_in_effect(cli, variant, full_zip, tmp_path) -> None:
    """A full package carries share/gdal/gdalrc; GDAL at /var/task finds it through
    GDAL_CONFIG_FILE (runtime.data_env, what `invoke run` sets and the README asks for), not at
    its compiled-in /opt/etc, and a variable still wins over it."""
    with zipfile.ZipFile(full_zip) as zf:
        assert zf.read(runtime.GDALRC).decode() == runtime.gdalrc_text()
    task = tmp_path / "task"
    local.extract_zip(full_zip, task)
    code = (
        "import json, rasterio\nfrom rasterio.env import get_gdal_config\n"
        "with rasterio.Env():\n"
        f"    print(json.dumps({{k: get_gdal_config(k, normalize=False) "
        f"for k in {list(runtime.GDALRC_OPTIONS)!r}}}))"
    )
    env = {**runtime.data_env(runtime.TASK_ROOT), "GDAL_HTTP_MAX_RETRY": "0"}
    status, out = runtime.run_clean(cli, variant, ["python3", "-c", code], task=task, env=env)
    assert status == 0, out[-3000:]
    seen = json.loads(out.strip().splitlines()[-1])
    expected = {k: runtime.RECOMMENDED_GDAL_ENV[k] for k in runtime.GDALRC_OPTIONS}
    assert seen == {**expected, "GDAL_HTTP_MAX_RETRY": "0"}
    status, out = runtime.run_clean(cli, variant, ["python3", "-c", code], task=task)
    assert status == 0, out[-3000:]
    assert json.loads(out.strip().splitlines()[-1])["CPL_VSIL_CURL_CHUNK_SIZE"] is None


def test_companion_runs_on_the_layer(cli, variant, companion_zip, cog_dir, tmp_path) -> None:
    layer_zip = variant.layer_zip()
    with serve(cog_dir) as server:
        event = _event(tmp_path, url=server.url("cog.tif"), points=[[3, 7], [8, 2]], zoom=6)
        result = local.invoke_local(
            cli,
            variant,
            companion_zip,
            event,
            layer_zip=layer_zip,
            env=runtime.RECOMMENDED_GDAL_ENV,
        )
    assert result.ok, result.error
    assert result.result["values"] == [[4321.0], [1234.0]]
    assert result.result["function"] == "layer"


def test_companion_holds_nothing_the_layer_has(variant, companion_zip) -> None:
    layer_zip = variant.layer_zip()
    with zipfile.ZipFile(layer_zip) as zf:
        in_layer = {n.removeprefix("python/") for n in zf.namelist()}
    with zipfile.ZipFile(companion_zip) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
    assert "handler.py" in names
    assert any(n.startswith("mercantile/") for n in names)
    assert not [n for n in names if n.startswith(("rasterio/", "numpy/", "pyproj/", "shapely/"))]
    assert sorted(set(names) & in_layer) == []


def test_handler_exception_is_reported(cli, variant, full_zip, tmp_path) -> None:
    event = _event(tmp_path, url="http://127.0.0.1:9/nothing.tif", z=1, x=0, y=0)
    result = local.invoke_local(cli, variant, full_zip, event)
    assert not result.ok
    assert result.error and result.error["errorType"] == "RasterioIOError"
    assert "Traceback" in result.error["stackTrace"]


def test_package_build_is_deterministic_and_a_no_change_rebuild_is_quick(
    variant, full_zip, tmp_path
) -> None:
    # Same file name (the manifest records it), another directory.
    again = package.build_package(
        variant, ROOT / "examples" / "package", out=tmp_path / "package.zip"
    )
    assert (
        hashlib.sha256(again.zip_path.read_bytes()).digest()
        == hashlib.sha256(full_zip.read_bytes()).digest()
    )
    third = package.build_package(
        variant, ROOT / "examples" / "package", out=tmp_path / "package.zip"
    )
    assert third.unchanged


@pytest.mark.parametrize(
    ("requirement", "named"),
    [
        # excluded by its own specifier: named at once, without pip
        ("numpy<2", r"requirement 'numpy<2' excludes numpy 2\.\S+, which layer geo provides"),
        # a marker leaves the line to pip (it evaluates markers in the target's Python): pip's
        # resolution must still find the layer's affine excluded
        (
            'affine<3 ; python_version >= "3.8"',
            r"requirement 'affine<3 ; python_version >= \"3\.8\"' needs affine 2\.\S+, "
            r"but layer geo provides affine 3\.",
        ),
    ],
    ids=["specifier", "pip"],
)
def test_a_requirement_conflicting_with_the_layer_is_named(
    variant, tmp_path, requirement: str, named: str
) -> None:
    src = tmp_path / "conflict"
    src.mkdir()
    (src / "handler.py").write_text("def handler(event, context):\n    return 1\n")
    (src / "requirements.txt").write_text(f"{requirement}\n")
    with pytest.raises(GdalLambdaError, match=named):
        package.build_package(variant, src, with_layer=True, out=tmp_path / "c.zip")
    assert not (tmp_path / "c.zip").exists()


def test_requirements_that_fail_show_pips_lines(variant, tmp_path) -> None:
    src = tmp_path / "broken"
    src.mkdir()
    (src / "handler.py").write_text("def handler(event, context):\n    return 1\n")
    (src / "requirements.txt").write_text("this-package-does-not-exist-gdal-lambda==0.0.1\n")
    with pytest.raises(GdalLambdaError) as err:
        package.build_package(variant, src, out=tmp_path / "b.zip")
    assert "No matching distribution found" in str(err.value)
    assert not (tmp_path / "b.zip").exists()


def test_event_must_be_json(cli, variant, full_zip, tmp_path) -> None:
    bad = tmp_path / "event.json"
    bad.write_text("{not json")
    with pytest.raises(GdalLambdaError, match="is not JSON"):
        local.invoke_local(cli, variant, full_zip, bad)
