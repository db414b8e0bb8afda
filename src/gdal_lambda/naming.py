"""Names derived from (line, python, recipe, target): image tags, zip paths, Lambda layer names.

One place, so that build, publish and push agree. The default target adds no suffix.
"""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from .project import project_root
from .versions import DEFAULT_ARCH


def stem(
    line: str,
    *,
    python: str | None = None,
    recipe: str | None = None,
    target: str | None = None,
    arch: str = DEFAULT_ARCH,
) -> str:
    """``gdal3.13[-py3.12][-geo][-<target>][-arm64]``: the image tag and zip name share it.
    ``target`` None is the matrix's default target, which adds no suffix (Variant decides)."""
    name = f"gdal{line}"
    if python:
        name += f"-py{python}"
    if recipe:
        name += f"-{recipe}"
    if target is not None:
        name += f"-{target}"
    if arch != DEFAULT_ARCH:
        name += f"-{arch}"
    return name


def layer_zip(
    line: str,
    python: str,
    recipe: str = "geo",
    target: str | None = None,
    dist: Path | None = None,
    *,
    arch: str = DEFAULT_ARCH,
) -> Path:
    """``dist/gdal3.13-py3.12-geo[-arm64].zip``: written by `invoke layer`, read by publish."""
    name = stem(line, python=python, recipe=recipe, target=target, arch=arch)
    return (dist if dist is not None else dist_dir()) / f"{name}.zip"


def layer_name(line: str, python: str, recipe: str = "geo", arch: str = DEFAULT_ARCH) -> str:
    """The Lambda layer name, original scheme: ``gdal313-py312-geo`` (+ ``-arm64`` off x86_64)."""
    name = f"gdal{line.replace('.', '')}-py{python.replace('.', '')}-{recipe}"
    if arch != DEFAULT_ARCH:
        name += f"-{arch}"
    return name


def distribution_name(name: str) -> str:
    """A Python distribution name in its canonical form (PEP 503): ``PyProj_x`` -> ``pyproj-x``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_text(line: str) -> str:
    """A requirements-file line without its trailing comment: ``numpy<2  # old`` -> ``numpy<2``."""
    return line.split(" #", 1)[0].strip()


def requirement(line: str) -> Requirement | None:
    """The requirement on a requirements-file line; None for comments, options and blanks."""
    text = requirement_text(line)
    if not text or text.startswith(("#", "-")):
        return None
    try:
        return Requirement(text)
    except InvalidRequirement:
        return None


def dist_dir() -> Path:
    """``dist/`` in the checkout: where zips are written."""
    return project_root() / "dist"


def __getattr__(name: str) -> Path:
    if name == "DIST":
        return dist_dir()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
