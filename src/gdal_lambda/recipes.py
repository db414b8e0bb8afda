"""Layer recipes: ``layers/<name>/``, and which recipe one builds on.

A recipe folder holds its pinned ``requirements.txt`` and the locks made from it
(``locks/py<python>.txt``). A recipe either has a ``Dockerfile`` of its own, or extends
another recipe: its ``recipe.toml`` says ``extends = "<base>"``, its requirements start with
``-r ../<base>/requirements.txt``, and it is built FROM the base's layer image with the base's
Dockerfile, installing only the distributions the base lacks (README "Adding a recipe").

    load("geopandas").chain()          # [Recipe('geo'), Recipe('geopandas')]
    load("geopandas").dockerfile       # layers/geo/Dockerfile
    [r.name for r in every()]          # ['geo', 'geopandas']: what a release builds, in order
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from .errors import GdalLambdaError
from .project import project_root
from .variant import DEFAULT_RECIPE

CONFIG = "recipe.toml"
REQUIREMENTS = "requirements.txt"


@dataclass(frozen=True)
class Recipe:
    name: str
    folder: Path
    extends: Recipe | None

    @property
    def requirements(self) -> Path:
        return self.folder / REQUIREMENTS

    @property
    def dockerfile(self) -> Path:
        """Its own Dockerfile, or the one of the recipe it extends."""
        own = self.folder / "Dockerfile"
        if own.is_file() or self.extends is None:
            return own
        return self.extends.dockerfile

    def chain(self) -> list[Recipe]:
        """The recipes this one builds on, the first base first, then itself."""
        return [*(self.extends.chain() if self.extends else []), self]


def load(name: str, root: Path | None = None) -> Recipe:
    """``layers/<name>/``, checked (and what it extends, checked the same way)."""
    return _load(name, (root if root is not None else project_root()) / "layers", ())


def every(root: Path | None = None) -> list[Recipe]:
    """Every recipe, checked: each folder of ``layers/`` with a requirements.txt, in an order
    that builds a recipe after the ones it extends: geo first, then by name, each recipe's
    bases before it (noxfile.py's RECIPES builds them in this order)."""
    layers = (root if root is not None else project_root()) / "layers"
    names = sorted(
        (path.parent.name for path in layers.glob(f"*/{REQUIREMENTS}")),
        key=lambda name: (name != DEFAULT_RECIPE, name),
    )
    ordered: dict[str, Recipe] = {}
    for name in names:
        for recipe in _load(name, layers, ()).chain():
            ordered.setdefault(recipe.name, recipe)
    return list(ordered.values())


def _load(name: str, layers: Path, seen: tuple[str, ...]) -> Recipe:
    folder = layers / name
    if not folder.is_dir():
        known = sorted(p.name for p in layers.iterdir() if p.is_dir()) if layers.is_dir() else []
        raise GdalLambdaError(
            f"unknown layer recipe {name!r}: recipes are {', '.join(known) or 'none'}"
        )
    if not (folder / REQUIREMENTS).is_file():
        raise GdalLambdaError(
            f"layer recipe {folder} has no {REQUIREMENTS}: add its pinned packages"
        )
    base = _extends(folder)
    if base is None:
        if not (folder / "Dockerfile").is_file():
            raise GdalLambdaError(
                f"layer recipe {folder} has no Dockerfile: add one, or extend a recipe "
                f'({CONFIG}: extends = "geo")'
            )
        return Recipe(name, folder, None)
    if base in (*seen, name):
        raise GdalLambdaError(
            f"layer recipe {name!r} extends itself through {' -> '.join((*seen, name, base))}: "
            f"fix {folder / CONFIG}"
        )
    include = f"-r ../{base}/{REQUIREMENTS}"
    lines = [line.strip() for line in (folder / REQUIREMENTS).read_text().splitlines()]
    if include not in lines:
        raise GdalLambdaError(
            f"{folder / REQUIREMENTS} must include its base's pins: add the line `{include}`"
        )
    return Recipe(name, folder, _load(base, layers, (*seen, name)))


def _extends(folder: Path) -> str | None:
    path = folder / CONFIG
    if not path.is_file():
        return None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise GdalLambdaError(f"{path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"extends"})
    if unknown:
        raise GdalLambdaError(f"{path}: unknown key(s) {', '.join(unknown)}: only `extends`")
    base = data.get("extends")
    if not isinstance(base, str) or not base:
        raise GdalLambdaError(f'{path}: `extends` must name a recipe (extends = "geo")')
    return base
