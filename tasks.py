"""invoke tasks: parse arguments, call gdal_lambda. No logic lives here.

invoke --list            every task
invoke build.gdal --version 3.13 [--target debian13]

Each task resolves one Variant (line, target, Python, recipe, architecture, repository) from its
options and the environment, once, and passes it down. This file is the only place that knows
how commands are spelled: a MissingArtifact from below becomes the command to run
(:func:`command_for`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from invoke.collection import Collection
from invoke.exceptions import Exit
from invoke.tasks import task
from rich.console import Console
from rich.table import Table

from gdal_lambda import (
    containers,
    function_image,
    images,
    layer,
    local,
    locks,
    readme,
    release,
    sources,
    versions,
)
from gdal_lambda import package as packaging
from gdal_lambda import publish as publishing
from gdal_lambda import push as pushing
from gdal_lambda import standin as standins
from gdal_lambda.errors import GdalLambdaError, Kind, MissingArtifact, MissingImage, UnpullableBase
from gdal_lambda.limits import IMAGE_LIMIT, fmt_mib
from gdal_lambda.options import comma_list
from gdal_lambda.provenance import LABEL_PREFIX
from gdal_lambda.variant import (
    DEFAULT_RECIPE,
    DEFAULT_REPOSITORY,
    ENV_PYTHON,
    ENV_STANDIN_VIA,
    Variant,
    resolve_architecture,
)
from gdal_lambda.versions import DEFAULT_ARCH

# No automatic short flags: invoke would give -h to --handler in one task and -t to --target in
# another; long options mean the same everywhere, and -h stays help.
plain_task = functools.partial(task, auto_shortflags=False)


def command_for(missing: MissingArtifact) -> str:
    """The command that makes a missing artifact, its options those of the variant that needed
    it (each only when it is not the default)."""
    v = missing.variant
    target = [] if v.target.name == v.matrix.default_target else ["--target", v.target.name]
    python = [] if v.python == v.target.check_python(None) else ["--python", v.python]
    recipe = [] if v.recipe == DEFAULT_RECIPE else ["--recipe", v.recipe]
    repo = [] if v.repository == DEFAULT_REPOSITORY else ["--repository", v.repository]
    arch = [] if v.arch == DEFAULT_ARCH else ["--arch", v.arch]
    line = v.line.name
    words: list[str]
    try:
        kind = Kind(missing.kind)
    except ValueError:
        raise ValueError(f"no command makes a {missing.kind!r}") from None
    if kind is Kind.STANDIN or (kind is Kind.RUNTIME and v.target.is_standin):
        py = ["--python", v.python] if v.target.standin_python(v.python) else []
        words = ["invoke", "build.standin", "--target", v.target.name, *py, *arch]
    elif kind is Kind.RUNTIME:
        words = ["docker", "pull", "--platform", v.platform, v.runtime_image]
    elif kind is Kind.GDAL:
        words = ["invoke", "build.gdal", "--version", line, *target, *arch, *repo]
    elif kind is Kind.PYTHON:
        words = ["invoke", "build.python", "--gdal", line, *python, *target, *arch, *repo]
    elif kind is Kind.LAYER:
        words = ["invoke", "build.layer", "--gdal", line, *python, *recipe, *target, *arch, *repo]
    elif kind is Kind.LAYER_ZIP:
        words = ["invoke", "layer", "--gdal", line, *python, *recipe, *target, *arch, *repo]
    elif kind is Kind.PACKAGE:
        words = ["invoke", "package", "--src", "<folder>", "--gdal", line, *python, *target, *arch]
    else:
        raise ValueError(f"no command makes a {kind!r}")
    return " ".join(words)


def on_the_floor(unpullable: UnpullableBase) -> str:
    """The command that runs the same step on the floor, the matrix's default target (a local
    stand-in: no registry needed), for the Python asked for where the floor has it."""
    v = unpullable.variant
    floor = v.matrix.target(None)
    python = v.python if v.python in floor.pythons else floor.check_python(None)
    moved = dataclasses.replace(v, target=floor, python=python)
    return command_for(MissingImage(moved, unpullable.kind, unpullable.image))


def clean_errors(body: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a GdalLambdaError into one line on stderr and exit status 1 (no traceback); a
    missing artifact says the command that makes it, a base image out of reach the command
    that builds on the floor instead."""

    @functools.wraps(body)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return body(*args, **kwargs)
        except MissingArtifact as exc:
            raise Exit(
                f"error: {exc.what} does not exist: run `{command_for(exc)}` first", code=1
            ) from None
        except UnpullableBase as exc:
            floor = exc.variant.matrix.default_target
            raise Exit(
                f"error: {exc}; build on the floor ({floor}, the default target) instead: "
                f"`{on_the_floor(exc)}`",
                code=1,
            ) from None
        except GdalLambdaError as exc:
            raise Exit(f"error: {exc}", code=1) from None

    return wrapper


def _matrix() -> versions.Matrix:
    """The matrix: $GDAL_LAMBDA_MATRIX (default matrix.toml) and $GDAL_LAMBDA_MATRIX_OVERLAY."""
    return versions.load_matrix(env=os.environ)


def _required(value: str | None, option: str, example: str) -> str:
    """A required option is a keyword with a None default (so --help still prints the help)."""
    if value is None or not value.strip():
        raise GdalLambdaError(f"{option} is required, e.g. {option} {example}")
    return value


def resolve(
    line: str | None,
    *,
    option: str = "--gdal",
    target: str | None = None,
    python: str | None = None,
    recipe: str | None = None,
    arch: str | None = None,
    repository: str | None = None,
) -> Variant:
    """The task's one Variant: its options, then the environment, then the defaults."""
    return Variant.resolve(
        _matrix(),
        line=_required(line, option, "3.13"),
        env=os.environ,
        target=target,
        python=python,
        recipe=recipe,
        arch=arch,
        repository=repository,
    )


# ------------------------------------------------------------------------------------------------
# build.*

_LINE_HELP = "GDAL line from matrix.toml (3.13, 3.10...); required"


def _help_from_matrix() -> tuple[str, str, str]:
    """--target's, --python's and build.standin's --target help, written from the matrix (a
    matrix that does not load leaves the tasks listable: its error comes when a task runs)."""
    try:
        m = _matrix()
    except GdalLambdaError:
        return "a target of matrix.toml", "Python version", "a stand-in target; required"
    default = m.default_target
    standins = [n for n, t in sorted(m.targets.items()) if t.is_standin]
    others = [n for n in standins if n != default]
    checked = ", ".join(m.checked_targets)
    target = f"{default}, the floor (default, or $GDAL_LAMBDA_TARGET)"
    if checked:
        target += f", {checked} (checked by the release, never published)"
    target += f" or another local stand-in ({', '.join(others)})"
    python = f"Python version; the target's list ({default}: {', '.join(m.target().pythons)})"
    return target, python, f"stand-in target ({', '.join(standins)}); required"


_TARGET_HELP, _PYTHON_HELP, _STANDIN_HELP = _help_from_matrix()
_REPO_HELP = "image repository (default $GDAL_LAMBDA_REPOSITORY or gdal-lambda)"
_ARCH_HELP = (
    "x86_64 (default, or $GDAL_LAMBDA_ARCH) or arm64: Lambda's architecture to build for "
    "(image tags, zip and layer names get an arm64 suffix)"
)


@plain_task(
    help={
        "version": _LINE_HELP,
        "target": _TARGET_HELP,
        "arch": _ARCH_HELP,
        "repository": _REPO_HELP,
    }
)
@clean_errors
def gdal(
    c: Any,
    version: str | None = None,
    target: str | None = None,
    arch: str | None = None,
    repository: str | None = None,
) -> None:
    """Build <repository>:gdal<version>[-arm64] with GDAL, PROJ and GEOS compiled into /opt."""
    variant = resolve(version, option="--version", target=target, arch=arch, repository=repository)
    result = images.build_gdal(
        variant,
        fetch_settings=sources.Settings.from_env(os.environ),
        fetch_hint=f"invoke fetch --version {variant.line.name}",
    )
    print(f"built {result.tag} ({result.image_id[:19]})")


_PY_HELP = {
    "gdal": _LINE_HELP,
    "python": f"{_PYTHON_HELP}. Default: its newest",
    "target": _TARGET_HELP,
    "arch": _ARCH_HELP,
    "repository": _REPO_HELP,
}


@plain_task(help=_PY_HELP)
@clean_errors
def python(
    c: Any,
    gdal: str | None = None,
    python: str | None = None,
    target: str | None = None,
    arch: str | None = None,
    repository: str | None = None,
) -> None:
    """Build <repository>:gdal<line>-py<python>: Lambda Python base + /opt + compilers, numpy."""
    variant = resolve(gdal, target=target, python=python, arch=arch, repository=repository)
    result = images.build_python(variant)
    print(f"built {result.tag} ({result.image_id[:19]})")


@plain_task(help={**_PY_HELP, "recipe": "layer recipe folder under layers/ (default geo)"})
@clean_errors
def layer_image(
    c: Any,
    gdal: str | None = None,
    python: str | None = None,
    target: str | None = None,
    recipe: str | None = None,
    arch: str | None = None,
    repository: str | None = None,
) -> None:
    """Build <repository>:gdal<line>-py<python>-<recipe> from layers/<recipe>/."""
    variant = resolve(
        gdal, target=target, python=python, recipe=recipe, arch=arch, repository=repository
    )
    result = images.build_layer(variant)
    print(f"built {result.tag} ({result.image_id[:19]})")


@plain_task(
    help={
        "target": _STANDIN_HELP,
        "python": "only this Python's stand-in (default: every Python of the target)",
        "arch": _ARCH_HELP,
        "via": "registry (Docker Hub's pinned image; the default) or debootstrap (needs root)",
        "force": "make the debootstrap root again and build every stand-in without Docker's "
        "cache (without it, a stand-in whose label records today's inputs is kept)",
    }
)
@clean_errors
def standin(
    c: Any,
    target: str | None = None,
    python: str | None = None,
    arch: str | None = None,
    via: str | None = None,
    force: bool = False,
) -> None:
    """Make a target's stand-in base images: FROM Docker Hub's digest-pinned Debian, or, where no
    registry is in reach, FROM a root file system debootstrap makes (as root); another
    architecture's under QEMU's emulation, which this registers."""
    matrix = _matrix()
    picked = matrix.target(_required(target, "--target", matrix.default_target))
    architecture = resolve_architecture(matrix, arch, os.environ)
    python = python if python is not None else os.environ.get(ENV_PYTHON) or None
    settings = sources.Settings.from_env(os.environ)
    made = standins.make_standin(
        picked,
        architecture,
        python=python,
        via=via or os.environ.get(ENV_STANDIN_VIA) or "registry",
        force=force,
        fetch_settings=settings,
        env=os.environ,
    )
    print(f"stand-ins: {', '.join(made)}")


# ------------------------------------------------------------------------------------------------
# top level


@plain_task(help={"version": "GDAL line", "all_lines": "every line in the matrix"})
@clean_errors
def fetch(c: Any, version: str | None = None, all_lines: bool = False) -> None:
    """Fetch and verify a line's source tarballs, its native stack's too, into the cache (then
    builds work offline); each is the exact source of the binaries built from it."""
    matrix = _matrix()
    if not version and not all_lines:
        raise GdalLambdaError("name a line with --version (or use --all-lines)")
    names = sorted(matrix.lines) if all_lines else [matrix.line(version or "").name]
    settings = sources.Settings.from_env(os.environ)
    for name in names:
        line = matrix.line(name)
        fetched = sources.fetch_all(list(matrix.components(line).values()), settings=settings)
        for item in fetched.values():
            print(f"{item.source.name} {item.source.version}: {item.path} (from {item.mirror.url})")


@plain_task(
    name="layer",
    help={
        **_PY_HELP,
        "recipe": "layer recipe (default geo)",
        "dist": "output folder (default dist/)",
        "also-runs-on": "comma-separated targets whose runtimes must run the layer too "
        "(bundle what any of them lacks)",
    },
)
@clean_errors
def layer_zip(
    c: Any,
    gdal: str | None = None,
    python: str | None = None,
    target: str | None = None,
    recipe: str | None = None,
    arch: str | None = None,
    repository: str | None = None,
    dist: str | None = None,
    also_runs_on: str | None = None,
) -> None:
    """Zip the layer image into dist/gdal<line>-py<python>-<recipe>[-arm64].zip: checked against
    the Lambda policy of its target and architecture, size-reported."""
    variant = resolve(
        gdal, target=target, python=python, recipe=recipe, arch=arch, repository=repository
    )
    others = [variant.matrix.target(name) for name in comma_list(also_runs_on)]
    result = layer.build_layer_zip(variant, dist=Path(dist) if dist else None, also_runs_on=others)
    facts = result.assembled
    print(
        f"wrote {result.zip_path} ({result.report.zipped or 0:,} bytes; "
        f"{facts.elf_count} ELF files checked; {len(facts.bundled)} libraries bundled; "
        f"satisfies the Lambda policies of {', '.join(facts.satisfies)})"
    )


@plain_task(
    name="package",
    help={
        **_PY_HELP,
        "src": "folder with the handler, requirements.txt and any other code; required",
        "layer": "layer recipe the function will run on (a companion package); omit for a full one",
        "handler": "module.function (default handler.handler)",
        "out": "zip to write (default dist/<src folder>.zip)",
        "force": "rebuild the zip even if nothing changed",
        "no-binary": "comma-separated distributions to compile against /opt "
        "(default: matrix.toml's [python] compiled_against_opt)",
    },
)
@clean_errors
def package_task(
    c: Any,
    src: str | None = None,
    gdal: str | None = None,
    python: str | None = None,
    target: str | None = None,
    layer: str | None = None,
    handler: str = "handler.handler",
    out: str | None = None,
    arch: str | None = None,
    repository: str | None = None,
    force: bool = False,
    no_binary: str | None = None,
) -> None:
    """Build a function package: full (runs alone) or, with --layer, only what the layer lacks."""
    folder = Path(_required(src, "--src", "examples/package"))
    variant = resolve(
        gdal, target=target, python=python, recipe=layer, arch=arch, repository=repository
    )
    result = packaging.build_package(
        variant,
        folder,
        with_layer=layer is not None,
        handler=handler,
        out=Path(out) if out else None,
        force=force,
        no_binary=no_binary,
    )
    print(f"wrote {result.zip_path} ({result.report.zipped or 0:,} bytes, {result.seconds:.1f} s)")


@plain_task(
    name="image",
    help={
        **{k: v for k, v in _PY_HELP.items() if k != "repository"},
        "src": "folder with the handler, requirements.txt and any other code; required",
        "recipe": "the layer recipe whose /opt the image carries (default geo)",
        "handler": "module.function (default handler.handler)",
    },
)
@clean_errors
def image_task(
    c: Any,
    src: str | None = None,
    gdal: str | None = None,
    python: str | None = None,
    target: str | None = None,
    recipe: str | None = None,
    handler: str = "handler.handler",
    arch: str | None = None,
) -> None:
    """Build a Lambda function image: the target's Python runtime, /opt from the layer zip, the
    function's companion package in /var/task, CMD the handler."""
    folder = Path(_required(src, "--src", "examples/package"))
    variant = resolve(gdal, target=target, python=python, recipe=recipe, arch=arch)
    built = function_image.build_image(variant, folder, handler=handler)
    print(
        f"built {built.tag} ({built.image_id[:19]}; {fmt_mib(built.size)} uncompressed, "
        f"Lambda's limit {fmt_mib(IMAGE_LIMIT)}; {built.seconds:.1f} s)"
    )


@plain_task(
    name="run",
    help={
        **{k: v for k, v in _PY_HELP.items() if k != "repository"},
        "package": "the package zip (from `invoke package`); required unless --image",
        "image": "a function image (from `invoke image`) to invoke through the Runtime API",
        "event": "JSON file given to the handler as its event; required",
        "layer": "layer recipe to put at /opt (its zip from `invoke layer`)",
        "handler": "module.function (default handler.handler)",
        "env": "extra NAME=VALUE for the function (repeatable)",
    },
    iterable=["env"],
)
@clean_errors
def run_task(
    c: Any,
    package: str | None = None,
    image: str | None = None,
    event: str | None = None,
    gdal: str | None = None,
    python: str | None = None,
    target: str | None = None,
    layer: str | None = None,
    handler: str = "handler.handler",
    arch: str | None = None,
    env: list[str] | None = None,
) -> None:
    """Invoke a handler locally in the target's clean runtime (arm64: under emulation on an
    x86_64 host), or a function image through the Lambda Runtime API; print its JSON result."""
    event_path = Path(_required(event, "--event", "examples/package/event.json"))
    extra = {}
    for item in env or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise GdalLambdaError(f"--env {item!r} is not NAME=VALUE")
        extra[name] = value
    if image is not None:
        if package is not None:
            raise GdalLambdaError("give --package or --image, not both")
        _run_image(image, event_path, gdal, python, target, arch, extra)
        return
    package_zip = Path(_required(package, "--package", "dist/package.zip"))
    variant = resolve(gdal, target=target, python=python, recipe=layer, arch=arch)
    result = local.invoke_local(
        None,
        variant,
        package_zip,
        event_path,
        layer_zip=variant.layer_zip() if layer else None,
        handler=handler,
        env=extra,
    )
    if result.ok:
        print(json.dumps(result.result, indent=2))
        return
    error = result.error or {}
    sys.stderr.write(result.log[-4000:])
    raise Exit(
        f"error: the handler raised {error.get('errorType')}: {error.get('errorMessage')}\n"
        f"{error.get('stackTrace', '')}".rstrip(),
        code=1,
    )


def _require_function_image(cli: Any, image: str) -> None:
    if not containers.image_exists(cli, image):
        raise GdalLambdaError(
            f"image {image} does not exist: build it with "
            "`invoke image --src <folder> --gdal <line>`"
        )


def _run_image(
    image: str,
    event_path: Path,
    gdal: str | None,
    python: str | None,
    target: str | None,
    arch: str | None,
    env: dict[str, str],
) -> None:
    """`invoke run --image`: the outcome as Lambda would report it; an error is one line."""
    event = local.read_event(event_path)
    cli = containers.client()
    _require_function_image(cli, image)
    labels = containers.labels(cli, image)
    line = gdal or labels.get(f"{LABEL_PREFIX}.line")
    python = python or labels.get(f"{LABEL_PREFIX}.python")
    target = target or labels.get(f"{LABEL_PREFIX}.target")
    arch = arch or labels.get(f"{LABEL_PREFIX}.arch")
    variant = resolve(line, target=target, python=python, arch=arch)
    outcome, log = function_image.invoke_image(cli, variant, image, event, env=env)
    if outcome.kind == "response":
        print(json.dumps(outcome.payload, indent=2))
        return
    sys.stderr.write(log[-4000:])
    payload = outcome.payload if isinstance(outcome.payload, dict) else {}
    what = "the function failed to start" if outcome.kind == "init-error" else "the handler raised"
    raise Exit(f"error: {what}: {payload.get('errorType')}: {payload.get('errorMessage')}", code=1)


@plain_task(help={"write": "rewrite the driver table in README.md instead of printing it"})
@clean_errors
def drivers(c: Any, write: bool = False) -> None:
    """Print the expected-driver table (the data the tests check) or write it into README.md."""
    matrix = _matrix()
    if write:
        readme.write_drivers_table(matrix)
        print("README.md driver table updated")
    else:
        print(readme.drivers_table(matrix))


@plain_task(
    help={
        "target": f"{_TARGET_HELP}: the target the release builds for",
        "recipe": "only this layer recipe and the recipes it extends (default: every recipe)",
        "json": 'print the entries as JSON ({"include": [...]}, one line) for the release '
        "workflow's job matrix instead of a table",
    }
)
@clean_errors
def matrix(
    c: Any, target: str | None = None, recipe: str | None = None, json_: bool = False
) -> None:
    """Every (line, Python, arch) a release builds: nox session, each recipe's zip and layer
    name, runner, and whether it is published (the floor) or checked only (al2023)."""
    entries = release.release_matrix(_matrix(), env=os.environ, target=target, recipe=recipe)
    if json_:
        print(json.dumps({"include": [e.as_dict() for e in entries]}, separators=(",", ":")))
        return
    table = Table(box=None, header_style="bold")
    columns = ("line", "python", "arch", "target", "nox session", "recipe", "zip", "layer")
    for column in (*columns, "runner", "release"):
        table.add_column(column, no_wrap=True)
    for e in entries:
        # one line of the row per recipe: the job builds, uploads and publishes each
        each = [[r.recipe for r in e.recipes], [r.zip for r in e.recipes]]
        each.append([r.layer for r in e.recipes])
        what = "published" if e.publish else "checked only"
        per_recipe = ("\n".join(values) for values in each)
        table.add_row(e.line, e.python, e.arch, e.target, e.session, *per_recipe, e.runner, what)
    Console(width=200).print(table)


# ------------------------------------------------------------------------------------------------
# publishing (publish, push, layers.*): see gdal_lambda.publish
# >>> publish tasks

# plain_task here too: invoke's automatic short flags would give `-r` --regions in one task and
# --recipe in the next.
_AWS_HELP = {
    "regions": "'all' (default: every commercial region the account has enabled) or a list",
    "endpoint_url": "another AWS endpoint for every client (or $GDAL_LAMBDA_ENDPOINT_URL)",
    "jobs": f"regions at a time (default {publishing.DEFAULT_JOBS}, at least 1)",
}
_LAYER_HELP = {
    "gdal": _LINE_HELP,
    "python": "Python version; one of the target's (default: its newest)",
    "target": _TARGET_HELP,
    "arch": _ARCH_HELP,
}
_SCOPE_HELP = {
    "gdal": "GDAL line: with --python, names one layer (gdal313-py312-geo)",
    "python": "Python version (with --gdal)",
    "recipe": "layer recipe (default geo)",
    "arch": _ARCH_HELP,
    "name": "a layer name prefix instead of --gdal/--python (default: all gdal*-py*-* layers)",
}


def _whole_number(option: str, raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise GdalLambdaError(f"{option} {raw!r} is not a whole number") from None


def _aws_settings(
    endpoint_url: str | None,
    jobs: int | None,
    max_attempts: str | None = None,
    retry_mode: str | None = None,
) -> publishing.Settings:
    return publishing.Settings.from_env(
        os.environ,
        endpoint_url=endpoint_url,
        jobs=jobs,
        max_attempts=_whole_number("--max-attempts", max_attempts),
        retry_mode=retry_mode,
    )


def _scope(
    gdal: str | None, python: str | None, recipe: str | None, arch: str | None, name: str | None
) -> publishing.Scope:
    """The layers list and prune look at; the architecture is --arch, else $GDAL_LAMBDA_ARCH,
    checked against the matrix (like every option, before any request is made)."""
    architecture = resolve_architecture(_matrix(), arch, os.environ)
    return publishing.Scope.of(
        gdal, python, recipe or DEFAULT_RECIPE, architecture.name, prefix=name
    )


def interrupts(body: Callable[..., Any]) -> Callable[..., Any]:
    """Ctrl-C during a per-region run: what was in flight, what is left, exit status 130."""

    @functools.wraps(body)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return body(*args, **kwargs)
        except publishing.Interrupted as stop:
            raise Exit(str(stop), code=stop.exit_code) from None

    return wrapper


@plain_task(
    iterable=["account"],
    help={
        **_LAYER_HELP,
        **_AWS_HELP,
        "recipe": "layer recipe (default geo)",
        "zip": "publish this zip instead of dist/gdal<line>-py<python>-<recipe>[-<target>].zip",
        "public": "grant lambda:GetLayerVersion to every AWS account",
        "org_id": "grant it to one AWS Organization (o-...)",
        "account": "ID: grant it to this 12-digit account id (repeat --account ID, or give "
        "several comma-separated)",
        "dry_run": "say what would happen; read, write nothing",
        "manifest": "the ARN manifest (default layers.json at the repository root; .md beside)",
        "keep_upload": "keep the S3 copy of a large zip after publishing",
        "bucket": f"upload bucket for large zips (default {publishing.DEFAULT_BUCKET})",
        "description": "layer description (the zip's sha256 is appended)",
        "license": "LicenseInfo (default: the SPDX expression of the zip's contents, from its "
        f"SBOM; {publishing.NO_SBOM_LICENSE} for a zip without one)",
        "runtimes": "compatible runtimes, comma-separated (default python<python>)",
        "max_attempts": f"botocore attempts per request (default $GDAL_LAMBDA_MAX_ATTEMPTS or "
        f"{publishing.DEFAULT_ATTEMPTS}; at least 1)",
        "retry_mode": "botocore retry mode: standard (default) or adaptive",
    },
)
@clean_errors
@interrupts
def publish(
    c: Any,
    gdal: str | None = None,
    python: str | None = None,
    regions: str = "all",
    recipe: str | None = None,
    target: str | None = None,
    arch: str | None = None,
    zip_: str | None = None,
    public: bool = False,
    org_id: str | None = None,
    account: list[str] | None = None,
    dry_run: bool = False,
    jobs: int = publishing.DEFAULT_JOBS,
    endpoint_url: str | None = None,
    manifest: str | None = None,
    keep_upload: bool = False,
    bucket: str | None = None,
    description: str | None = None,
    license: str | None = None,
    runtimes: str | None = None,
    max_attempts: str | None = None,
    retry_mode: str | None = None,
) -> None:
    """Publish the layer zip to every region that lacks it; idempotent, parallel, resumable."""
    variant = resolve(gdal, target=target, python=python, recipe=recipe, arch=arch)
    settings = _aws_settings(endpoint_url, jobs, max_attempts, retry_mode)
    layer_spec = publishing.layer_spec(
        variant,
        zip_path=zip_,
        description=description,
        license=license,
        runtimes=comma_list(runtimes),
    )
    publishing.publish(
        layer_spec,
        publishing.resolve_regions(regions),
        access=publishing.Access.parse(public=public, org_id=org_id, accounts=account or []),
        manifest=publishing.Manifest(manifest, env=os.environ),
        settings=settings,
        dry_run=dry_run,
        keep_upload=keep_upload,
        bucket=bucket if bucket is not None else publishing.DEFAULT_BUCKET,
    )


@plain_task(help={**_SCOPE_HELP, **_AWS_HELP})
@clean_errors
@interrupts
def layers_list(
    c: Any,
    gdal: str | None = None,
    python: str | None = None,
    recipe: str | None = None,
    arch: str | None = None,
    name: str | None = None,
    regions: str = "all",
    endpoint_url: str | None = None,
    jobs: int = publishing.DEFAULT_JOBS,
) -> None:
    """Table of region -> latest version and ARN of our layers (reads only)."""
    publishing.list_layers(
        _scope(gdal, python, recipe, arch, name),
        publishing.resolve_regions(regions),
        settings=_aws_settings(endpoint_url, jobs),
    )


@plain_task(
    help={
        **_SCOPE_HELP,
        **_AWS_HELP,
        "keep": "newest versions to keep in each region (default 3, at least 1)",
        "yes": "delete for real (without it: a dry run that lists what would go)",
        "manifest": "versions recorded there are kept too (default layers.json)",
    },
)
@clean_errors
@interrupts
def layers_prune(
    c: Any,
    keep: int = 3,
    yes: bool = False,
    gdal: str | None = None,
    python: str | None = None,
    recipe: str | None = None,
    arch: str | None = None,
    name: str | None = None,
    regions: str = "all",
    manifest: str | None = None,
    endpoint_url: str | None = None,
    jobs: int = publishing.DEFAULT_JOBS,
) -> None:
    """Delete layer versions older than the newest --keep in each region; dry run unless --yes."""
    publishing.prune(
        _scope(gdal, python, recipe, arch, name),
        publishing.resolve_regions(regions),
        keep=keep,
        yes=yes,
        manifest=publishing.Manifest(manifest, env=os.environ),
        settings=_aws_settings(endpoint_url, jobs),
    )


@plain_task(
    help={
        **_LAYER_HELP,
        "repository": "local image repository (default $GDAL_LAMBDA_REPOSITORY or gdal-lambda)",
        "registry": "<host>/<namespace>, e.g. ghcr.io/acme (or $GDAL_LAMBDA_REGISTRY)",
        "recipe": "layer recipe (default geo)",
        "image": "push this function image (from `invoke image`) instead of the build images",
    },
)
@clean_errors
def push(
    c: Any,
    gdal: str | None = None,
    python: str | None = None,
    registry: str | None = None,
    recipe: str | None = None,
    target: str | None = None,
    arch: str | None = None,
    repository: str | None = None,
    image: str | None = None,
) -> None:
    """Tag and push the gdal, python and layer images to a registry (docker login first), or,
    with --image, one function image and its size against Lambda's 10 GB."""
    if image is not None:
        cli = containers.client()
        _require_function_image(cli, image)
        pushing.push_image(image, registry=registry, env=os.environ, cli=cli)
        return
    variant = resolve(
        gdal, target=target, python=python, recipe=recipe, arch=arch, repository=repository
    )
    pushing.push_images(variant, registry=registry, env=os.environ)


# <<< publish tasks


@plain_task(
    help={
        "check": "only report missing or stale locks (exit 1 if any); write nothing",
        "overlay": "also lock this matrix overlay's requirement overrides (repeatable)",
        "index_url": f"the package index (default {locks.INDEX_URL})",
    },
    iterable=["overlay"],
)
@clean_errors
def lock(
    c: Any, check: bool = False, overlay: list[str] | None = None, index_url: str | None = None
) -> None:
    """Regenerate the hash-locked requirements (locks/py<python>.txt beside each input)."""
    matrix = _matrix()
    overlays = locks.known_overlays(matrix.path) + [
        versions.load_matrix(overlay=path, env=os.environ) for path in overlay or []
    ]
    if check:
        problems = locks.check(matrix, overlays)
        if problems:
            raise Exit("\n".join(f"error: {p}" for p in problems), code=1)
        print("every lock is up to date")
        return
    written = locks.regenerate(matrix, overlays, index_url or locks.INDEX_URL)
    print(f"{len(written)} locks written")


build = Collection("build")
build.add_task(gdal)
build.add_task(python)
build.add_task(layer_image, name="layer")
build.add_task(standin)

ns = Collection()
ns.add_collection(build)
ns.add_task(fetch)
ns.add_task(layer_zip)
ns.add_task(package_task)
ns.add_task(image_task)
ns.add_task(run_task)
ns.add_task(drivers)
ns.add_task(matrix)
ns.add_task(lock)
# >>> publish collection
layers = Collection("layers")
layers.add_task(layers_list, name="list")
layers.add_task(layers_prune, name="prune")
ns.add_collection(layers)
ns.add_task(publish)
ns.add_task(push)
# <<< publish collection
