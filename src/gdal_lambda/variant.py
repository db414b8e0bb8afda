"""One build variant, resolved once: GDAL line, target, Python, recipe, architecture, repository.

``tasks.py`` resolves a :class:`Variant` from its options and the environment, once, and passes
it down; no module below reads ``GDAL_LAMBDA_TARGET``, ``GDAL_LAMBDA_PYTHON``, ``GDAL_LAMBDA_ARCH``,
``GDAL_LAMBDA_REPOSITORY`` or ``GDAL_LAMBDA_CACHE_FROM`` itself.

    variant = Variant.resolve(load_matrix(env=os.environ), line="3.13", env=os.environ)
    variant.gdal_tag        # gdal-lambda:gdal3.13           (debian11, the default target)
    variant.layer_tag       # gdal-lambda:gdal3.13-py3.13-geo
    variant.layer_zip()     # dist/gdal3.13-py3.13-geo.zip
    # --arch arm64: gdal-lambda:gdal3.13-arm64, dist/gdal3.13-py3.13-geo-arm64.zip, and every build
    # and container at variant.platform (linux/arm64)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from . import naming
from .errors import GdalLambdaError
from .versions import DEFAULT_ARCH, Architecture, Line, Matrix, Target

DEFAULT_REPOSITORY = "gdal-lambda"
DEFAULT_RECIPE = "geo"
ENV_TARGET = "GDAL_LAMBDA_TARGET"
ENV_PYTHON = "GDAL_LAMBDA_PYTHON"
ENV_ARCH = "GDAL_LAMBDA_ARCH"
ENV_REPOSITORY = "GDAL_LAMBDA_REPOSITORY"
ENV_CACHE_FROM = "GDAL_LAMBDA_CACHE_FROM"
ENV_STANDIN_VIA = "GDAL_LAMBDA_STANDIN_VIA"


def resolve_architecture(matrix: Matrix, arch: str | None, env: Mapping[str, str]) -> Architecture:
    """``arch``, else ``$GDAL_LAMBDA_ARCH``, else x86_64; checked against the matrix. For the
    tasks that need an architecture but no line (build.standin) as much as for a Variant."""
    return matrix.architecture(arch if arch is not None else env.get(ENV_ARCH) or DEFAULT_ARCH)


def resolve_cache_from(env: Mapping[str, str]) -> bool:
    """``$GDAL_LAMBDA_CACHE_FROM``: 1 makes every build take its cache from the images under its
    own tags (restored with ``docker load``: the release workflow); 0 or unset, Docker's local
    cache only. Anything else is an error naming the two values."""
    value = env.get(ENV_CACHE_FROM, "").strip()
    if value not in ("", "0", "1"):
        raise GdalLambdaError(
            f"{ENV_CACHE_FROM}={value!r} is not understood: set it to 1 (reuse the layers of "
            "images loaded with `docker load`) or 0 (Docker's local cache only)"
        )
    return value == "1"


@dataclass(frozen=True)
class Variant:
    """Everything that names one image, zip or layer. Built by :meth:`resolve`, never mutated."""

    matrix: Matrix
    line: Line
    target: Target
    python: str
    recipe: str = DEFAULT_RECIPE
    arch: str = DEFAULT_ARCH
    repository: str = DEFAULT_REPOSITORY
    # Builds name this variant's own tags in cache_from (images restored with `docker load`).
    cache_from: bool = False

    @classmethod
    def resolve(
        cls,
        matrix: Matrix,
        *,
        line: str,
        env: Mapping[str, str],
        target: str | None = None,
        python: str | None = None,
        recipe: str | None = None,
        arch: str | None = None,
        repository: str | None = None,
    ) -> Variant:
        """Check every part against the matrix; an explicit option beats the environment.

        ``python`` None picks the target's newest Python. Raises GdalLambdaError on the first
        unknown part, naming the known ones.
        """
        picked_line = matrix.line(line)
        target_name = target if target is not None else env.get(ENV_TARGET) or None
        picked_target = matrix.target(target_name)
        python = python if python is not None else env.get(ENV_PYTHON) or None
        arch = resolve_architecture(matrix, arch, env).name
        repo = repository if repository is not None else env.get(ENV_REPOSITORY) or None
        return cls(
            matrix=matrix,
            line=picked_line,
            target=picked_target,
            python=picked_target.check_python(python),
            recipe=recipe if recipe is not None else DEFAULT_RECIPE,
            arch=arch,
            repository=repo if repo is not None else DEFAULT_REPOSITORY,
            cache_from=resolve_cache_from(env),
        )

    # -- names --------------------------------------------------------------------------------

    def stem(self, *, python: bool = True, recipe: bool = True) -> str:
        """``gdal3.13[-py3.13][-geo][-<target>][-arm64]``."""
        return naming.stem(
            self.line.name,
            python=self.python if python else None,
            recipe=self.recipe if recipe else None,
            target=self.named_target,
            arch=self.arch,
        )

    @property
    def named_target(self) -> str | None:
        """The target as names carry it: None for the matrix's default target (no suffix)."""
        return None if self.target.name == self.matrix.default_target else self.target.name

    # -- architecture ---------------------------------------------------------------------------

    @property
    def architecture(self) -> Architecture:
        return self.matrix.architecture(self.arch)

    @property
    def platform(self) -> str:
        """The Docker platform of every build and container of this variant (linux/arm64)."""
        return self.architecture.docker_platform

    @property
    def gdal_base(self) -> str:
        return self.target.gdal_image(self.arch)

    @property
    def python_base(self) -> str:
        return self.target.python_image(self.python, self.arch)

    @property
    def runtime_image(self) -> str:
        return self.target.runtime_image(self.python, self.arch)

    @property
    def ld_library_path(self) -> tuple[str, ...]:
        """Lambda's LD_LIBRARY_PATH for this target and architecture."""
        return self.target.library_path(self.architecture)

    @property
    def gdal_tag(self) -> str:
        return f"{self.repository}:{self.stem(python=False, recipe=False)}"

    @property
    def stages_tag(self) -> str:
        """The GDAL image's last compile stage (the whole native stack and GDAL, with their build
        trees' results): tagged so a release job can save it and the next one reuse every stage."""
        return f"{self.gdal_tag}-stages"

    @property
    def python_tag(self) -> str:
        return f"{self.repository}:{self.stem(recipe=False)}"

    @property
    def layer_tag(self) -> str:
        return f"{self.repository}:{self.stem()}"

    @property
    def standin_bases(self) -> tuple[str, ...]:
        """A stand-in target's GDAL base image (none for a registry target, pulled by pinned
        tags). A job that restores its images restores these too: remade stand-ins would be new
        images, and nothing built on the old ones would match in the cache."""
        return (self.gdal_base,) if self.target.is_standin else ()

    @property
    def standin_python_bases(self) -> tuple[str, ...]:
        """The stand-in this variant's Python and layer images are built FROM, where it is not
        the GDAL base (one per Python: the floor's CPython in /var/lang)."""
        if not self.target.is_standin:
            return ()
        bases = dict.fromkeys((self.python_base, self.runtime_image))
        return tuple(base for base in bases if base != self.gdal_base)

    def layer_zip(self, dist: Path | None = None) -> Path:
        return naming.layer_zip(
            self.line.name, self.python, self.recipe, self.named_target, dist, arch=self.arch
        )

    @property
    def layer_name(self) -> str:
        """The Lambda layer name: ``gdal313-py313-geo`` (+ ``-arm64`` off x86_64)."""
        return naming.layer_name(self.line.name, self.python, self.recipe, self.arch)
