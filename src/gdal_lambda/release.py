"""The release matrix: every (GDAL line, Python, architecture) a release builds.

The release publishes what CI proves: the default target's entries (the debian11 floor). The
targets of ``[release] checked_targets`` (al2023) are built and checked as jobs of their own,
their result reported, their zips never published (``publish`` false).

One entry is one job, and one job builds every layer recipe (``layers/<recipe>/``, geo first:
noxfile.py builds the recipes that extend geo on geo's image in the same session), so an entry
lists every recipe with its zip and Lambda layer name; its artifact carries all its zips, its
Python cache all its layer images, and the publish job publishes each of them.

``invoke matrix --json`` prints it and ``.github/workflows/release.yml`` fans its jobs out from
it, so the matrix is written once (matrix.toml, layers/) and never a second time in the
workflow. Every name in an entry comes from :class:`~gdal_lambda.variant.Variant`; the runner
labels are data (matrix.toml ``[release.runners]``).

    entries = release_matrix(load_matrix(env=os.environ), env=os.environ)
    entries[0].session              # test-3.10 (x86_64) / test-3.10-arm64
    entries[0].recipes[1].zip       # dist/gdal3.10-py3.12-geopandas.zip
    entries[0].artifact             # gdal3.10-py3.12: every recipe's zip
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from packaging.version import Version

from . import recipes as layer_recipes
from .errors import GdalLambdaError
from .variant import DEFAULT_ARCH, Variant
from .versions import Matrix

# Zips are named relative to the checkout: a job uploads and the publish job reads this path.
DIST = Path("dist")


@dataclass(frozen=True)
class RecipeZip:
    """One recipe of an entry: the zip its job writes and the Lambda layer it is published as."""

    recipe: str
    zip: str  # relative to the checkout, e.g. dist/gdal3.13-py3.13-geopandas.zip
    layer: str  # the Lambda layer name `invoke publish --recipe` gives it


@dataclass(frozen=True)
class Entry:
    """One release job: what it builds, the nox session that builds and checks it, where."""

    line: str
    python: str
    arch: str
    target: str
    session: str  # the nox session CI runs for this line and architecture (noxfile.py)
    # Every recipe the job builds, a base before the recipes extending it (geo first).
    recipes: tuple[RecipeZip, ...]
    artifact: str  # the workflow artifact carrying every zip of the entry (unique per entry)
    runner: str  # the GitHub-hosted runner label (matrix.toml [release.runners])
    # Docker images a job saves for the next run to build from (GDAL_LAMBDA_CACHE_FROM=1), in
    # two caches: the line's compile stage and GDAL image, shared by its Pythons on one
    # architecture (and a stand-in target's GDAL base), then this entry's Python image and
    # every recipe's layer image (and its Python's stand-in).
    gdal_cache: str  # the cache key's prefix, e.g. docker-gdal3.13-arm64
    gdal_images: str  # space-separated tags, for `docker save`
    python_cache: str  # e.g. docker-gdal3.13-py3.13-arm64
    python_images: str
    # the release publishes this entry's zips (the default target); false: built and checked only
    publish: bool

    # GitHub expressions cannot loop over `recipes`: what the workflow's fields need, as text.
    @property
    def zips(self) -> str:
        """Every zip, one a line: upload-artifact's multi-line ``path``."""
        return "\n".join(r.zip for r in self.recipes)

    @property
    def layers(self) -> str:
        """Every Lambda layer name, comma-separated: the job's report line."""
        return ", ".join(r.layer for r in self.recipes)

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "zips": self.zips, "layers": self.layers}


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


def release_recipes(recipe: str | None = None) -> list[str]:
    """The recipes a release builds: every one (geo first), or with ``recipe`` only it and the
    recipes it extends (``load(recipe).chain()``: what building it needs). Unknown: an error."""
    found = layer_recipes.load(recipe).chain() if recipe is not None else layer_recipes.every()
    return [r.name for r in found]


def release_matrix(
    matrix: Matrix,
    *,
    env: Mapping[str, str],
    target: str | None = None,
    recipe: str | None = None,
) -> list[Entry]:
    """Every line (oldest first) x every Python of the target x every architecture: the
    release target's (``target``, else the environment's or the default) published, then, for
    the default target, those of every checked target, built and checked only. Each entry
    carries every recipe, or with ``recipe`` that recipe and what it extends."""
    runners = runner_labels(matrix)
    names_of_recipes = release_recipes(recipe)
    first = Variant.resolve(matrix, line=next(iter(matrix.lines)), env=env, target=target)
    names = [first.target.name]
    if first.target.name == matrix.default_target:
        names += list(matrix.checked_targets)
    return [
        _entry(variant, names_of_recipes, runners, publish=name == first.target.name)
        for name in names
        for line in sorted(matrix.lines, key=Version)
        for python in matrix.target(name).pythons
        for arch in matrix.architectures
        for variant in (
            Variant.resolve(matrix, line=line, env=env, target=name, python=python, arch=arch),
        )
    ]


def _entry(
    variant: Variant, recipes: Sequence[str], runners: dict[str, str], *, publish: bool
) -> Entry:
    each = [replace(variant, recipe=name) for name in recipes]
    return Entry(
        line=variant.line.name,
        python=variant.python,
        arch=variant.arch,
        target=variant.target.name,
        session=session_name(variant.line.name, variant.arch),
        recipes=tuple(
            RecipeZip(recipe=v.recipe, zip=v.layer_zip(dist=DIST).as_posix(), layer=v.layer_name)
            for v in each
        ),
        artifact=variant.stem(recipe=False),
        runner=runners[variant.arch],
        gdal_cache=f"docker-{variant.stem(python=False, recipe=False)}",
        gdal_images=" ".join((*variant.standin_bases, variant.stages_tag, variant.gdal_tag)),
        python_cache=f"docker-{variant.stem(recipe=False)}",
        python_images=" ".join(
            (*variant.standin_python_bases, variant.python_tag, *(v.layer_tag for v in each))
        ),
        publish=publish,
    )
