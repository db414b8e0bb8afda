"""Docker images: tags, build contexts, builds through the docker SDK, stand-in base images."""

from __future__ import annotations

import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

from . import locks, naming
from .errors import GdalLambdaError
from .sources import Fetched, fetch_all
from .versions import LIBRARIES, ROOT, Line, Matrix, Target

DEFAULT_REPOSITORY = "gdal-lambda"
LABEL_PREFIX = "org.gdal-lambda"
TAIL_LINES = 30


def repository(explicit: str | None = None) -> str:
    return explicit or os.environ.get("GDAL_LAMBDA_REPOSITORY") or DEFAULT_REPOSITORY


def tag(
    line: Line | str,
    target: Target,
    *,
    python: str | None = None,
    recipe: str | None = None,
    repo: str | None = None,
) -> str:
    """``<repo>:gdal3.13[-py3.12][-geo]`` for the default target, ``…-<target>`` for others."""
    line_name = line if isinstance(line, str) else line.name
    stem = naming.stem(line_name, python=python, recipe=recipe, target=target.name)
    return f"{repository(repo)}:{stem}"


def client() -> docker.DockerClient:
    """A docker SDK client, or one clear error saying how to start the daemon."""
    try:
        cli = docker.from_env(timeout=600)
        cli.ping()
    except docker.errors.DockerException as exc:
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise GdalLambdaError(
            f"cannot reach the Docker daemon at {where} ({reason[:160]}); start it "
            "(`sudo systemctl start docker`, or `sudo dockerd &`) or set DOCKER_HOST"
        ) from None
    return cli


def image_exists(cli: docker.DockerClient, ref: str) -> bool:
    try:
        cli.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def labels(cli: docker.DockerClient, ref: str) -> dict[str, str]:
    return dict(cli.images.get(ref).labels or {})


# ------------------------------------------------------------------------------------------------
# Build contexts


@contextmanager
def build_context(dockerfile: Path, extra: Iterable[tuple[Path, str]] = ()) -> Iterator[Path]:
    """A temporary directory holding the Dockerfile, scripts/ and the given (file, name) pairs.

    Files are hard-linked when they can be (the tarballs are large), copied otherwise. Docker's
    cache keys on contents, not on the directory, so a fresh context per build loses nothing.
    """
    with tempfile.TemporaryDirectory(prefix="gdal-lambda-ctx.") as tmp:
        ctx = Path(tmp)
        shutil.copy2(dockerfile, ctx / "Dockerfile")
        shutil.copytree(ROOT / "scripts", ctx / "scripts")
        for src, name in extra:
            dest = ctx / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, dest)
            except OSError:
                shutil.copy2(src, dest)
        yield ctx


def _source_files(fetched: dict[str, Fetched], tmp: Path) -> list[tuple[Path, str]]:
    files: list[tuple[Path, str]] = []
    for name, item in fetched.items():
        files.append((item.path, f"sources/{name}.tar"))
        missing = tmp / f"{name}.missing"
        missing.write_text("".join(f"{m}\n" for m in item.mirror.missing), encoding="utf-8")
        files.append((missing, f"sources/{name}.missing"))
    return files


# ------------------------------------------------------------------------------------------------
# Builds


@dataclass
class BuildResult:
    image_id: str
    tag: str


_STEP = re.compile(r"^Step \d+/\d+ : ")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def stream_build(
    cli: docker.DockerClient,
    *,
    context: Path,
    tag: str,
    buildargs: dict[str, str],
    target: str | None = None,
    labels: dict[str, str] | None = None,
    echo: Callable[[str], None] | None = None,
) -> BuildResult:
    """Build through the low-level API, streaming the log live.

    The daemon reports a failing RUN as an ``error`` event in the stream, not as an exception:
    watch for it and raise one error naming the step, with the last lines of its output.
    """
    write = echo or (lambda text: (sys.stdout.write(text), sys.stdout.flush()))
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    step = "(before the first step)"
    image_id = ""
    try:
        events = cli.api.build(
            path=str(context),
            tag=tag,
            buildargs=buildargs,
            target=target,
            labels=labels,
            rm=True,
            forcerm=True,
            decode=True,
            pull=False,
        )
        for event in events:
            if "stream" in event:
                text = event["stream"]
                write(text)
                for line in _ANSI.sub("", text).splitlines():
                    if _STEP.match(line):
                        step = line
                        tail.clear()
                    elif line.strip():
                        tail.append(line)
            elif "error" in event:
                message = event.get("errorDetail", {}).get("message") or event["error"]
                last = "\n".join(f"    {line}" for line in tail)
                raise GdalLambdaError(
                    f"docker build of {tag} failed at {step.strip()}: {message.strip()}\n"
                    f"  last lines of its log:\n{last}"
                )
            elif "aux" in event and "ID" in event["aux"]:
                image_id = event["aux"]["ID"]
    except docker.errors.APIError as exc:
        raise GdalLambdaError(
            f"docker build of {tag} was refused: {exc.explanation or exc}"
        ) from None
    if not image_id:
        image_id = cli.images.get(tag).id
    return BuildResult(image_id=image_id, tag=tag)


def _ensure_base(cli: docker.DockerClient, target: Target, image: str) -> None:
    """Stand-in bases are local: say how to make one instead of letting the build try to pull."""
    if target.is_standin and not image_exists(cli, image):
        raise GdalLambdaError(
            f"stand-in base image {image} does not exist: run `invoke build.standin "
            f"--target {target.name}` first"
        )


def build_gdal(
    matrix: Matrix,
    line: Line,
    target: Target,
    *,
    repo: str | None = None,
    echo: Callable[[str], None] | None = None,
    show_progress: bool = True,
) -> BuildResult:
    """Fetch and verify the line's sources, then build ``<repo>:gdal<line>`` from them."""
    cli = client()
    _ensure_base(cli, target, target.gdal_base)
    fetched = fetch_all([line.sources[name] for name in LIBRARIES], show_progress=show_progress)
    buildargs = {"BASE_IMAGE": target.gdal_base, "GDAL_LINE": line.name, "TARGET": target.name}
    for name, item in fetched.items():
        buildargs[f"{name.upper()}_VERSION"] = item.source.version
        buildargs[f"{name.upper()}_SHA256"] = item.mirror.sha256
    ref = tag(line, target, repo=repo)
    with tempfile.TemporaryDirectory(prefix="gdal-lambda-missing.") as tmp:
        extra = _source_files(fetched, Path(tmp))
        with build_context(ROOT / "docker" / "gdal" / "Dockerfile", extra) as ctx:
            return stream_build(cli, context=ctx, tag=ref, buildargs=buildargs, echo=echo)


def _require(cli: docker.DockerClient, ref: str, hint: str) -> None:
    if not image_exists(cli, ref):
        raise GdalLambdaError(f"image {ref} does not exist: run `{hint}` first")


def build_python(
    line: Line,
    target: Target,
    python: str,
    *,
    repo: str | None = None,
    overrides: dict[str, str] | None = None,
    echo: Callable[[str], None] | None = None,
) -> BuildResult:
    """Build ``<repo>:gdal<line>-py<python>``: the Lambda Python base, /opt, compilers, numpy.

    ``overrides`` (a matrix overlay's requirement_overrides) re-pin its build tools too."""
    requirements = ROOT / "docker" / "python" / "requirements.txt"
    lock = locks.require(requirements, python, overrides)  # hash-locked (see gdal_lambda.locks)
    cli = client()
    gdal_ref = tag(line, target, repo=repo)
    _require(cli, gdal_ref, f"invoke build.gdal --version {line.name} --target {target.name}")
    _ensure_base(cli, target, target.python_image(python))
    buildargs = {
        "GDAL_IMAGE": gdal_ref,
        "PYTHON_BASE": target.python_image(python),
        "PYTHON_VERSION": python,
    }
    ref = tag(line, target, python=python, repo=repo)
    # The GDAL image's provenance labels travel on: the Python and layer images (and the
    # manifests made from them) say which tarballs their /opt came from.
    provenance = {k: v for k, v in labels(cli, gdal_ref).items() if k.startswith(LABEL_PREFIX)}
    extra = [(lock, "docker/python/requirements.lock")]
    with build_context(ROOT / "docker" / "python" / "Dockerfile", extra) as ctx:
        return stream_build(
            cli, context=ctx, tag=ref, buildargs=buildargs, labels=provenance, echo=echo
        )


def recipe_dir(recipe: str) -> Path:
    """``layers/<recipe>/``, checked: a recipe is a folder with a Dockerfile and requirements."""
    folder = ROOT / "layers" / recipe
    known = sorted(p.name for p in (ROOT / "layers").iterdir() if p.is_dir())
    if not folder.is_dir():
        raise GdalLambdaError(f"unknown layer recipe {recipe!r}: recipes are {', '.join(known)}")
    if not (folder / "Dockerfile").is_file():
        raise GdalLambdaError(f"layer recipe {folder} has no Dockerfile")
    if not any(folder.glob("requirements*.txt")):
        raise GdalLambdaError(
            f"layer recipe {folder} has no requirements.txt: add its pinned packages"
        )
    return folder


def build_layer(
    line: Line,
    target: Target,
    python: str,
    recipe: str = "geo",
    *,
    repo: str | None = None,
    overrides: dict[str, str] | None = None,
    build_constraints: dict[str, list[str]] | None = None,
    echo: Callable[[str], None] | None = None,
) -> BuildResult:
    """Build ``<repo>:gdal<line>-py<python>-<recipe>`` from ``layers/<recipe>/``.

    The recipe's context receives its hash-locked requirements: see
    :func:`gdal_lambda.locks.layer_context`."""
    folder = recipe_dir(recipe)
    cli = client()
    python_ref = tag(line, target, python=python, repo=repo)
    _require(
        cli,
        python_ref,
        f"invoke build.python --gdal {line.name} --python {python} --target {target.name}",
    )
    ref = tag(line, target, python=python, recipe=recipe, repo=repo)
    with tempfile.TemporaryDirectory(prefix="gdal-lambda-recipe.") as tmp:
        ctx = Path(tmp) / recipe
        shutil.copytree(folder, ctx)
        # The recipe's hash-locked requirements (see gdal_lambda.locks).
        locks.layer_context(folder / "requirements.txt", python, ctx, overrides, build_constraints)
        buildargs = {"PYTHON_IMAGE": python_ref, "GDAL_BINDINGS_SHA256": line.bindings_sha256}
        return stream_build(cli, context=ctx, tag=ref, buildargs=buildargs, echo=echo)


def override_pins(requirements: str, overrides: dict[str, str]) -> str:
    """Replace ``name==version`` pins (markers kept) by the matrix overlay's versions."""
    for name, version in overrides.items():
        pattern = re.compile(rf"^({re.escape(name)})\s*==\s*[^;\s]+", re.IGNORECASE | re.MULTILINE)
        requirements = pattern.sub(rf"\g<1>=={version}", requirements)
    return requirements


def split_isolated(
    requirements: str, build_constraints: dict[str, list[str]]
) -> tuple[str, list[str]]:
    """Move the requirement lines of packages with build constraints out of a requirements text.

    A recipe compiles its packages with ``--no-build-isolation`` against the Python image's one
    Cython; a package that toolchain cannot compile (pyproj 3.6 needs Cython < 3.1, rasterio
    1.5 and shapely 2.2 need >= 3.1) is built by itself in an isolated environment held to its
    constraints. Returns (the text without those lines, the lines moved)."""
    wanted = {naming.distribution_name(name) for name in build_constraints}
    kept: list[str] = []
    moved: list[str] = []
    for raw in requirements.splitlines(keepends=True):
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", raw)
        if (
            match
            and not raw.lstrip().startswith("-")
            and naming.distribution_name(match.group(1)) in wanted
        ):
            moved.append(raw.strip())
        else:
            kept.append(raw)
    return "".join(kept), moved


def expected_labels(line: Line, target: Target) -> dict[str, str]:
    """The labels a GDAL image must carry: versions always, sha256 of one of the mirrors."""
    out = {f"{LABEL_PREFIX}.line": line.name, f"{LABEL_PREFIX}.target": target.name}
    for name in LIBRARIES:
        out[f"{LABEL_PREFIX}.{name}.version"] = line.version(name)
    return out


def label_problems(actual: dict[str, str], line: Line, target: Target) -> list[str]:
    """What in an image's labels disagrees with the matrix (empty when all agree)."""
    problems = [
        f"{key}={actual.get(key)!r}, matrix says {value!r}"
        for key, value in expected_labels(line, target).items()
        if actual.get(key) != value
    ]
    for name in LIBRARIES:
        key = f"{LABEL_PREFIX}.{name}.sha256"
        allowed = {m.sha256 for m in line.sources[name].mirrors}
        if actual.get(key) not in allowed:
            problems.append(f"{key}={actual.get(key)!r} is none of the matrix's digests")
    return problems


# ------------------------------------------------------------------------------------------------
# Stand-ins


def make_standin(target: Target, *, force: bool = False) -> str:
    """Create the target's stand-in base image with scripts/make-standin.sh (debootstrap)."""
    if not target.is_standin:
        raise GdalLambdaError(
            f"target {target.name} uses real AWS base images, not a stand-in; "
            "stand-ins are the targets with standin_suite in matrix.toml"
        )
    cli = client()
    if image_exists(cli, target.gdal_base) and not force:
        print(f"{target.gdal_base} already exists (use --force to make it again)")
        return target.gdal_base
    script = ROOT / "scripts" / "make-standin.sh"
    assert target.standin_suite is not None
    result = subprocess.run(
        ["bash", str(script), target.standin_suite, target.gdal_base], check=False
    )
    if result.returncode != 0:
        raise GdalLambdaError(f"making stand-in {target.gdal_base} failed (see the lines above)")
    return target.gdal_base


def run_in(
    cli: docker.DockerClient,
    image: str,
    command: list[str],
    **kwargs: Any,
) -> tuple[int, str]:
    """Run a command in a throw-away container; return its exit code and combined output.

    The command's first word becomes the entrypoint: the Lambda base images have an entrypoint
    of their own (the runtime bootstrap) that would otherwise wrap it.
    """
    container = cli.containers.run(
        image, command[1:], entrypoint=command[:1], detach=True, **kwargs
    )
    try:
        result = container.wait()
        output = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
    finally:
        container.remove(force=True)
    return int(result.get("StatusCode", 1)), output
