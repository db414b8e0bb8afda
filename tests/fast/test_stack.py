"""The native stack: matrix.toml [stack], docker/gdal/Dockerfile and scripts/stack agree."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from helpers import ROOT

from gdal_lambda import versions

DOCKERFILE = ROOT / "docker" / "gdal" / "Dockerfile"


def _stages() -> list[str]:
    return re.findall(r"^FROM \S+ AS (\S+)$", DOCKERFILE.read_text(), re.M)


def test_every_stack_library_has_a_stage_and_a_recipe_in_order() -> None:
    matrix = versions.load_matrix()
    stages = _stages()
    built = [s for s in stages if s not in ("toolchain", "final")]
    assert built == [*matrix.stack, "proj", "geos", "gdal"]
    text = DOCKERFILE.read_text()
    for name in built:
        assert (ROOT / "scripts" / "stack" / f"{name}.sh").is_file(), name
        # Each stage copies only its own tarball and recipe: a change elsewhere keeps its cache.
        assert f"COPY sources/{name}.tar sources/{name}.missing scripts/stack/{name}.sh" in text
        assert f"build.sh {name}\n" in text


# Sources with no upstream mirror, and why (matrix.toml says it beside the entry).
DEBIAN_ONLY = {"libtiff": "no packaging recipe in reach pins 4.7.2's upstream digest yet"}


def test_every_stack_source_lists_upstream_first_then_debian() -> None:
    matrix = versions.load_matrix()
    for name, source in matrix.stack.items():
        urls = [m.url for m in source.mirrors]
        assert "deb.debian.org" in urls[-1], f"{name}: Debian (the mirror CI reaches) comes last"
        if name in DEBIAN_ONLY:
            assert len(urls) == 1, f"{name} has an upstream mirror now: drop it from DEBIAN_ONLY"
            continue
        assert len(urls) >= 2 and "deb.debian.org" not in urls[0], f"{name}: upstream first"


def test_the_toolchain_lists_hold_no_library_packages() -> None:
    for path in (ROOT / "scripts" / "packages").glob("*-build.txt"):
        names = [
            line.split("#")[0].strip()
            for line in path.read_text().splitlines()
            if line.split("#")[0].strip()
        ]
        assert not [n for n in names if n.endswith(("-dev", "-devel"))], path.name


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="needs shellcheck")
def test_recipes_are_shellcheck_clean() -> None:
    scripts = sorted(str(p) for p in (ROOT / "scripts" / "stack").glob("*.sh"))
    result = subprocess.run(
        ["shellcheck", "-x", *scripts], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout[-2000:]
