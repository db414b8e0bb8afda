"""Wheels that carry their own copy of a library the layer provides.

PyPI's wheels of GDAL's users (rasterio, pyogrio, fiona...) bundle libgdal, libproj, GEOS and
PROJ's database in ``<package>.libs/`` and beside their modules. Installed next to the layer,
such a wheel puts a second GDAL in the process, with other drivers, another PROJ and another
proj.db. Which wheels do is read from the wheels themselves: each ELF file's name and DT_SONAME
(pyelftools), the libraries its DT_NEEDED names that the wheel bundles, and the data files.

    found = carried(Path("pyogrio-0.13.0-cp313-cp313-manylinux_2_28_x86_64.whl"))
    # [Carried(..., library="pyogrio.libs/libgdal-7f9f6a3b.so.38", provides="libgdal"), ...]
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

from . import naming
from .elf import MAGIC
from .errors import GdalLambdaError
from .policy import PUBLIC_PREFIXES

# The layer's public libraries by name (libgdal, libproj, libgeos_c, libgeos: the names a
# companion package links), from the one list the policy check keeps them by.
LAYER_LIBRARIES = tuple(prefix.rstrip(".") for prefix in PUBLIC_PREFIXES)
# PROJ's database: a second copy means a second PROJ whatever the library is called.
LAYER_DATA = ("proj.db",)
# libgdal.so.38, libgdal-7f9f6a3b.so.38 (auditwheel's hashed copy), libgeos_c-1a2b3c4d.so.1.19.
_LIBRARY = re.compile(r"^(?P<base>lib[A-Za-z0-9_+]+?)(?:-[0-9a-f]{6,})?\.so(?:\.|$)")


@dataclass(frozen=True)
class Carried:
    """One file a wheel carries that is a copy of the layer's ``provides``."""

    wheel: str  # the wheel's file name
    distribution: str  # canonical name
    version: str
    library: str  # the member's path in the wheel
    provides: str  # libgdal, libproj, libgeos_c, libgeos or proj.db


def library_base(name: str) -> str | None:
    """``libgdal`` for ``libgdal-7f9f6a3b.so.38``; None for what is not a shared library."""
    match = _LIBRARY.match(name)
    return match["base"] if match else None


def _elf_names(data: bytes) -> tuple[str | None, tuple[str, ...]]:
    """(DT_SONAME, DT_NEEDED) of an ELF file's bytes; (None, ()) when it is not one."""
    try:
        elf = ELFFile(io.BytesIO(data))
        soname: str | None = None
        needed: list[str] = []
        for section in elf.iter_sections():
            if isinstance(section, DynamicSection):
                for tag in section.iter_tags():
                    if tag.entry.d_tag == "DT_SONAME":
                        soname = tag.soname
                    elif tag.entry.d_tag == "DT_NEEDED":
                        needed.append(tag.needed)
        return soname, tuple(needed)
    except (ELFError, ValueError, OSError):
        return None, ()


def wheel_name(wheel: Path) -> tuple[str, str]:
    """(canonical distribution name, version) from a wheel's file name."""
    parts = wheel.name.removesuffix(".whl").split("-")
    if len(parts) < 5:
        raise ValueError(f"{wheel.name} is not a wheel file name")
    return naming.distribution_name(parts[0]), parts[1]


def carried(wheel: Path) -> list[Carried]:
    """Every member of ``wheel`` that is a copy of a library (or data file) the layer provides:
    by its file name, its DT_SONAME, or a DT_NEEDED of another member that the wheel bundles."""
    name, version = wheel_name(wheel)
    found: dict[str, Carried] = {}

    def note(member: str, provides: str) -> None:
        found.setdefault(member, Carried(wheel.name, name, version, member, provides))

    with zipfile.ZipFile(wheel) as zf:
        members = [info for info in zf.infolist() if not info.is_dir()]
        by_file = {PurePosixPath(info.filename).name: info.filename for info in members}
        for info in members:
            base_name = PurePosixPath(info.filename).name
            if base_name in LAYER_DATA:
                note(info.filename, base_name)
                continue
            with zf.open(info) as handle:
                if handle.read(4) != MAGIC:
                    continue
            soname, needed = _elf_names(zf.read(info))
            for candidate in (base_name, soname):
                base = library_base(candidate) if candidate else None
                if base in LAYER_LIBRARIES:
                    note(info.filename, base)
            for dependency in needed:
                base = library_base(dependency)
                if base in LAYER_LIBRARIES and dependency in by_file:
                    note(by_file[dependency], base)
    order = (*LAYER_LIBRARIES, *LAYER_DATA)
    return sorted(found.values(), key=lambda c: (order.index(c.provides), c.library))


# ------------------------------------------------------------------------------------------------
# A package's resolved wheels, and what becomes of those that carry a layer library

# Which wheels pip would install, then those wheels themselves: run in the image the package is
# built in (the layer's, or the Python image's), with the function's requirements in WORK_DIR.
# The report's files are downloaded again by URL (pip's own download, cached nowhere), into
# WHEELS, which the host collects and reads.
RESOLVE = """set -e
cd {work}
if [ "$MODE" = layer ]; then
    PYTHONPATH=/opt/python PYTHONUSERBASE=/tmp/u python3 -m pip install --user --dry-run \\
        --quiet --disable-pip-version-check --report /tmp/report.json -r requirements.txt >&2
else
    python3 -m pip install --target /tmp/t --dry-run --quiet --disable-pip-version-check \\
        --report /tmp/report.json -r requirements.txt >&2
fi
mkdir -p {wheels}
cp /tmp/report.json {wheels}/report.json
python3 - > /tmp/wheels.txt <<'PY'
import json
report = json.load(open("/tmp/report.json"))
for item in report.get("install", []):
    url = item.get("download_info", {{}}).get("url", "")
    if url.endswith(".whl"):
        print(url)
PY
if [ -s /tmp/wheels.txt ]; then
    python3 -m pip download --no-deps --no-cache-dir --quiet --disable-pip-version-check \\
        -d {wheels} -r /tmp/wheels.txt >&2
fi
"""


def direct_references(report: dict) -> set[str]:  # type: ignore[type-arg]
    """The distributions of a pip report that were asked for by URL or path (no index)."""
    return {
        naming.distribution_name(item.get("metadata", {}).get("name", ""))
        for item in report.get("install", [])
        if item.get("is_direct")
    }


def compile_instead(
    found: Iterable[Carried],
    no_binary: Iterable[str],
    direct: set[str],
    has_sdist: Callable[[str, str], bool],
) -> list[Carried]:
    """Of the wheels that carry a layer library (``found``), those to compile against /opt
    instead: one entry per distribution not already in ``no_binary``. A distribution asked for
    by URL or path (``direct``), or whose version has no sdist, cannot be: one error line
    naming the wheel, the library and the fix."""
    compiled = {naming.distribution_name(name) for name in no_binary}
    out: list[Carried] = []
    for item in found:
        if item.distribution in compiled or ":all:" in compiled:
            continue
        if item.distribution in direct or not has_sdist(item.distribution, item.version):
            raise GdalLambdaError(
                f"{item.wheel} carries its own {item.provides} ({item.library}), a second copy "
                f"of the one in /opt, and {item.distribution} {item.version} has no sdist to "
                f"compile against /opt instead: require a version of {item.distribution} that "
                "publishes an sdist, or drop it and use what the layer provides"
            )
        compiled.add(item.distribution)
        out.append(item)
    return out
