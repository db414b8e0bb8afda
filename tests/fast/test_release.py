"""`invoke matrix`: every (line, Python, arch) a release builds, named by Variant, from the matrix."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from pathlib import Path

from helpers import ROOT, one_error_line
from helpers import invoke as run_invoke

from gdal_lambda.variant import Variant
from gdal_lambda.versions import load_matrix


def invoke(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The tasks as CI runs them, but with the matrix's default target unless ``env`` names one."""
    base = {k: v for k, v in os.environ.items() if k != "GDAL_LAMBDA_TARGET"}
    return run_invoke(*args, env=env, base=base)


def release_entries(*args: str, env: dict[str, str] | None = None) -> list[dict[str, str]]:
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


def test_names_are_the_variants_and_runners_the_matrix_files() -> None:
    matrix = load_matrix(ROOT / "matrix.toml")
    runners = tomllib.loads((ROOT / "matrix.toml").read_text())["release"]["runners"]
    assert set(runners) == set(load_matrix().architectures)
    for e in release_entries():
        v = Variant.resolve(
            matrix, line=e["line"], env={}, python=e["python"], arch=e["arch"], target=e["target"]
        )
        assert e["zip"] == v.layer_zip(dist=Path("dist")).as_posix()
        assert e["layer"] == v.layer_name
        assert e["artifact"] == Path(e["zip"]).stem
        assert e["runner"] == runners[e["arch"]]
        suffix = "" if e["arch"] == "x86_64" else f"-{e['arch']}"
        assert e["session"] == f"test-{e['line']}{suffix}"


def test_native_runner_per_architecture() -> None:
    by_arch = {e["arch"]: e["runner"] for e in release_entries()}
    assert by_arch["arm64"].endswith("-arm"), by_arch
    assert not by_arch["x86_64"].endswith("-arm"), by_arch


def test_layer_names_are_unique() -> None:
    layers = [(e["layer"], e["target"]) for e in release_entries()]
    assert len(layers) == len(set(layers))


# upload-artifact refuses a second artifact of the same name, and the publish job reads every zip
# from one dist/: each entry needs its own zip (arm64 ones end in -arm64).
def test_zips_and_artifacts_are_unique() -> None:
    entries = release_entries()
    zips = [e["zip"] for e in entries]
    assert len(zips) == len(set(zips)), zips
    assert any(re.search(r"-arm64\.zip$", z) for z in zips)


def test_docker_caches_are_the_variants_tags_shared_by_a_lines_pythons() -> None:
    matrix = load_matrix(ROOT / "matrix.toml")
    entries = release_entries("--target", "debian13") + release_entries()
    for e in entries:
        v = Variant.resolve(
            matrix, line=e["line"], env={}, python=e["python"], arch=e["arch"], target=e["target"]
        )
        assert e["gdal_images"].split() == [*v.standin_bases, v.stages_tag, v.gdal_tag]
        assert e["python_images"].split() == [
            *v.standin_python_bases,
            v.python_tag,
            v.layer_tag,
        ]
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


def test_human_table_lists_every_entry() -> None:
    result = invoke("matrix")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if re.match(r"^\s*\d+\.\d+\s", line)]
    entries = release_entries()
    assert len(rows) == len(entries)
    for row, e in zip(rows, entries, strict=True):
        for value in (e["line"], e["python"], e["arch"], e["session"], e["zip"], e["runner"]):
            assert value in row.split(), (value, row)


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
