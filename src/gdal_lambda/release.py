"""The release matrix: every (GDAL line, Python, architecture) a release builds.

The release publishes what CI proves: the default target's entries (the debian11 floor). The
targets of ``[release] checked_targets`` (al2023) are built and checked as jobs of their own,
their result reported, their zips never published (``publish`` false).

``invoke matrix --json`` prints it and ``.github/workflows/release.yml`` fans its jobs out from
it, so the matrix is written once (matrix.toml) and never a second time in the workflow. Every
name in an entry comes from :class:`~gdal_lambda.variant.Variant`; the runner labels are data
(matrix.toml ``[release.runners]``).

    entries = release_matrix(load_matrix(env=os.environ), env=os.environ)
    entries[0].session      # test-3.10 (x86_64) / test-3.10-arm64
    entries[0].zip          # dist/gdal3.10-py3.12-geo.zip
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from packaging.version import Version

from .errors import GdalLambdaError
from .variant import DEFAULT_ARCH, Variant
from .versions import Matrix

# Zips are named relative to the checkout: a job uploads and the publish job reads this path.
DIST = Path("dist")


@dataclass(frozen=True)
class Entry:
    """One release job: what it builds, the nox session that builds and checks it, where."""

    line: str
    python: str
    arch: str
    target: str
    session: str  # the nox session CI runs for this line and architecture (noxfile.py)
    zip: str  # relative to the checkout, e.g. dist/gdal3.13-py3.13-geo.zip
    layer: str  # the Lambda layer name `invoke publish` gives it
    artifact: str  # the workflow artifact carrying the zip (unique per entry)
    runner: str  # the GitHub-hosted runner label (matrix.toml [release.runners])
    # Docker images a job saves for the next run to build from (GDAL_LAMBDA_CACHE_FROM=1), in
    # two caches: the line's compile stage and GDAL image, shared by its Pythons on one
    # architecture (and a stand-in target's GDAL base), then this entry's Python and layer
    # images (and its Python's stand-in).
    gdal_cache: str  # the cache key's prefix, e.g. docker-gdal3.13-arm64
    gdal_images: str  # space-separated tags, for `docker save`
    python_cache: str  # e.g. docker-gdal3.13-py3.13-geo-arm64
    python_images: str
    # the release publishes this entry's zip (the default target); false: built and checked only
    publish: bool

    def as_dict(self) -> dict[str, str | bool]:
        return asdict(self)


def session_name(line: str, arch: str) -> str:
    """The nox image session of a line: ``test-3.13``, and ``test-3.13-arm64`` off x86_64."""
    return f"test-{line}" if arch == DEFAULT_ARCH else f"test-{line}-{arch}"


def runner_labels(matrix: Matrix) -> dict[str, str]:
    """matrix.toml's ``[release.runners]``: a GitHub runner label for every architecture."""
    try:
        data = tomllib.loads(matrix.path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise GdalLambdaError(f"{matrix.path}: cannot read it ({exc})") from None
    runners = data.get("release", {}).get("runners", {})
    if not isinstance(runners, dict):
        runners = {}
    architectures = tuple(matrix.architectures)
    missing = [arch for arch in architectures if not isinstance(runners.get(arch), str)]
    if missing or not all(isinstance(v, str) and v.strip() for v in runners.values()):
        raise GdalLambdaError(
            f"{matrix.path}: [release.runners] needs a runner label for every architecture "
            f"({', '.join(architectures)}; missing: {', '.join(missing) or 'none'}), "
            'e.g. arm64 = "ubuntu-24.04-arm"; fix the matrix file'
        )
    unknown = sorted(set(runners) - set(architectures))
    if unknown:
        raise GdalLambdaError(
            f"{matrix.path}: [release.runners] names unknown architecture(s) "
            f"{', '.join(unknown)}: known ones are {', '.join(architectures)}"
        )
    return {arch: runners[arch] for arch in architectures}


def release_matrix(
    matrix: Matrix,
    *,
    env: Mapping[str, str],
    target: str | None = None,
    recipe: str | None = None,
) -> list[Entry]:
    """Every line (oldest first) x every Python of the target x every architecture: the
    release target's (``target``, else the environment's or the default) published, then, for
    the default target, those of every checked target, built and checked only."""
    runners = runner_labels(matrix)
    first = Variant.resolve(
        matrix, line=next(iter(matrix.lines)), env=env, target=target, recipe=recipe
    )
    names = [first.target.name]
    if first.target.name == matrix.default_target:
        names += list(matrix.checked_targets)
    return [
        _entry(variant, runners, publish=name == first.target.name)
        for name in names
        for line in sorted(matrix.lines, key=Version)
        for python in matrix.target(name).pythons
        for arch in matrix.architectures
        for variant in (
            Variant.resolve(
                matrix,
                line=line,
                env=env,
                target=name,
                python=python,
                recipe=recipe,
                arch=arch,
            ),
        )
    ]


def _entry(variant: Variant, runners: dict[str, str], *, publish: bool) -> Entry:
    zip_path = variant.layer_zip(dist=DIST)
    return Entry(
        line=variant.line.name,
        python=variant.python,
        arch=variant.arch,
        target=variant.target.name,
        session=session_name(variant.line.name, variant.arch),
        zip=zip_path.as_posix(),
        layer=variant.layer_name,
        artifact=zip_path.stem,
        runner=runners[variant.arch],
        gdal_cache=f"docker-{variant.stem(python=False, recipe=False)}",
        gdal_images=" ".join((*variant.standin_bases, variant.stages_tag, variant.gdal_tag)),
        python_cache=f"docker-{variant.stem()}",
        python_images=" ".join(
            (*variant.standin_python_bases, variant.python_tag, variant.layer_tag)
        ),
        publish=publish,
    )
