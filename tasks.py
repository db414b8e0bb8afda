"""invoke tasks: parse arguments, call gdal_lambda. No logic lives here.

invoke --list            every task
invoke build.gdal --version 3.13 [--target debian13]
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from invoke.collection import Collection
from invoke.exceptions import Exit
from invoke.tasks import task

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from gdal_lambda import images, layer, locks, naming, readme, sources, versions
from gdal_lambda import package as packaging
from gdal_lambda import publish as publishing
from gdal_lambda import push as pushing
from gdal_lambda.errors import GdalLambdaError


def clean_errors(body: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a GdalLambdaError into one line on stderr and exit status 1 (no traceback)."""

    @functools.wraps(body)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return body(*args, **kwargs)
        except GdalLambdaError as exc:
            raise Exit(f"error: {exc}", code=1) from None

    return wrapper


def _line_target(version: str, target: str | None) -> tuple[versions.Matrix, Any, Any]:
    matrix = versions.load_matrix()
    return matrix, matrix.line(version), matrix.target(target)


# ------------------------------------------------------------------------------------------------
# build.*


@task(
    help={
        "version": "GDAL line from matrix.toml (3.13, 3.10...)",
        "target": "al2023 (default) or a local stand-in (debian13, debian12)",
        "repository": "image repository (default $GDAL_LAMBDA_REPOSITORY or gdal-lambda)",
    }
)
@clean_errors
def gdal(c: Any, version: str, target: str | None = None, repository: str | None = None) -> None:
    """Build <repository>:gdal<version> with GDAL, PROJ and GEOS compiled into /opt."""
    matrix, line, tgt = _line_target(version, target)
    result = images.build_gdal(matrix, line, tgt, repo=repository)
    print(f"built {result.tag} ({result.image_id[:19]})")


_PY_HELP = {
    "gdal": "GDAL line from matrix.toml (3.13, 3.10...)",
    "python": "Python version; the target's list (al2023: 3.12, 3.13, 3.14). Default: its newest",
    "target": "al2023 (default) or a local stand-in (debian13, debian12)",
    "repository": "image repository (default $GDAL_LAMBDA_REPOSITORY or gdal-lambda)",
}


@task(help=_PY_HELP)
@clean_errors
def python(
    c: Any,
    gdal: str,
    python: str | None = None,
    target: str | None = None,
    repository: str | None = None,
) -> None:
    """Build <repository>:gdal<line>-py<python>: Lambda Python base + /opt + compilers, numpy."""
    matrix, line, tgt = _line_target(gdal, target)
    result = images.build_python(
        line,
        tgt,
        tgt.check_python(python),
        repo=repository,
        overrides=matrix.requirement_overrides,
    )
    print(f"built {result.tag} ({result.image_id[:19]})")


@task(help={**_PY_HELP, "recipe": "layer recipe folder under layers/ (default geo)"})
@clean_errors
def layer_image(
    c: Any,
    gdal: str,
    python: str | None = None,
    target: str | None = None,
    recipe: str = "geo",
    repository: str | None = None,
) -> None:
    """Build <repository>:gdal<line>-py<python>-<recipe> from layers/<recipe>/."""
    matrix, line, tgt = _line_target(gdal, target)
    result = images.build_layer(
        line,
        tgt,
        tgt.check_python(python),
        recipe,
        repo=repository,
        overrides=matrix.requirement_overrides,
        build_constraints=matrix.build_constraints,
    )
    print(f"built {result.tag} ({result.image_id[:19]})")


@task(help={"target": "stand-in target (debian13, debian12)", "force": "make it again"})
@clean_errors
def standin(c: Any, target: str, force: bool = False) -> None:
    """Make a stand-in base image with debootstrap + docker import (needs root)."""
    matrix = versions.load_matrix()
    print(f"made {images.make_standin(matrix.target(target), force=force)}")


# ------------------------------------------------------------------------------------------------
# top level


@task(help={"version": "GDAL line", "all_lines": "every line in the matrix"})
@clean_errors
def fetch(c: Any, version: str | None = None, all_lines: bool = False) -> None:
    """Fetch and verify a line's source tarballs into the cache (works offline once warm)."""
    matrix = versions.load_matrix()
    if not version and not all_lines:
        raise GdalLambdaError("name a line with --version (or use --all-lines)")
    names = sorted(matrix.lines) if all_lines else [matrix.line(version or "").name]
    for name in names:
        line = matrix.line(name)
        for item in sources.fetch_all(list(line.sources.values())).values():
            print(f"{item.source.name} {item.source.version}: {item.path} (from {item.mirror.url})")


@task(
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
    gdal: str,
    python: str | None = None,
    target: str | None = None,
    recipe: str = "geo",
    repository: str | None = None,
    dist: str | None = None,
    also_runs_on: str | None = None,
) -> None:
    """Zip the layer image into dist/gdal<line>-py<python>-<recipe>.zip: checked, size-reported."""
    matrix, line, tgt = _line_target(gdal, target)
    others = [
        matrix.target(name.strip()) for name in (also_runs_on or "").split(",") if name.strip()
    ]
    result = layer.build_layer_zip(
        matrix,
        line,
        tgt,
        tgt.check_python(python),
        recipe,
        repo=repository,
        dist=Path(dist) if dist else None,
        also_runs_on=others,
    )
    print(
        f"wrote {result.zip_path} ({result.report.zipped or 0:,} bytes; "
        f"{result.elf_count} ELF files checked, highest glibc symbol {result.highest_glibc}; "
        f"{len(result.bundled)} libraries bundled)"
    )


@task(
    name="package",
    help={
        **_PY_HELP,
        "src": "folder with the handler, requirements.txt and any other code",
        "layer": "layer recipe the function will run on (a companion package); omit for a full one",
        "handler": "module.function (default handler.handler)",
        "out": "zip to write (default dist/<src folder>.zip)",
        "force": "rebuild the zip even if nothing changed",
        "no-binary": "comma-separated distributions to compile against /opt "
        "(default rasterio,fiona,shapely,pyproj,gdal)",
    },
)
@clean_errors
def package_task(
    c: Any,
    src: str,
    gdal: str,
    python: str | None = None,
    target: str | None = None,
    layer: str | None = None,
    handler: str = "handler.handler",
    out: str | None = None,
    repository: str | None = None,
    force: bool = False,
    no_binary: str | None = None,
) -> None:
    """Build a function package: full (runs alone) or, with --layer, only what the layer lacks."""
    matrix, line, tgt = _line_target(gdal, target)
    result = packaging.build_package(
        matrix,
        line,
        tgt,
        tgt.check_python(python),
        Path(src),
        layer_recipe=layer,
        handler=handler,
        out=Path(out) if out else None,
        repo=repository,
        force=force,
        no_binary=no_binary,
    )
    print(f"wrote {result.zip_path} ({result.report.zipped or 0:,} bytes, {result.seconds:.1f} s)")


@task(
    name="run",
    help={
        **{k: v for k, v in _PY_HELP.items() if k != "repository"},
        "package": "the package zip (from `invoke package`)",
        "event": "JSON file given to the handler as its event",
        "layer": "layer recipe to put at /opt (its zip from `invoke layer`)",
        "handler": "module.function (default handler.handler)",
        "env": "extra NAME=VALUE for the function (repeatable)",
    },
    iterable=["env"],
)
@clean_errors
def run_task(
    c: Any,
    package: str,
    event: str,
    gdal: str,
    python: str | None = None,
    target: str | None = None,
    layer: str | None = None,
    handler: str = "handler.handler",
    env: list[str] | None = None,
) -> None:
    """Invoke a handler locally in the target's clean runtime; print its JSON result."""
    _, line, tgt = _line_target(gdal, target)
    py = tgt.check_python(python)
    extra = {}
    for item in env or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise GdalLambdaError(f"--env {item!r} is not NAME=VALUE")
        extra[name] = value
    layer_zip = naming.layer_zip(line.name, py, layer, tgt.name) if layer else None
    result = packaging.invoke_local(
        images.client(),
        tgt,
        py,
        Path(package),
        Path(event),
        layer_zip=layer_zip,
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


@task(help={"write": "rewrite the driver table in README.md instead of printing it"})
@clean_errors
def drivers(c: Any, write: bool = False) -> None:
    """Print the expected-driver table (the data the tests check) or write it into README.md."""
    matrix = versions.load_matrix()
    if write:
        readme.write_drivers_table(matrix)
        print("README.md driver table updated")
    else:
        print(readme.drivers_table(matrix))


# ------------------------------------------------------------------------------------------------
# publishing (publish, push, layers.*): see gdal_lambda.publish
# >>> publish tasks

_AWS_HELP = {
    "regions": "'all' (default: every commercial region the account has enabled) or a list",
    "endpoint_url": "another AWS endpoint for every client (or $GDAL_LAMBDA_ENDPOINT_URL)",
    "jobs": f"regions at a time (default {publishing.DEFAULT_JOBS})",
}
_LAYER_HELP = {
    "gdal": "GDAL line from matrix.toml (3.13, 3.10...)",
    "python": "Python version; one of the target's (default: its newest)",
    "target": "al2023 (default) or a stand-in (debian13...): selects the stand-in zip/images",
}
_SCOPE_HELP = {
    "gdal": "GDAL line: with --python, names one layer (gdal313-py312-geo)",
    "python": "Python version (with --gdal)",
    "recipe": "layer recipe (default geo)",
    "arch": "x86_64 (default) or arm64",
    "name": "a layer name prefix instead of --gdal/--python (default: all gdal*-py*-* layers)",
}


def _aws_settings(
    endpoint_url: str | None,
    jobs: int | None,
    max_attempts: int | None = None,
    retry_mode: str | None = None,
) -> publishing.Settings:
    return publishing.Settings.from_env(
        endpoint_url=endpoint_url, jobs=jobs, max_attempts=max_attempts, retry_mode=retry_mode
    )


@task(
    iterable=["account"],
    help={
        **_LAYER_HELP,
        **_AWS_HELP,
        "recipe": "layer recipe (default geo)",
        "arch": "x86_64 (default) or arm64 (adds -arm64 to the layer name)",
        "zip": "publish this zip instead of dist/gdal<line>-py<python>-<recipe>[-<target>].zip",
        "public": "grant lambda:GetLayerVersion to every AWS account",
        "org_id": "grant it to one AWS Organization (o-...)",
        "account": "grant it to these account ids (repeatable, or comma-separated)",
        "dry_run": "say what would happen; read, write nothing",
        "manifest": "the ARN manifest (default layers.json at the repository root; .md beside)",
        "keep_upload": "keep the S3 copy of a large zip after publishing",
        "bucket": f"upload bucket for large zips (default {publishing.DEFAULT_BUCKET})",
        "description": "layer description (the zip's sha256 is appended)",
        "license": f"LicenseInfo (default {publishing.DEFAULT_LICENSE})",
        "runtimes": "compatible runtimes, comma-separated (default python<python>)",
        "max_attempts": f"botocore attempts per request (default {publishing.DEFAULT_ATTEMPTS})",
        "retry_mode": "botocore retry mode: standard (default) or adaptive",
    },
)
@clean_errors
def publish(
    c: Any,
    gdal: str,
    python: str | None = None,
    regions: str = "all",
    recipe: str = "geo",
    target: str | None = None,
    arch: str = "x86_64",
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
    license: str = publishing.DEFAULT_LICENSE,
    runtimes: str | None = None,
    max_attempts: int = 0,
    retry_mode: str | None = None,
) -> None:
    """Publish the layer zip to every region that lacks it; idempotent, parallel, resumable."""
    layer_spec = publishing.layer_spec(
        gdal,
        python,
        recipe,
        target=target,
        arch=arch,
        zip_path=zip_,
        description=description,
        license=license,
        runtimes=[r for r in (runtimes or "").replace(" ", ",").split(",") if r],
    )
    publishing.publish(
        layer_spec,
        publishing.resolve_regions(regions),
        access=publishing.Access.parse(public=public, org_id=org_id, accounts=account or []),
        manifest=manifest,
        settings=_aws_settings(endpoint_url, jobs, max_attempts, retry_mode),
        dry_run=dry_run,
        keep_upload=keep_upload,
        bucket=bucket or publishing.DEFAULT_BUCKET,
    )


@task(help={**_SCOPE_HELP, **_AWS_HELP})
@clean_errors
def layers_list(
    c: Any,
    gdal: str | None = None,
    python: str | None = None,
    recipe: str = "geo",
    arch: str = "x86_64",
    name: str | None = None,
    regions: str = "all",
    endpoint_url: str | None = None,
    jobs: int = publishing.DEFAULT_JOBS,
) -> None:
    """Table of region -> latest version and ARN of our layers (reads only)."""
    publishing.list_layers(
        publishing.Scope.of(gdal, python, recipe, arch, prefix=name),
        publishing.resolve_regions(regions),
        settings=_aws_settings(endpoint_url, jobs),
    )


@task(
    help={
        **_SCOPE_HELP,
        **_AWS_HELP,
        "keep": "newest versions to keep in each region (default 3, at least 1)",
        "yes": "delete for real (without it: a dry run that lists what would go)",
        "manifest": "versions recorded there are kept too (default layers.json)",
    }
)
@clean_errors
def layers_prune(
    c: Any,
    keep: int = 3,
    yes: bool = False,
    gdal: str | None = None,
    python: str | None = None,
    recipe: str = "geo",
    arch: str = "x86_64",
    name: str | None = None,
    regions: str = "all",
    manifest: str | None = None,
    endpoint_url: str | None = None,
    jobs: int = publishing.DEFAULT_JOBS,
) -> None:
    """Delete layer versions older than the newest --keep in each region; dry run unless --yes."""
    publishing.prune(
        publishing.Scope.of(gdal, python, recipe, arch, prefix=name),
        publishing.resolve_regions(regions),
        keep=keep,
        yes=yes,
        manifest=manifest,
        settings=_aws_settings(endpoint_url, jobs),
    )


@task(
    help={
        **_LAYER_HELP,
        "repository": "local image repository (default $GDAL_LAMBDA_REPOSITORY or gdal-lambda)",
        "registry": "<host>/<namespace>, e.g. ghcr.io/acme (or $GDAL_LAMBDA_REGISTRY)",
        "recipe": "layer recipe (default geo)",
    }
)
@clean_errors
def push(
    c: Any,
    gdal: str,
    python: str | None = None,
    registry: str | None = None,
    recipe: str = "geo",
    target: str | None = None,
    repository: str | None = None,
) -> None:
    """Tag and push the gdal, python and layer images to a registry (docker login first)."""
    pushing.push_images(
        gdal, python, registry=registry, recipe=recipe, target=target, repo=repository
    )


# <<< publish tasks


@task(
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
    matrix = versions.load_matrix()
    overlays = locks.known_overlays() + [
        versions.load_matrix(overlay=path) for path in overlay or []
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
ns.add_task(run_task)
ns.add_task(drivers)
ns.add_task(lock)
# >>> publish collection
layers = Collection("layers")
layers.add_task(layers_list, name="list")
layers.add_task(layers_prune, name="prune")
ns.add_collection(layers)
ns.add_task(publish)
ns.add_task(push)
# <<< publish collection
