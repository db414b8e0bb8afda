"""The build matrix: GDAL lines, pinned sources with their mirrors, targets, expected drivers.

Everything is read from ``matrix.toml`` at the checkout's root (see :mod:`gdal_lambda.project`),
or from ``GDAL_LAMBDA_MATRIX``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression
from packaging.version import InvalidVersion, Version

from .errors import GdalLambdaError
from .project import project_root

LIBRARIES = ("gdal", "proj", "geos")
ENV_MATRIX = "GDAL_LAMBDA_MATRIX"
ENV_OVERLAY = "GDAL_LAMBDA_MATRIX_OVERLAY"
DEFAULT_ARCH = "x86_64"
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
    spdx: str = ""  # its licence, an SPDX expression
    licenses: tuple[str, ...] = ()  # licence files in the tarball, relative to its top folder
    provides: tuple[str, ...] = ()  # the library names it installs in lib/ (libgdal...)


@dataclass(frozen=True)
class Line:
    name: str
    sources: dict[str, Source]
    # sha256 of the PyPI sdist gdal-<gdal>.tar.gz (GDAL's Python bindings), checked at install
    bindings_sha256: str = ""

    def seed_formats(self, drivers: Drivers) -> tuple[set[str], set[str]]:
        """(seed raster formats this line's GDAL must list, those it must not: GDAL removed
        them in a release not newer than this line's)."""
        mine = _numbers(self.gdal)
        gone = {n for n, v in drivers.seed_removed.items() if _numbers(v) <= mine}
        return set(drivers.seed_raster) - gone, gone

    def version(self, library: str) -> str:
        return self.sources[library].version

    @property
    def gdal(self) -> str:
        return self.version("gdal")


@dataclass(frozen=True)
class Architecture:
    """One CPU architecture, by Lambda's name (``x86_64``, ``arm64``): matrix [architectures]."""

    name: str
    docker_platform: str  # linux/amd64, linux/arm64: every build and container
    multiarch: str  # Debian's library directory triplet ({multiarch} in ld_library_path)
    debian: str  # debootstrap --arch
    qemu: str  # the binfmt_misc entry that runs it elsewhere (qemu-<qemu>)
    gnu: str  # the cross toolchain's triplet
    elf_machine: str  # e_machine of its ELF files (EM_X86_64, EM_AARCH64)

    @property
    def docker_arch(self) -> str:
        """What ``docker image inspect`` calls it (``amd64``, ``arm64``)."""
        return self.docker_platform.split("/", 1)[1]


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
    # python -> the CPython its stand-in compiles into /var/lang, shaped like Lambda's Python
    # images ([[sources.python]] named by the target's standin_python); empty: Debian's python3
    standin_pythons: dict[str, Source] = field(default_factory=dict)
    # architecture -> Docker Hub's digest-pinned Debian image a stand-in is built FROM when a
    # registry is in reach (the registry route of `invoke build.standin`)
    registry_base: dict[str, str] = field(default_factory=dict)
    # other targets whose Lambda policies every zip built here must meet too
    must_satisfy: tuple[str, ...] = ()
    # python -> image tag, for base images pinned to dated tags ({python_tag} in the names)
    python_tags: dict[str, str] = field(default_factory=dict)
    # its packages hold a cross toolchain for the other architectures (Debian's crossbuild-*)
    cross_compiles: bool = False

    @property
    def is_standin(self) -> bool:
        return self.standin_suite is not None

    def standin_python(self, python: str) -> Source | None:
        """The CPython compiled into ``python``'s stand-in (None: Debian's own python3)."""
        return self.standin_pythons.get(python)

    def standin_images(self, arch: str = DEFAULT_ARCH) -> dict[str, str | None]:
        """Every stand-in image of the target for one architecture -> the Python compiled into
        it: the GDAL base first (None: Debian's python3 or none), then one per CPython (a
        stand-in's Python image is its runtime too)."""
        out: dict[str, str | None] = {self.gdal_image(arch): None}
        for python in self.pythons:
            if self.standin_python(python):
                out[self.python_image(python, arch)] = python
        return out

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

    def _image(self, template: str, python: str, arch: str) -> str:
        name = template.format(python=python, python_tag=self.python_tags.get(python, python))
        # A stand-in is a local, single-architecture image: each architecture its own tag.
        if self.is_standin and arch != DEFAULT_ARCH:
            name += f"-{arch}"
        return name

    def gdal_image(self, arch: str = DEFAULT_ARCH) -> str:
        """The base the GDAL image is built on (a stand-in: the stand-in itself)."""
        return self._image(self.gdal_base, "", arch)

    def python_image(self, python: str, arch: str = DEFAULT_ARCH) -> str:
        return self._image(self.python_base, python, arch)

    def runtime_image(self, python: str, arch: str = DEFAULT_ARCH) -> str:
        return self._image(self.runtime, python, arch)

    def library_path(self, architecture: Architecture) -> tuple[str, ...]:
        """Lambda's LD_LIBRARY_PATH on this OS for one architecture ({multiarch} filled in)."""
        return tuple(d.format(multiarch=architecture.multiarch) for d in self.ld_library_path)


@dataclass(frozen=True)
class Drivers:
    raster: tuple[str, ...]
    vector: tuple[str, ...]
    gtiff_codecs: tuple[str, ...]
    gdal_links: tuple[str, ...]
    vsi: tuple[str, ...]
    seed_raster: tuple[str, ...] = ()
    seed_removed: dict[str, str] = field(default_factory=dict)  # format -> GDAL release
    minimum_count: int = 0


@dataclass(frozen=True)
class Matrix:
    lines: dict[str, Line]
    targets: dict[str, Target]
    default_target: str
    drivers: Drivers
    path: Path = field(default=Path("matrix.toml"))
    # package -> version, replacing a recipe's own pin (set only by an overlay; see load_matrix)
    requirement_overrides: dict[str, str] = field(default_factory=dict)
    # package -> constraints for its own isolated build environment (overlay only; see
    # gdal_lambda.locks): for a pin that no single shared build toolchain can compile
    build_constraints: dict[str, list[str]] = field(default_factory=dict)
    overlay: Path | None = None
    # distributions compiled against /opt rather than taken as wheels ([python] in the matrix)
    compiled_against_opt: tuple[str, ...] = ()
    # lines below this are retired, for this reason ([retired] in the matrix)
    retired_below: str | None = None
    retired_reason: str = ""
    # The native stack (matrix [stack]): library -> its pinned source, in the file's order.
    stack: dict[str, Source] = field(default_factory=dict)
    # Lambda's architectures ([architectures]), x86_64 first.
    architectures: dict[str, Architecture] = field(default_factory=dict)
    # Targets the release builds and checks but never publishes ([release] checked_targets).
    checked_targets: tuple[str, ...] = ()

    def architecture(self, name: str) -> Architecture:
        if name not in self.architectures:
            raise GdalLambdaError(
                f"unknown architecture {name!r}: known ones are {', '.join(self.architectures)}"
            )
        return self.architectures[name]

    def components(self, line: Line) -> dict[str, Source]:
        """Every source an image of ``line`` is built from: the stack, then PROJ, GEOS, GDAL."""
        return {**self.stack, **{name: line.sources[name] for name in LIBRARIES}}

    def line(self, name: str) -> Line:
        known = ", ".join(sorted(self.lines))
        if name not in self.lines and self.is_retired(name):
            raise GdalLambdaError(
                f"GDAL line {name} is retired: {self.retired_reason}; the lines built are {known}"
            )
        if name not in self.lines:
            raise GdalLambdaError(f"unknown GDAL line {name!r}: known lines are {known}")
        return self.lines[name]

    def is_retired(self, name: str) -> bool:
        """A line below ``[retired] below`` (``2.4``, ``3.0``...)."""
        if self.retired_below is None:
            return False
        try:
            return Version(name) < Version(self.retired_below)
        except InvalidVersion:
            return False

    def target(self, name: str | None = None) -> Target:
        """``name``, else the matrix's default target (the environment is Variant.resolve's)."""
        name = name if name is not None else self.default_target
        if name not in self.targets:
            raise GdalLambdaError(
                f"unknown target {name!r}: known targets are {', '.join(sorted(self.targets))}"
            )
        return self.targets[name]


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


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


def _licence_data(path: Path, where: str, entry: dict[str, Any]) -> dict[str, Any]:
    """A source's spdx, licenses and provides, checked: every source names its licence files
    and a valid SPDX expression (packaging's parser, the SPDX licence list it carries)."""
    files, provides = entry.get("licenses"), entry.get("provides", [])
    if not isinstance(files, list) or not files or not all(isinstance(f, str) for f in files):
        raise _fail(path, f'{where} names no licence files (licenses = ["COPYING", ...])')
    if not isinstance(provides, list) or not all(isinstance(p, str) for p in provides):
        raise _fail(path, f"{where}: provides must be a list of library names")
    spdx = entry.get("spdx")
    try:
        if not isinstance(spdx, str):
            raise InvalidLicenseExpression(repr(spdx))
        canonical = canonicalize_license_expression(spdx)
    except InvalidLicenseExpression:
        raise _fail(path, f"{where}: spdx {spdx!r} is not a valid SPDX expression") from None
    return {"spdx": canonical, "licenses": tuple(files), "provides": tuple(provides)}


def _read(path: Path, variable: str) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GdalLambdaError(f"matrix file {path} not found; check {variable}") from None
    except tomllib.TOMLDecodeError as exc:
        raise _fail(path, f"not valid TOML ({exc})") from None


def _apply_overlay(data: dict[str, Any], overlay: dict[str, Any]) -> None:
    """An overlay re-pins lines, adds sources, narrows a target's Pythons and overrides recipe
    pins; it replaces nothing else.

    It exists for mirrors that lack a release: a build then uses other verified sources, and
    says so in its labels and manifest, instead of failing to fetch.
    """
    for name, pins in overlay.get("lines", {}).items():
        data.setdefault("lines", {}).setdefault(name, {}).update(pins)
    for name, entries in overlay.get("sources", {}).items():
        data.setdefault("sources", {}).setdefault(name, []).extend(entries)
    # A target's Pythons only: the ones whose CPython a mirror lacks are left out.
    for name, raw in overlay.get("targets", {}).items():
        if set(raw) - {"pythons"}:
            raise GdalLambdaError(
                f"the matrix overlay may set only pythons of [targets.{name}], not "
                f"{', '.join(sorted(set(raw) - {'pythons'}))}"
            )
        data.setdefault("targets", {}).setdefault(name, {}).update(raw)
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


def load_matrix(
    path: Path | str | None = None,
    overlay: Path | str | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> Matrix:
    """Read and check the matrix file; every problem is one GdalLambdaError naming it.

    ``path``, else ``$GDAL_LAMBDA_MATRIX`` in ``env``, else matrix.toml at the checkout.
    ``overlay`` (else ``$GDAL_LAMBDA_MATRIX_OVERLAY`` in ``env``) names a second TOML file
    applied on top. The process environment is the caller's to pass (tasks.py does): without
    ``env``, none is read.
    """
    env = env if env is not None else {}
    if path is None:
        path = env.get(ENV_MATRIX) or project_root() / "matrix.toml"
    path = Path(path)
    data = _read(path, ENV_MATRIX)
    overlay = overlay or env.get(ENV_OVERLAY) or None
    if overlay:
        _apply_overlay(data, _read(Path(overlay), ENV_OVERLAY))

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
                **_licence_data(path, where, entry),
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

    stack: dict[str, Source] = {}
    for library, version in data.get("stack", {}).items():
        if (library, str(version)) not in sources:
            raise _fail(path, f"stack pins {library} {version}, which has no sources entry")
        stack[library] = sources[(library, str(version))]

    targets: dict[str, Target] = {}
    for name, raw in data.get("targets", {}).items():
        standin_pythons: dict[str, Source] = {}
        if "standin_python" in raw:
            if "standin_suite" not in raw:
                raise _fail(path, f"targets.{name} has standin_python but no standin_suite")
            pins = raw["standin_python"]
            if not isinstance(pins, dict):
                raise _fail(
                    path,
                    f"targets.{name}: standin_python must map each Python to a CPython version, "
                    'e.g. { "3.13" = "3.13.15" }',
                )
            for python, version in pins.items():
                if ("python", str(version)) not in sources:
                    raise _fail(
                        path,
                        f"targets.{name} names standin_python {version}, "
                        "which has no [[sources.python]] entry",
                    )
                if not str(version).startswith(f"{python}."):
                    raise _fail(
                        path, f"targets.{name}: standin_python gives Python {python} {version}"
                    )
                standin_pythons[str(python)] = sources[("python", str(version))]
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
                standin_pythons=standin_pythons,
                registry_base={str(k): str(v) for k, v in raw.get("registry_base", {}).items()},
                must_satisfy=tuple(raw.get("must_satisfy", ())),
                python_tags=dict(raw.get("python_tags", {})),
                cross_compiles=bool(raw.get("cross_compiles", False)),
            )
        except KeyError as exc:
            raise _fail(path, f"targets.{name} lacks {exc.args[0]}") from None

    for target in targets.values():
        for other in target.must_satisfy:
            if other not in targets:
                raise _fail(
                    path, f"targets.{target.name} must_satisfy names unknown target {other!r}"
                )
    default = data.get("default_target", "")
    if default not in targets:
        raise _fail(path, f"default_target {default!r} is not a target")
    checked = data.get("release", {}).get("checked_targets", [])
    for other in checked:
        if other not in targets or other == default:
            raise _fail(
                path,
                f"[release] checked_targets names {other!r}: it must be a target other than "
                f"the default ({default})",
            )
    for target in targets.values():
        for python in target.pythons:
            if target.standin_pythons and python not in target.standin_pythons:
                raise _fail(
                    path, f"targets.{target.name}: standin_python gives no CPython for {python}"
                )
    architectures: dict[str, Architecture] = {}
    for name, raw in data.get("architectures", {}).items():
        try:
            architectures[name] = Architecture(
                name=name,
                docker_platform=raw["docker_platform"],
                multiarch=raw["multiarch"],
                debian=raw["debian"],
                qemu=raw["qemu"],
                gnu=raw["gnu"],
                elf_machine=raw["elf_machine"],
            )
        except KeyError as exc:
            raise _fail(path, f"architectures.{name} lacks {exc.args[0]}") from None
    if DEFAULT_ARCH not in architectures:
        raise _fail(path, f"[architectures.{DEFAULT_ARCH}] is missing (the default architecture)")
    retired = data.get("retired", {})
    if retired and not (
        isinstance(retired.get("below"), str) and isinstance(retired.get("reason"), str)
    ):
        raise _fail(path, "[retired] needs below (a version) and reason (a sentence)")
    compiled = data.get("python", {}).get("compiled_against_opt", [])
    if not isinstance(compiled, list) or not all(isinstance(n, str) for n in compiled):
        raise _fail(path, "python.compiled_against_opt must be a list of distribution names")
    drv = data.get("drivers", {})
    drivers = Drivers(
        raster=tuple(drv.get("raster", ())),
        vector=tuple(drv.get("vector", ())),
        gtiff_codecs=tuple(drv.get("gtiff_codecs", ())),
        gdal_links=tuple(drv.get("gdal_links", ())),
        vsi=tuple(drv.get("vsi", ())),
        seed_raster=tuple(drv.get("seed_raster", ())),
        seed_removed={str(k): str(v) for k, v in drv.get("seed_removed", {}).items()},
        minimum_count=int(drv.get("minimum_count", 0)),
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
        stack=stack,
        architectures=architectures,
        checked_targets=tuple(checked),
        compiled_against_opt=tuple(compiled),
        retired_below=retired.get("below"),
        retired_reason=retired.get("reason", ""),
    )


def __getattr__(name: str) -> Path:
    """``ROOT``: the checkout, found when asked for (never at import)."""
    if name == "ROOT":
        return project_root()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
