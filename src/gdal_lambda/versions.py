"""The build matrix: GDAL lines, pinned sources with their mirrors, targets, expected drivers.

Everything is read from ``matrix.toml`` at the repository root (or ``GDAL_LAMBDA_MATRIX``).
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import GdalLambdaError

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MATRIX = ROOT / "matrix.toml"
LIBRARIES = ("gdal", "proj", "geos")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Mirror:
    url: str
    sha256: str
    missing: tuple[str, ...] = ()

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Source:
    name: str
    version: str
    mirrors: tuple[Mirror, ...]


@dataclass(frozen=True)
class Line:
    name: str
    sources: dict[str, Source]
    # sha256 of the PyPI sdist gdal-<gdal>.tar.gz (GDAL's Python bindings), checked at install
    bindings_sha256: str = ""

    def version(self, library: str) -> str:
        return self.sources[library].version

    @property
    def gdal(self) -> str:
        return self.version("gdal")


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    gdal_base: str
    python_base: str
    runtime: str
    pythons: tuple[str, ...]
    glibc: str
    ld_library_path: tuple[str, ...]
    standin_suite: str | None = None

    @property
    def is_standin(self) -> bool:
        return self.standin_suite is not None

    def check_python(self, python: str | None) -> str:
        """The Python version to use: the one asked for, or the target's newest."""
        if python is None:
            return self.pythons[-1]
        if python not in self.pythons:
            raise GdalLambdaError(
                f"Python {python} is not available on target {self.name}: "
                f"use one of {', '.join(self.pythons)}"
            )
        return python

    def python_image(self, python: str) -> str:
        return self.python_base.format(python=python)

    def runtime_image(self, python: str) -> str:
        return self.runtime.format(python=python)


@dataclass(frozen=True)
class Drivers:
    raster: tuple[str, ...]
    vector: tuple[str, ...]
    gtiff_codecs: tuple[str, ...]
    gdal_links: tuple[str, ...]
    vsi: tuple[str, ...]


@dataclass(frozen=True)
class Matrix:
    lines: dict[str, Line]
    targets: dict[str, Target]
    default_target: str
    drivers: Drivers
    path: Path = field(default=DEFAULT_MATRIX)
    # package -> version, replacing a recipe's own pin (set only by an overlay; see load_matrix)
    requirement_overrides: dict[str, str] = field(default_factory=dict)
    # package -> constraints for its own isolated build environment (overlay only; see
    # images.split_isolated): for a pin that no single shared build toolchain can compile
    build_constraints: dict[str, list[str]] = field(default_factory=dict)
    overlay: Path | None = None

    def line(self, name: str) -> Line:
        if name not in self.lines:
            raise GdalLambdaError(
                f"unknown GDAL line {name!r}: known lines are {', '.join(sorted(self.lines))}"
            )
        return self.lines[name]

    def target(self, name: str | None = None) -> Target:
        """``name``, else ``$GDAL_LAMBDA_TARGET``, else the matrix's default target."""
        name = name or os.environ.get("GDAL_LAMBDA_TARGET") or self.default_target
        if name not in self.targets:
            raise GdalLambdaError(
                f"unknown target {name!r}: known targets are {', '.join(sorted(self.targets))}"
            )
        return self.targets[name]


def _fail(path: Path, what: str) -> GdalLambdaError:
    return GdalLambdaError(f"{path}: {what}; fix the matrix file")


def _mirror(path: Path, where: str, raw: dict[str, object]) -> Mirror:
    url, sha = raw.get("url"), raw.get("sha256")
    if not isinstance(url, str) or not url:
        raise _fail(path, f"{where} has no url")
    if not isinstance(sha, str) or not _SHA256.match(sha):
        raise _fail(path, f"{where} ({url}) has no valid sha256 (64 lower-case hex digits)")
    missing = raw.get("missing", [])
    if not isinstance(missing, list) or not all(isinstance(m, str) for m in missing):
        raise _fail(path, f"{where} ({url}): missing must be a list of paths")
    return Mirror(url=url, sha256=sha, missing=tuple(missing))


def _read(path: Path, variable: str) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GdalLambdaError(f"matrix file {path} not found; check {variable}") from None
    except tomllib.TOMLDecodeError as exc:
        raise _fail(path, f"not valid TOML ({exc})") from None


def _apply_overlay(data: dict[str, Any], overlay: dict[str, Any]) -> None:
    """An overlay re-pins lines, adds sources and overrides recipe pins; it replaces nothing else.

    It exists for mirrors that lack a release: a build then uses other verified sources, and
    says so in its labels and manifest, instead of failing to fetch.
    """
    for name, pins in overlay.get("lines", {}).items():
        data.setdefault("lines", {}).setdefault(name, {}).update(pins)
    for name, entries in overlay.get("sources", {}).items():
        data.setdefault("sources", {}).setdefault(name, []).extend(entries)
    data["requirement_overrides"] = dict(overlay.get("requirement_overrides", {}))
    constraints = overlay.get("build_constraints", {})
    if not isinstance(constraints, dict) or not all(
        isinstance(v, list) and all(isinstance(c, str) for c in v) for v in constraints.values()
    ):
        raise GdalLambdaError(
            "build_constraints in the matrix overlay must map a package to a list of "
            'requirement strings, e.g. pyproj = ["cython<3.1"]'
        )
    data["build_constraints"] = {k: list(v) for k, v in constraints.items()}


def load_matrix(path: Path | str | None = None, overlay: Path | str | None = None) -> Matrix:
    """Read and check the matrix file; every problem is one GdalLambdaError naming it.

    ``overlay`` (or ``$GDAL_LAMBDA_MATRIX_OVERLAY``) names a second TOML file applied on top.
    """
    path = Path(path or os.environ.get("GDAL_LAMBDA_MATRIX") or DEFAULT_MATRIX)
    data = _read(path, "GDAL_LAMBDA_MATRIX")
    overlay = overlay or os.environ.get("GDAL_LAMBDA_MATRIX_OVERLAY") or None
    if overlay:
        _apply_overlay(data, _read(Path(overlay), "GDAL_LAMBDA_MATRIX_OVERLAY"))

    sources: dict[tuple[str, str], Source] = {}
    for name, entries in data.get("sources", {}).items():
        for entry in entries:
            version = str(entry.get("version", ""))
            where = f"sources.{name} {version}"
            mirrors = entry.get("mirrors") or []
            if not version or not mirrors:
                raise _fail(path, f"{where} needs a version and at least one mirror")
            sources[(name, version)] = Source(
                name=name,
                version=version,
                mirrors=tuple(_mirror(path, where, m) for m in mirrors),
            )

    lines: dict[str, Line] = {}
    for line_name, pins in data.get("lines", {}).items():
        picked: dict[str, Source] = {}
        for library in LIBRARIES:
            version = pins.get(library)
            if version is None:
                raise _fail(path, f"lines.{line_name} does not pin {library}")
            if (library, version) not in sources:
                raise _fail(
                    path, f"lines.{line_name} pins {library} {version}, which has no sources entry"
                )
            picked[library] = sources[(library, version)]
        bindings = pins.get("bindings_sha256", "")
        if not isinstance(bindings, str) or not _SHA256.match(bindings):
            raise _fail(
                path,
                f"lines.{line_name} has no valid bindings_sha256 (the sha256 of the PyPI sdist "
                f"gdal-{picked['gdal'].version}.tar.gz)",
            )
        lines[line_name] = Line(name=line_name, sources=picked, bindings_sha256=bindings)

    targets: dict[str, Target] = {}
    for name, raw in data.get("targets", {}).items():
        try:
            targets[name] = Target(
                name=name,
                description=raw.get("description", ""),
                gdal_base=raw["gdal_base"],
                python_base=raw["python_base"],
                runtime=raw["runtime"],
                pythons=tuple(raw["pythons"]),
                glibc=raw["glibc"],
                ld_library_path=tuple(raw["ld_library_path"]),
                standin_suite=raw.get("standin_suite"),
            )
        except KeyError as exc:
            raise _fail(path, f"targets.{name} lacks {exc.args[0]}") from None

    default = data.get("default_target", "")
    if default not in targets:
        raise _fail(path, f"default_target {default!r} is not a target")
    drv = data.get("drivers", {})
    drivers = Drivers(
        raster=tuple(drv.get("raster", ())),
        vector=tuple(drv.get("vector", ())),
        gtiff_codecs=tuple(drv.get("gtiff_codecs", ())),
        gdal_links=tuple(drv.get("gdal_links", ())),
        vsi=tuple(drv.get("vsi", ())),
    )
    return Matrix(
        lines=lines,
        targets=targets,
        default_target=default,
        drivers=drivers,
        path=path,
        requirement_overrides=dict(data.get("requirement_overrides", {})),
        build_constraints=dict(data.get("build_constraints", {})),
        overlay=Path(overlay) if overlay else None,
    )
