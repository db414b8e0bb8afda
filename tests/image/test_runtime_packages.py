"""What the runtime provides, and no second GDAL: the stand-in's /var/runtime SDK, a companion
package that leaves python-dateutil to it (pandas) and one that cannot (a newer urllib3), and
companions asking for GDAL's users (fiona, pyogrio) ending compiled against /opt, or refused."""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

import pytest
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

from gdal_lambda import local, package, runtime, runtime_sdk
from gdal_lambda.errors import GdalLambdaError

pytestmark = pytest.mark.image

# The handler every package here runs: which copy of each module it imported, and the GDAL and
# PROJ libraries in the process.
HANDLER = """
import importlib


def handler(event, context):
    found = {}
    for name in event["modules"]:
        module = importlib.import_module(name)
        found[name] = {"file": module.__file__, "version": getattr(module, "__version__", "")}
    with open("/proc/self/maps") as maps:
        libs = sorted({line.split()[-1] for line in maps if "/lib" in line and ".so" in line})
    return {"modules": found, "libs": libs}
"""


def _source(root: Path, name: str, requirements: str) -> Path:
    src = root / name
    src.mkdir()
    (src / "handler.py").write_text(HANDLER)
    (src / "requirements.txt").write_text(requirements)
    return src


def _invoke(cli, variant, zip_path: Path, tmp_path: Path, *modules: str) -> dict:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"modules": list(modules)}))
    result = local.invoke_local(
        cli,
        variant,
        zip_path,
        event,
        layer_zip=variant.layer_zip(),
        env=runtime.RECOMMENDED_GDAL_ENV,
    )
    assert result.ok, result.error
    return result.result


def _names(zip_path: Path) -> list[str]:
    with zipfile.ZipFile(zip_path) as zf:
        return [n for n in zf.namelist() if not n.endswith("/")]


def test_the_runtime_carries_lambdas_sdk_last_on_the_path(cli, variant) -> None:
    """A handler importing boto3 finds the runtime's copy, at the pinned version, after
    /var/task and the layer, as on Lambda."""
    script = (
        "import json, sys, importlib.metadata as m, boto3, dateutil; "
        "print(json.dumps({'path': sys.path, 'boto3': boto3.__file__, "
        "'versions': {d.metadata['Name'].lower().replace('_', '-'): d.version "
        "for d in m.distributions(path=['/var/runtime']) if d.metadata['Name'] != 'awslambdaric'}}))"
    )
    code, out = runtime.run_clean(cli, variant, ["python3", "-c", script])
    assert code == 0, out
    facts = json.loads(out.strip().splitlines()[-1])
    assert facts["boto3"].startswith("/var/runtime/boto3/")
    assert facts["versions"] == runtime_sdk.pins(variant.python)
    path = facts["path"]
    assert path.index("/var/task") < path.index("/opt/python") < path.index("/var/runtime")


@pytest.fixture(scope="session")
def pandas_zip(variant, tmp_path_factory) -> Path:
    """pandas (it needs python-dateutil>=2.8.2) and, beside it, a urllib3 newer than the
    runtime's: the first left to /var/runtime, the second shipped."""
    root = tmp_path_factory.mktemp("src")
    runtime_urllib3 = runtime_sdk.pins(variant.python)["urllib3"]
    src = _source(root, "pandas-companion", f"pandas\nurllib3>{runtime_urllib3}\n")
    out = tmp_path_factory.mktemp("dist") / "pandas.zip"
    package.build_package(variant, src, with_layer=True, out=out)
    return out


def test_pandas_companion_imports_with_the_runtimes_dateutil(
    cli, variant, pandas_zip, tmp_path
) -> None:
    names = _names(pandas_zip)
    assert any(n.startswith("pandas/") for n in names)
    # python-dateutil and six: the runtime's copies satisfy pandas, so they are not shipped.
    assert not [n for n in names if n.startswith(("dateutil/", "python_dateutil-", "six"))]
    found = _invoke(cli, variant, pandas_zip, tmp_path, "pandas", "dateutil", "six")["modules"]
    assert found["pandas"]["file"].startswith("/var/task/pandas/")
    assert found["dateutil"]["file"].startswith("/var/runtime/dateutil/")
    assert found["six"]["file"] == "/var/runtime/six.py"


def test_a_requirement_the_runtime_does_not_satisfy_is_shipped(
    cli, variant, pandas_zip, tmp_path
) -> None:
    names = _names(pandas_zip)
    assert any(n.startswith("urllib3/") for n in names)
    found = _invoke(cli, variant, pandas_zip, tmp_path, "urllib3")["modules"]
    assert found["urllib3"]["file"].startswith("/var/task/urllib3/")
    assert found["urllib3"]["version"] != runtime_sdk.pins(variant.python)["urllib3"]


def _needed(data: bytes) -> list[str]:
    elf = ELFFile(io.BytesIO(data))
    return [
        tag.needed
        for section in elf.iter_sections()
        if isinstance(section, DynamicSection)
        for tag in section.iter_tags()
        if tag.entry.d_tag == "DT_NEEDED"
    ]


@pytest.fixture(scope="session")
def vector_zip(variant, tmp_path_factory) -> Path:
    """fiona, and pyogrio (whose PyPI wheel carries its own libgdal), as companions."""
    root = tmp_path_factory.mktemp("src")
    src = _source(root, "vector-companion", "fiona\npyogrio\n")
    out = tmp_path_factory.mktemp("dist") / "vector.zip"
    package.build_package(variant, src, with_layer=True, out=out)
    return out


def test_gdal_users_as_companions_link_the_layers_gdal(cli, variant, vector_zip, tmp_path) -> None:
    """Whether the layer has pyogrio or not, the package carries no libgdal, libproj or
    proj.db of its own; every extension it ships that links GDAL links the layer's by name; one
    process holds one libgdal and one libproj."""
    with zipfile.ZipFile(vector_zip) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        own = [n for n in names if Path(n).name.startswith(("libgdal", "libproj", "libgeos"))]
        assert own == [] and not [n for n in names if n.endswith("/proj.db")]
        linking = {
            n: needed
            for n in names
            if n.endswith(".so")
            and (needed := [d for d in _needed(zf.read(n)) if d.startswith("libgdal")])
        }
    with zipfile.ZipFile(variant.layer_zip()) as zf:
        layer_gdal = {Path(n).name for n in zf.namelist() if Path(n).name.startswith("libgdal.so")}
    assert any(n.startswith("fiona/") for n in linking)
    assert {d for needed in linking.values() for d in needed} <= layer_gdal
    found = _invoke(cli, variant, vector_zip, tmp_path, "fiona", "pyogrio")
    assert found["modules"]["fiona"]["file"].startswith("/var/task/fiona/")
    for prefix in ("libgdal", "libproj"):
        loaded = [lib for lib in found["libs"] if Path(lib).name.startswith(prefix)]
        assert len(loaded) == 1 and loaded[0].startswith("/opt/lib/"), (prefix, loaded)


def _fake_wheel(folder: Path) -> Path:
    """A wheel with its own libgdal in foo.libs/ (a real ELF file's bytes), and no sdist
    anywhere: what cannot be compiled against /opt."""
    wheel = folder / "foo-1.0-py3-none-any.whl"
    info = "foo-1.0.dist-info"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("foo/__init__.py", "")
        zf.writestr("foo.libs/libgdal-1a2b3c4d.so.38", Path(sys.executable).resolve().read_bytes())
        zf.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: foo\nVersion: 1.0\n")
        zf.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        zf.writestr(f"{info}/RECORD", "")
    return wheel


@pytest.mark.parametrize("with_layer", [True, False], ids=["companion", "full"])
def test_a_wheel_with_its_own_libgdal_and_no_sdist_is_refused(
    variant, tmp_path, with_layer: bool
) -> None:
    src = tmp_path / "own-gdal"
    src.mkdir()
    (src / "handler.py").write_text("def handler(event, context):\n    return 1\n")
    _fake_wheel(src)
    (src / "requirements.txt").write_text(
        "foo @ file:///tmp/gdal-lambda/code/foo-1.0-py3-none-any.whl\n"
    )
    with pytest.raises(GdalLambdaError) as err:
        package.build_package(variant, src, with_layer=with_layer, out=tmp_path / "x.zip")
    line = str(err.value)
    assert "\n" not in line
    assert line.startswith("foo-1.0-py3-none-any.whl carries its own libgdal")
    assert "foo.libs/libgdal-1a2b3c4d.so.38" in line and "no sdist" in line
    assert not (tmp_path / "x.zip").exists()
