"""Layer recipes and the recipes that extend one (gdal_lambda.recipes): what a recipe folder
must hold, which Dockerfile it is built with, and which locked entries its build installs."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import ROOT

from gdal_lambda import locks, recipes
from gdal_lambda.errors import GdalLambdaError

HASH = "--hash=sha256:"


def _recipe(layers: Path, name: str, requirements: str, *, extends: str | None = None) -> Path:
    folder = layers / name
    folder.mkdir(parents=True)
    (folder / "requirements.txt").write_text(requirements)
    if extends is None:
        (folder / "Dockerfile").write_text("FROM scratch\n")
    else:
        (folder / "recipe.toml").write_text(f'extends = "{extends}"\n')
    return folder


def test_the_shipped_geopandas_recipe_extends_geo_and_shares_its_dockerfile() -> None:
    recipe = recipes.load("geopandas")
    assert [r.name for r in recipe.chain()] == ["geo", "geopandas"]
    assert recipe.dockerfile == ROOT / "layers/geo/Dockerfile"
    assert not (ROOT / "layers/geopandas/Dockerfile").exists()


def test_a_recipe_without_requirements_is_refused(tmp_path: Path) -> None:
    (tmp_path / "layers" / "empty").mkdir(parents=True)
    (tmp_path / "layers" / "empty" / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(GdalLambdaError, match="has no requirements.txt"):
        recipes.load("empty", tmp_path)
    with pytest.raises(GdalLambdaError, match="unknown layer recipe 'nope': recipes are empty"):
        recipes.load("nope", tmp_path)


def test_a_recipe_needs_a_dockerfile_or_a_base(tmp_path: Path) -> None:
    folder = _recipe(tmp_path / "layers", "bare", "x==1\n")
    (folder / "Dockerfile").unlink()
    with pytest.raises(GdalLambdaError, match=r"has no Dockerfile: add one, or extend a recipe"):
        recipes.load("bare", tmp_path)


def test_an_extending_recipe_must_include_its_base_pins(tmp_path: Path) -> None:
    layers = tmp_path / "layers"
    _recipe(layers, "base", "a==1\n")
    _recipe(layers, "more", "b==1\n", extends="base")
    with pytest.raises(GdalLambdaError, match=r"add the line `-r \.\./base/requirements\.txt`"):
        recipes.load("more", tmp_path)


def test_extends_cycles_and_unknown_bases_are_refused(tmp_path: Path) -> None:
    layers = tmp_path / "layers"
    _recipe(layers, "a", "-r ../b/requirements.txt\n", extends="b")
    _recipe(layers, "b", "-r ../a/requirements.txt\n", extends="a")
    with pytest.raises(GdalLambdaError, match=r"extends itself through a -> b -> a"):
        recipes.load("a", tmp_path)
    _recipe(layers, "c", "-r ../zz/requirements.txt\n", extends="zz")
    with pytest.raises(GdalLambdaError, match="unknown layer recipe 'zz'"):
        recipes.load("c", tmp_path)
    (layers / "c" / "recipe.toml").write_text("extend = 'a'\n")
    with pytest.raises(GdalLambdaError, match="unknown key"):
        recipes.load("c", tmp_path)


def test_a_base_pin_change_makes_the_extending_lock_stale(tmp_path: Path) -> None:
    layers = tmp_path / "layers"
    base = _recipe(layers, "base", "a==1\n")
    more = _recipe(layers, "more", "-r ../base/requirements.txt\nb==1\n", extends="base")
    before = locks.input_sha(more / "requirements.txt")
    (base / "requirements.txt").write_text("a==2\n")
    assert locks.input_sha(more / "requirements.txt") != before
    # a file that includes nothing keeps the plain sha256 every existing lock records
    plain = locks.input_sha(base / "requirements.txt")
    assert plain == locks._sha((base / "requirements.txt").read_bytes())


def _lock(req: Path, body: str) -> None:
    spec = locks.LockSpec(req, "3.13", "x86_64-manylinux_2_31")
    spec.path.parent.mkdir(parents=True, exist_ok=True)
    spec.path.write_text(locks.render(spec, body))


def _locked_pair(tmp_path: Path, more_pin_of_a: str) -> tuple[Path, Path, Path]:
    """A base recipe locking a==1 and one extending it locking ``a==<more_pin_of_a>`` and b==1:
    (the base's requirements, the extending one's, an empty context folder)."""
    layers = tmp_path / "layers"
    base = _recipe(layers, "base", "a==1\n")
    more = _recipe(layers, "more", "-r ../base/requirements.txt\nb==1\n", extends="base")
    _lock(base / "requirements.txt", f"a==1 \\\n    {HASH}{'1' * 64}\n")
    _lock(
        more / "requirements.txt",
        f"a=={more_pin_of_a} \\\n    {HASH}{'1' * 64}\nb==1 \\\n    {HASH}{'2' * 64}\n",
    )
    out = tmp_path / "ctx"
    out.mkdir()
    return base / "requirements.txt", more / "requirements.txt", out


def test_the_extending_build_installs_only_what_its_base_lacks(tmp_path: Path) -> None:
    base, more, out = _locked_pair(tmp_path, "1")
    locks.layer_context(more, "3.13", out, base=base)
    text = (out / "requirements.lock").read_text()
    assert "b==1" in text and "a==1" not in text and "1" * 64 not in text


def test_an_extending_lock_that_repins_a_base_entry_is_refused(tmp_path: Path) -> None:
    base, more, out = _locked_pair(tmp_path, "2")
    with pytest.raises(
        GdalLambdaError, match=r"pins a 2 but the layer it extends has 1.*invoke lock"
    ):
        locks.layer_context(more, "3.13", out, base=base)
