"""`invoke matrix`: every (line, Python, arch) a release builds, named by Variant, from the matrix,
each entry with every layer recipe its job builds, uploads, caches and publishes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from helpers import ROOT, one_error_line
from helpers import invoke as run_invoke

from gdal_lambda import recipes, release
from gdal_lambda.variant import Variant
from gdal_lambda.versions import load_matrix


def invoke(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The tasks as CI runs them, but with the matrix's default target unless ``env`` names one."""
    base = {k: v for k, v in os.environ.items() if k != "GDAL_LAMBDA_TARGET"}
    return run_invoke(*args, env=env, base=base)


def release_entries(*args: str, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    result = invoke("matrix", "--json", *args, env=env)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 1, "one line, for $GITHUB_OUTPUT"
    data = json.loads(result.stdout)
    assert set(data) == {"include"}
    return data["include"]


def test_every_line_python_and_arch_of_the_default_target_then_the_checked_ones() -> None:
    matrix = load_matrix(ROOT / "matrix.toml")
    entries = release_entries()
    for target, publish in [
        (matrix.default_target, True),
        *((name, False) for name in matrix.checked_targets),
    ]:
        mine = [e for e in entries if e["target"] == target]
        assert {e["publish"] for e in mine} == {publish}, target
        got = [(e["line"], e["python"], e["arch"]) for e in mine]
        want = [
            (line, py, arch)
            for line in matrix.lines
            for py in matrix.target(target).pythons
            for arch in matrix.architectures
        ]
        assert sorted(got) == sorted(want)
        assert len(got) == len(set(got))
    assert {e["target"] for e in entries} == {matrix.default_target, *matrix.checked_targets}
    assert matrix.checked_targets == ("al2023",)


def test_the_release_publishes_the_target_and_sessions_ci_runs() -> None:
    """What users deploy is what .ci/run proves: every published entry is of the target CI
    builds on, and CI runs that line's session (for x86_64; arm64's is README "Architectures")."""
    ci = (ROOT / ".ci" / "run").read_text()
    built_on = re.search(r"^export GDAL_LAMBDA_TARGET=(\S+)$", ci, re.M)
    assert built_on is not None
    sessions = set(re.findall(r"\btest-[0-9.]+\b", ci.split("nox -s lint tests", 1)[1]))
    published = [e for e in release_entries() if e["publish"]]
    assert published and {e["target"] for e in published} == {built_on[1]}
    assert built_on[1] == load_matrix(ROOT / "matrix.toml").default_target
    ran = {e["session"] for e in published if e["arch"] == "x86_64"} & sessions
    assert ran, (sessions, published)


def _variant(e: dict[str, Any], recipe: str | None = None) -> Variant:
    return Variant.resolve(
        load_matrix(ROOT / "matrix.toml"),
        line=e["line"],
        env={},
        python=e["python"],
        arch=e["arch"],
        target=e["target"],
        recipe=recipe,
    )


def test_names_are_the_variants_and_runners_the_matrix_files() -> None:
    runners = tomllib.loads((ROOT / "matrix.toml").read_text())["release"]["runners"]
    assert set(runners) == set(load_matrix().architectures)
    every = [r.name for r in recipes.every()]
    assert every[0] == "geo" and "geopandas" in every
    for e in release_entries():
        # every recipe, in build order, named by the Variant of that recipe
        assert [r["recipe"] for r in e["recipes"]] == every
        for r in e["recipes"]:
            v = _variant(e, r["recipe"])
            assert set(r) == {"recipe", "zip", "layer"}
            assert r["zip"] == v.layer_zip(dist=Path("dist")).as_posix()
            assert r["layer"] == v.layer_name
        # the strings the workflow reads, made from the same list
        assert e["zips"].split("\n") == [r["zip"] for r in e["recipes"]]
        assert e["layers"].split(", ") == [r["layer"] for r in e["recipes"]]
        # one artifact for the job: its name carries no recipe
        assert e["artifact"] == _variant(e).stem(recipe=False)
        assert e["runner"] == runners[e["arch"]]
        suffix = "" if e["arch"] == "x86_64" else f"-{e['arch']}"
        assert e["session"] == f"test-{e['line']}{suffix}"


def test_native_runner_per_architecture() -> None:
    by_arch = {e["arch"]: e["runner"] for e in release_entries()}
    assert by_arch["arm64"].endswith("-arm"), by_arch
    assert not by_arch["x86_64"].endswith("-arm"), by_arch


def test_layer_names_are_unique() -> None:
    layers = [(r["layer"], e["target"]) for e in release_entries() for r in e["recipes"]]
    assert len(layers) == len(set(layers))


# upload-artifact refuses a second artifact of the same name, and the publish job reads every zip
# from one dist/: each recipe of each entry needs its own zip (arm64 ones end in -arm64).
def test_zips_and_artifacts_are_unique() -> None:
    entries = release_entries()
    zips = [r["zip"] for e in entries for r in e["recipes"]]
    assert len(zips) == len(set(zips)), zips
    assert any(re.search(r"-arm64\.zip$", z) for z in zips)
    assert any(re.search(r"-geopandas(-arm64)?\.zip$", z) for z in zips)
    artifacts = [e["artifact"] for e in entries]
    assert len(artifacts) == len(set(artifacts)), artifacts


def test_docker_caches_are_the_variants_tags_shared_by_a_lines_pythons() -> None:
    entries = release_entries("--target", "debian13") + release_entries()
    for e in entries:
        v = _variant(e)
        assert e["gdal_images"].split() == [*v.standin_bases, v.stages_tag, v.gdal_tag]
        # every recipe's layer image: the next run rebuilds none of them (geopandas's FROM geo's)
        assert e["python_images"].split() == [
            *v.standin_python_bases,
            v.python_tag,
            *(replace(v, recipe=r["recipe"]).layer_tag for r in e["recipes"]),
        ]
        assert replace(v, recipe="geopandas").layer_tag in e["python_images"].split()
    # one GDAL cache per (target, line, arch), one Python cache per entry, all distinct; the
    # workflow ends each with "/" before the hash (test_release_workflow), so with no "/" in
    # them no restore-keys prefix can match another entry's images (docker-gdal3.10 is a prefix
    # of docker-gdal3.10-arm64; "docker-gdal3.10/" is not of "docker-gdal3.10-arm64/")
    gdal = {(e["target"], e["line"], e["arch"]): e["gdal_cache"] for e in entries}
    python = [e["python_cache"] for e in entries]
    keys = [*gdal.values(), *python]
    assert len(set(keys)) == len(keys)
    assert not any("/" in key or "," in key for key in keys)
    floor = next(e for e in entries if e["target"] == "debian11" and e["arch"] == "arm64")
    assert floor["gdal_images"].split()[0] == "gdal-lambda-standin:debian11-arm64"
    python = floor["python"]
    assert floor["python_images"].split()[0] == f"gdal-lambda-standin:debian11-py{python}-arm64"


def test_another_target_and_the_environment() -> None:
    matrix = load_matrix(ROOT / "matrix.toml")
    entries = release_entries("--target", "debian13")
    assert {e["target"] for e in entries} == {"debian13"}
    assert {e["python"] for e in entries} == set(matrix.target("debian13").pythons)
    # like every task: an option, else $GDAL_LAMBDA_TARGET, else the matrix's default
    assert release_entries(env={"GDAL_LAMBDA_TARGET": "debian13"}) == entries


def _table_rows(*args: str) -> list[list[str]]:
    """`invoke matrix`'s rows: an entry's first line and the lines below it (one per recipe)."""
    result = invoke("matrix", *args)
    assert result.returncode == 0, result.stderr
    rows: list[list[str]] = []
    for line in result.stdout.splitlines()[1:]:
        if re.match(r"^\s*\d+\.\d+\s", line):
            rows.append([line])
        else:
            assert rows and line.strip(), line
            rows[-1].append(line)
    return rows


def test_human_table_lists_every_entry_and_its_recipes() -> None:
    rows = _table_rows()
    entries = release_entries()
    assert len(rows) == len(entries)
    for row, e in zip(rows, entries, strict=True):
        for value in (e["line"], e["python"], e["arch"], e["session"], e["runner"]):
            assert value in row[0].split(), (value, row)
        # a line per recipe: its name, zip and layer name side by side
        assert len(row) == len(e["recipes"]), row
        for line, r in zip(row, e["recipes"], strict=True):
            for value in (r["recipe"], r["zip"], r["layer"]):
                assert value in line.split(), (value, line)


def test_a_recipe_restricts_the_entries_to_it_and_what_it_extends() -> None:
    everything = release_entries()
    for recipe, wanted in (("geo", ["geo"]), ("geopandas", ["geo", "geopandas"])):
        entries = release_entries("--recipe", recipe)
        assert [e["artifact"] for e in entries] == [e["artifact"] for e in everything]
        for e in entries:
            assert [r["recipe"] for r in e["recipes"]] == wanted
            layers = [replace(_variant(e), recipe=r).layer_tag for r in wanted]
            assert e["python_images"].split()[-len(wanted) :] == layers
        assert {len(row) for row in _table_rows("--recipe", recipe)} == {len(wanted)}
    assert len(release_entries("--recipe", "geo")[0]["python_images"].split()) < len(
        everything[0]["python_images"].split()
    )
    line = one_error_line(invoke("matrix", "--json", "--recipe", "nope"))
    assert "unknown layer recipe 'nope'" in line and "geopandas" in line


def test_a_recipe_brings_the_whole_chain_it_builds_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a checkout with a recipe two levels above geo, and another beside geopandas
    shutil.copy(ROOT / "matrix.toml", tmp_path / "matrix.toml")
    (tmp_path / "pyproject.toml").write_text("")
    for name, base in (("geo", None), ("geopandas", "geo"), ("deep", "geopandas"), ("arc", "geo")):
        folder = tmp_path / "layers" / name
        folder.mkdir(parents=True)
        include = f"-r ../{base}/requirements.txt\n" if base else ""
        (folder / "requirements.txt").write_text(include + f"{name}-pkg==1\n")
        if base:
            (folder / "recipe.toml").write_text(f'extends = "{base}"\n')
        else:
            (folder / "Dockerfile").write_text("FROM scratch\n")
    monkeypatch.setenv("GDAL_LAMBDA_ROOT", str(tmp_path))
    matrix = load_matrix(ROOT / "matrix.toml")

    def names(recipe: str | None) -> list[str]:
        entries = release.release_matrix(matrix, env={}, recipe=recipe)
        assert entries
        found = {tuple(r.recipe for r in e.recipes) for e in entries}
        assert len(found) == 1, found
        return list(found.pop())

    assert names("deep") == ["geo", "geopandas", "deep"]
    assert names("arc") == ["geo", "arc"]
    # every recipe, each after the ones it is built on
    assert names(None) == ["geo", "arc", "geopandas", "deep"]


def test_unknown_target_is_one_line() -> None:
    line = one_error_line(invoke("matrix", "--json", "--target", "s390x"))
    assert "unknown target 's390x'" in line and "al2023" in line


def _matrix_with(tmp_path: Path, runners: str) -> dict[str, str]:
    text = (ROOT / "matrix.toml").read_text()
    text, count = re.subn(r"\[release\.runners\]\n(?:[^\n]+\n)*", runners, text)
    assert count == 1
    path = tmp_path / "matrix.toml"
    path.write_text(text)
    return {"GDAL_LAMBDA_MATRIX": str(path)}


def test_a_missing_runner_label_is_one_line(tmp_path: Path) -> None:
    env = _matrix_with(tmp_path, '[release.runners]\nx86_64 = "ubuntu-24.04"\n')
    line = one_error_line(invoke("matrix", "--json", env=env))
    assert "[release.runners]" in line and "missing: arm64" in line


def test_an_unknown_architecture_label_is_one_line(tmp_path: Path) -> None:
    env = _matrix_with(
        tmp_path,
        '[release.runners]\nx86_64 = "a"\narm64 = "b"\ns390x = "c"\n',
    )
    line = one_error_line(invoke("matrix", "--json", env=env))
    assert "s390x" in line and "x86_64, arm64" in line
