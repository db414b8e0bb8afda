"""Docker images: tags, build contexts, builds through the docker SDK (stand-ins: .standin)."""

from __future__ import annotations

import collections
import dataclasses
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import docker.utils

from . import locks, recipes
from .containers import client, image_exists, labels
from .emulation import check_runnable, host_architecture
from .errors import GdalLambdaError, Kind, MissingImage, UnpullableBase
from .licences import write_licences
from .project import project_root
from .provenance import LABEL_PREFIX, carried, label_problems, provenance_labels
from .runtime import LAYER_ROOT, data_env, write_gdalrc
from .sources import Fetched, fetch_all
from .sources import Settings as FetchSettings
from .variant import Variant

TAIL_LINES = 30

# Re-exported: the image tests and tasks.py read the label schema through images.
__all__ = ["LABEL_PREFIX", "client", "image_exists", "label_problems", "labels"]


def require(cli: docker.DockerClient, variant: Variant, kind: Kind, ref: str) -> None:
    """Raise MissingImage(variant, kind, ref) unless the image exists locally."""
    if not image_exists(cli, ref):
        raise MissingImage(variant, kind, f"image {ref}")


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
        shutil.copytree(project_root() / "scripts", ctx / "scripts")
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
    platform: str | None = None,
    target: str | None = None,
    labels: dict[str, str] | None = None,
    cache_from: Sequence[str] = (),
    nocache: bool = False,
    echo: Callable[[str], None] | None = None,
) -> BuildResult:
    """Build through the low-level API, streaming the log live.

    ``cache_from``: images whose layers the build may reuse. The classic builder reuses an image
    restored with ``docker load`` only when it is named here, and once any image is named it
    reuses a local layer only if one of them descends from it (moby's image cache), so it is
    empty except where images are restored that way (:func:`cache_sources`); ``nocache`` runs
    every step again.

    The daemon reports a failing RUN as an ``error`` event in the stream, not as an exception:
    watch for it and raise one error naming the step, with the last lines of its output. Each
    step is printed with the seconds since the build started (``[  812 s] Step 12/118 : ...``),
    so a log tells how long every stage took.
    """
    write = echo or (lambda text: (sys.stdout.write(text), sys.stdout.flush()))
    start = time.monotonic()
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
            platform=platform,
            cache_from=list(cache_from) or None,
            nocache=nocache,
            rm=True,
            forcerm=True,
            decode=True,
            pull=False,
        )
        for event in events:
            if "stream" in event:
                text = event["stream"]
                if _STEP.match(_ANSI.sub("", text)):
                    write(f"[{time.monotonic() - start:5.0f} s] ")
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


def _ensure_base(
    cli: docker.DockerClient, variant: Variant, image: str, step: Kind = Kind.GDAL
) -> None:
    """Before a build: this host can run the variant's architecture, and a stand-in base (local,
    never pulled) exists for it; say how to make one instead of letting the build try to pull.
    A registry base not here is pulled first, so that a registry out of reach is one error
    (:class:`UnpullableBase`) rather than a failing step in the middle of ``step``'s build."""
    check_runnable(variant.architecture)
    if variant.target.is_standin:
        require(cli, variant, Kind.STANDIN, image)
    elif not image_exists(cli, image):
        repository, tag = pull_reference(image)
        try:
            cli.images.pull(repository, tag=tag, platform=variant.platform)
        except docker.errors.DockerException as exc:
            text = str(getattr(exc, "explanation", None) or exc).strip()
            reason = text.splitlines()[0] if text else type(exc).__name__
            raise UnpullableBase(variant, step, image, reason) from None
    if image_exists(cli, image):
        check_architecture(cli, variant, image)


def pull_reference(image: str) -> tuple[str, str]:
    """(repository, tag or digest) to pull ``image`` by: ``name:tag@sha256:...`` (a tag pinned
    by its digest) pulls by the digest alone, which is what the registry serves."""
    repository, tag = docker.utils.parse_repository_tag(image)
    if tag.startswith("sha256:") and ":" in repository.rsplit("/", 1)[-1]:
        repository = repository.rsplit(":", 1)[0]
    return repository, tag


def check_architecture(cli: docker.DockerClient, variant: Variant, ref: str) -> None:
    """An image used for the variant must be of its architecture (a local tag has one)."""
    found = cli.images.get(ref).attrs.get("Architecture", "")
    wanted = variant.architecture.docker_arch
    if found != wanted:
        raise GdalLambdaError(
            f"image {ref} is {found or 'of no architecture'}, but this build is for "
            f"{variant.arch} ({wanted}): remove it or rebuild it for {variant.arch}"
        )


@dataclass(frozen=True)
class BuildPlan:
    """Where the GDAL image's compilers run: natively, cross, or under emulation."""

    build_arch: str  # the architecture the compilers run as
    build_image: str  # BUILD_IMAGE: the target's base for build_arch
    build_platform: str  # the Docker platform of the build (its compiling stages)
    cross: str  # the cross toolchain's triplet, "" when compiling for build_arch itself
    emulated: bool  # the compilers themselves run under QEMU

    def describe(self) -> str:
        if self.cross:
            return f"cross-compiled on {self.build_arch} with {self.cross}-gcc"
        return "compiled under QEMU emulation" if self.emulated else "compiled natively"


def build_plan(variant: Variant, host: str | None = None) -> BuildPlan:
    """Native on a host of the variant's architecture; else cross-compiled where the target has
    a cross toolchain (Debian), measured several times faster than compiling under emulation
    (README "Architectures"); else under emulation."""
    host = host if host is not None else host_architecture()
    if (
        host != variant.arch
        and variant.target.cross_compiles
        and host in variant.matrix.architectures
    ):
        return BuildPlan(
            host,
            variant.target.gdal_image(host),
            variant.matrix.architecture(host).docker_platform,
            variant.architecture.gnu,
            False,
        )
    return BuildPlan(variant.arch, variant.gdal_base, variant.platform, "", host != variant.arch)


def cache_sources(variant: Variant, *tags: str) -> tuple[str, ...]:
    """The ``cache_from`` of a build: its own tags when the variant reuses loaded images
    (``GDAL_LAMBDA_CACHE_FROM=1``), otherwise none (Docker's local cache, unrestricted)."""
    return tags if variant.cache_from else ()


def _data_args() -> dict[str, str]:
    """GDAL_DATA and PROJ_DATA of /opt, from their one copy (runtime.data_env)."""
    data = data_env(LAYER_ROOT)
    return {"GDAL_DATA": data["GDAL_DATA"], "PROJ_DATA": data["PROJ_DATA"]}


def build_gdal(
    variant: Variant,
    *,
    echo: Callable[[str], None] | None = None,
    show_progress: bool = True,
    fetch_settings: FetchSettings | None = None,
    fetch_hint: str = "",
) -> BuildResult:
    """Fetch and verify the stack's and the line's sources, then build ``<repo>:gdal<line>``
    with every source's licence texts in /opt/share/licenses (``fetch_hint``: how a user
    fetches the sources again, written beside them)."""
    line, target = variant.line, variant.target
    cli = client()
    _ensure_base(cli, variant, variant.gdal_base)
    fetched = fetch_all(
        list(variant.matrix.components(line).values()),
        show_progress=show_progress,
        settings=fetch_settings,
    )
    plan = build_plan(variant)
    if plan.cross:
        _ensure_base(cli, dataclasses.replace(variant, arch=plan.build_arch), plan.build_image)
    print(f"building {variant.gdal_tag} for {variant.arch}: {plan.describe()}")
    buildargs = {
        **_data_args(),
        "BASE_IMAGE": variant.gdal_base,
        "BUILD_IMAGE": plan.build_image,
        "PLATFORM": variant.platform,
        "CROSS": plan.cross,
        "CROSS_ARCH": variant.arch if plan.cross else "",
        "QEMU_LD_PREFIX": f"/usr/{plan.cross}" if plan.cross else "",
    }
    with tempfile.TemporaryDirectory(prefix="gdal-lambda-missing.") as tmp:
        extra = _source_files(fetched, Path(tmp))
        dockerfile = project_root() / "docker" / "gdal" / "Dockerfile"
        provenance = provenance_labels(line, target, variant.arch, fetched)
        cache_from = cache_sources(variant, variant.stages_tag, variant.gdal_tag)
        with build_context(dockerfile, extra) as ctx:
            # Licence texts out of the same verified tarballs: a named file that is missing
            # stops here, before any stage runs.
            write_licences(fetched, ctx / "licenses", fetch_hint=fetch_hint)
            # GDAL's configuration file (share/gdal/gdalrc, linked from etc/gdal/gdalrc),
            # from runtime.GDALRC_OPTIONS: copied into /opt by the final stage only.
            write_gdalrc(ctx / "config")
            # The last compile stage first, under its own tag: the final image keeps only /opt,
            # so a release job saves this one too and the next reuses every stage (the second
            # build finds all of them in the cache).
            stream_build(
                cli,
                context=ctx,
                tag=variant.stages_tag,
                buildargs=buildargs,
                platform=plan.build_platform,
                target="gdal",
                labels=provenance,
                cache_from=cache_from,
                echo=echo,
            )
            return stream_build(
                cli,
                context=ctx,
                tag=variant.gdal_tag,
                buildargs=buildargs,
                platform=plan.build_platform,
                labels=provenance,
                cache_from=cache_from,
                echo=echo,
            )


def build_python(variant: Variant, *, echo: Callable[[str], None] | None = None) -> BuildResult:
    """Build ``<repo>:gdal<line>-py<python>``: the Lambda Python base, /opt, compilers, numpy.

    A matrix overlay's requirement_overrides re-pin its build tools too; every install is
    hash-locked (see gdal_lambda.locks)."""
    python = variant.python
    root = project_root()
    overrides = variant.matrix.requirement_overrides
    lock = locks.require(root / "docker" / "python" / "requirements.txt", python, overrides)
    cli = client()
    gdal_ref = variant.gdal_tag
    require(cli, variant, Kind.GDAL, gdal_ref)
    _ensure_base(cli, variant, variant.python_base, Kind.PYTHON)
    buildargs = {
        **_data_args(),
        "GDAL_IMAGE": gdal_ref,
        "PYTHON_BASE": variant.python_base,
        "PYTHON_VERSION": python,
    }
    # The GDAL image's provenance labels travel on: the Python and layer images (and the
    # manifests made from them) say which tarballs their /opt came from.
    provenance = carried(labels(cli, gdal_ref))
    extra = [(lock, "docker/python/requirements.lock")]
    with build_context(root / "docker" / "python" / "Dockerfile", extra) as ctx:
        return stream_build(
            cli,
            context=ctx,
            tag=variant.python_tag,
            buildargs=buildargs,
            platform=variant.platform,
            labels=provenance,
            cache_from=cache_sources(variant, variant.python_tag),
            echo=echo,
        )


def build_layer(variant: Variant, *, echo: Callable[[str], None] | None = None) -> BuildResult:
    """Build ``<repo>:gdal<line>-py<python>-<recipe>`` from ``layers/<recipe>/``.

    The recipe's context receives its hash-locked requirements (see
    :func:`gdal_lambda.locks.layer_context`); the distributions compiled against /opt
    (matrix.toml's ``compiled_against_opt``) are its NO_BINARY build argument. A recipe that
    extends another (gdal_lambda.recipes) is built FROM that recipe's layer image, which is
    built (or found in Docker's cache) first, and installs only what it lacks."""
    matrix, python = variant.matrix, variant.python
    recipe = recipes.load(variant.recipe)
    cli = client()
    check_runnable(variant.architecture)
    base_image = variant.python_tag
    if recipe.extends is not None:
        base_variant = dataclasses.replace(variant, recipe=recipe.extends.name)
        build_layer(base_variant, echo=echo)
        base_image = base_variant.layer_tag
    else:
        require(cli, variant, Kind.PYTHON, base_image)
    with tempfile.TemporaryDirectory(prefix="gdal-lambda-recipe.") as tmp:
        ctx = Path(tmp) / recipe.name
        shutil.copytree(recipe.folder, ctx)
        shutil.copy2(recipe.dockerfile, ctx / "Dockerfile")
        locks.layer_context(
            recipe.requirements,
            python,
            ctx,
            matrix.requirement_overrides,
            matrix.build_constraints,
            base=recipe.extends.requirements if recipe.extends else None,
        )
        return stream_build(
            cli,
            context=ctx,
            tag=variant.layer_tag,
            buildargs={
                "BASE_IMAGE": base_image,
                "RECIPE": recipe.name,
                "NO_BINARY": ",".join(matrix.compiled_against_opt),
                "GDAL_BINDINGS_SHA256": variant.line.bindings_sha256,
            },
            platform=variant.platform,
            cache_from=cache_sources(variant, variant.layer_tag),
            echo=echo,
        )
