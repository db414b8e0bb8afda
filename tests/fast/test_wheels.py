"""Wheels that carry their own copy of a layer library: read from the wheels, then compiled
against /opt or refused in one line."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import pytest

from gdal_lambda import wheels
from gdal_lambda.elf import MAGIC
from gdal_lambda.errors import GdalLambdaError


def an_elf() -> bytes:
    """A real ELF file's bytes (this interpreter): what a bundled library looks like inside."""
    data = Path(sys.executable).resolve().read_bytes()
    assert data[:4] == MAGIC
    return data


def make_wheel(folder: Path, name: str, members: dict[str, bytes]) -> Path:
    path = folder / name
    dist, version = name.split("-")[:2]
    info = f"{dist}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as zf:
        for member, data in members.items():
            zf.writestr(member, data)
        zf.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
        )
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: false\n")
        zf.writestr(f"{info}/RECORD", "")
    return path


@pytest.mark.parametrize(
    ("member", "provides"),
    [
        ("foo.libs/libgdal-1a2b3c4d.so.38", "libgdal"),
        ("foo.libs/libproj-0f0f0f0f.so.25.9.1", "libproj"),
        ("foo.libs/libgeos_c-abcdef12.so.1.19.0", "libgeos_c"),
        ("foo.libs/libgeos-abcdef12.so.3.13.1", "libgeos"),
        ("foo/proj_data/proj.db", "proj.db"),
    ],
)
def test_a_bundled_layer_library_is_found(tmp_path: Path, member: str, provides: str) -> None:
    data = b"SQLite format 3\0" if member.endswith(".db") else an_elf()
    wheel = make_wheel(
        tmp_path,
        "foo-1.2-cp313-cp313-manylinux_2_28_x86_64.whl",
        {"foo/__init__.py": b"", member: data},
    )
    assert wheels.carried(wheel) == [wheels.Carried(wheel.name, "foo", "1.2", member, provides)]


def test_other_bundled_libraries_are_not_the_layer_s(tmp_path: Path) -> None:
    """Pillow's own libtiff or libjpeg is no second GDAL: such wheels stay wheels."""
    wheel = make_wheel(
        tmp_path,
        "pillow-12.0.0-cp313-cp313-manylinux_2_28_x86_64.whl",
        {
            "pillow.libs/libtiff-9a8b7c6d.so.6.1.0": an_elf(),
            "pillow.libs/libjpeg-1a2b3c4d.so.62.4.0": an_elf(),
            # a file named like the library but not an ELF file: not a library at all
            "PIL/libgdal.so.38.txt": b"notes",
        },
    )
    assert wheels.carried(wheel) == []


def test_library_base_reads_auditwheel_names() -> None:
    assert wheels.library_base("libgdal.so.38") == "libgdal"
    assert wheels.library_base("libgdal-7f9f6a3b.so.38.3.13.3") == "libgdal"
    assert wheels.library_base("libgeos_c-1a2b3c4d.so.1") == "libgeos_c"
    assert wheels.library_base("_gdal.cpython-313-x86_64-linux-gnu.so") is None
    assert wheels.LAYER_LIBRARIES == ("libgdal", "libproj", "libgeos_c", "libgeos")


def carrying(dist: str, version: str = "1.0") -> wheels.Carried:
    return wheels.Carried(
        f"{dist}-{version}-cp313-cp313-manylinux_2_28_x86_64.whl",
        dist,
        version,
        f"{dist}.libs/libgdal-1a2b3c4d.so.38",
        "libgdal",
    )


def test_a_carrier_with_an_sdist_is_compiled_against_opt() -> None:
    found = [carrying("pyogrio", "0.13.0"), carrying("rasterio", "1.5.2")]
    out = wheels.compile_instead(found, ["rasterio", "shapely"], set(), lambda n, v: True)
    assert [item.distribution for item in out] == ["pyogrio"]


def test_a_carrier_without_an_sdist_is_refused_in_one_line() -> None:
    with pytest.raises(GdalLambdaError) as err:
        wheels.compile_instead([carrying("foo")], ["rasterio"], set(), lambda n, v: False)
    line = str(err.value)
    assert "\n" not in line
    assert "foo-1.0-cp313-cp313-manylinux_2_28_x86_64.whl carries its own libgdal" in line
    assert "foo.libs/libgdal-1a2b3c4d.so.38" in line
    assert "no sdist" in line and "require a version of foo that publishes an sdist" in line


def test_a_carrier_asked_for_by_path_is_refused() -> None:
    with pytest.raises(GdalLambdaError, match="carries its own libgdal"):
        wheels.compile_instead([carrying("foo")], [], {"foo"}, lambda n, v: True)
