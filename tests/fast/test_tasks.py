"""The invoke tasks as a user runs them: argument errors are one line on stderr and exit 1."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import ROOT, invoke, one_error_line, shipped_matrix


def test_task_list_has_the_documented_tasks() -> None:
    out = invoke("--list").stdout
    for name in ("build.gdal", "build.standin", "fetch", "drivers"):
        assert name in out


def test_unknown_version_lists_known_lines() -> None:
    line = one_error_line(invoke("build.gdal", "--version", "3.99"))
    assert "unknown GDAL line '3.99'" in line and "3.10, 3.13" in line


@pytest.mark.parametrize("old", ["2.4", "3.0"])
def test_a_retired_line_says_why_and_which_are_built(old: str) -> None:
    line = one_error_line(invoke("build.gdal", "--version", old))
    assert line == (
        f"error: GDAL line {old} is retired: GDAL < 3.5 has no CMake build, and current "
        "rasterio needs GDAL >= 3.5; the lines built are 3.10, 3.13"
    )


TASKS = ["build.gdal", "build.python", "build.layer", "build.standin", "fetch", "layer"]
TASKS += ["package", "run", "drivers", "push"]


@pytest.mark.parametrize("name", TASKS)
def test_help_prints_the_tasks_help(name: str) -> None:
    result = invoke(name, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Usage: inv[oke] [--core-opts] {name}"), result.stdout
    assert "Options:" in result.stdout and "error" not in result.stderr


def test_a_missing_required_option_is_named() -> None:
    assert one_error_line(invoke("build.gdal")) == (
        "error: --version is required, e.g. --version 3.13"
    )
    assert "--src is required" in one_error_line(invoke("package", "--gdal", "3.13"))
    # publish took --gdal as a required positional: invoke's own error, not ours
    for name in ("publish", "push"):
        assert one_error_line(invoke(name)) == "error: --gdal is required, e.g. --gdal 3.13"


def test_every_task_is_made_by_the_one_task_decorator() -> None:
    """No task gets invoke's automatic short flags (`lock` had -c, -o and -i)."""
    spec = importlib.util.spec_from_file_location("gdal_lambda_tasks", ROOT / "tasks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    names = module.ns.task_names
    assert "lock" in names and "layers.list" in names
    automatic = [name for name in names if module.ns[name].auto_shortflags]
    assert automatic == []


def test_no_short_flag_means_two_things() -> None:
    """Outside the publishing tasks, no task has a short flag (-h is always help)."""
    for name in [n for n in TASKS if n != "push"]:
        options = invoke(name, "--help").stdout.split("Options:", 1)[1]
        shorts = [w for w in options.split() if len(w) >= 2 and w[0] == "-" and w[1] != "-"]
        assert shorts == [], (name, shorts)


@pytest.mark.parametrize("kind", ["binary", "directory"])
def test_a_bad_event_file_is_one_line(tmp_path: Path, kind: str) -> None:
    event = tmp_path / "event.json"
    if kind == "binary":
        event.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    else:
        event.mkdir()
    package = tmp_path / "package.zip"
    package.write_bytes(b"")
    line = one_error_line(
        invoke("run", "--package", str(package), "--event", str(event), "--gdal", "3.13")
    )
    expected = "is not text (not UTF-8)" if kind == "binary" else "is a directory"
    assert f"event file {event} {expected}" in line


def test_unknown_target_lists_targets() -> None:
    line = one_error_line(invoke("build.gdal", "--version", "3.13", "--target", "alpine"))
    assert "known targets are al2023, debian11, debian12, debian13" in line


def test_unknown_also_runs_on_target_lists_targets() -> None:
    line = one_error_line(
        invoke(
            "layer", "--gdal", "3.13", "--target", "debian12", "--also-runs-on", "debian13,alpine"
        )
    )
    assert "unknown target 'alpine'" in line and "al2023, debian11, debian12, debian13" in line


def test_docker_not_reachable_says_how_to_start_it(tmp_path: Path) -> None:
    line = one_error_line(
        invoke(
            "build.gdal",
            "--version",
            "3.13",
            "--target",
            "debian13",
            env={"DOCKER_HOST": f"unix://{tmp_path}/no.sock"},
        )
    )
    assert "cannot reach the Docker daemon" in line and "dockerd" in line


def _fetch_with_no_mirror(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`invoke fetch --version 3.10` with every mirror a closed local port, the cache in
    tmp_path/c."""
    matrix = tmp_path / "matrix.toml"
    text = (ROOT / "matrix.toml").read_text()
    text = text.replace("https://", "http://127.0.0.1:9/").replace(
        "http://deb.debian.org", "http://127.0.0.1:9"
    )
    matrix.write_text(text)
    return invoke(
        "fetch",
        "--version",
        "3.10",
        env={"GDAL_LAMBDA_MATRIX": str(matrix), "GDAL_LAMBDA_CACHE": str(tmp_path / "c")},
    )


def test_no_mirror_reachable_is_one_error_listing_attempts(tmp_path: Path) -> None:
    result = _fetch_with_no_mirror(tmp_path)
    assert result.returncode == 1
    assert "error: could not fetch" in result.stderr
    assert result.stderr.count("127.0.0.1:9") == 2  # the two mirrors of the first source
    assert not (tmp_path / "c" / "sources").exists() or not any(
        (tmp_path / "c" / "sources").iterdir()
    )


def test_fetch_needs_a_line() -> None:
    assert "name a line with --version" in one_error_line(invoke("fetch"))


def test_drivers_table_is_generated_from_the_matrix() -> None:
    result = invoke("drivers")
    assert result.returncode == 0
    assert "| ESRI Shapefile |  | yes |" in result.stdout
    assert "| GTiff | yes |  |" in result.stdout


def test_readme_driver_table_is_current(tmp_path: Path) -> None:
    from gdal_lambda import readme, versions

    copy = tmp_path / "README.md"
    shutil.copy(ROOT / "README.md", copy)
    readme.write_drivers_table(versions.load_matrix(), copy)
    assert copy.read_text() == (ROOT / "README.md").read_text(), "run `invoke drivers --write`"


def test_cached_tarball_with_wrong_digest_in_matrix_fails_build_before_docker(
    tmp_path: Path,
) -> None:
    """A tampered cache with no reachable mirror: clear error, bad file gone."""
    cache = tmp_path / "c" / "sources"
    cache.mkdir(parents=True)
    # `invoke fetch` fetches the native stack first (zlib), then the line's own sources.
    bad = cache / "zlib_1.3.dfsg+really1.3.2.orig.tar.gz"
    bad.write_bytes(b"truncated")
    result = _fetch_with_no_mirror(tmp_path)
    assert result.returncode == 1
    assert "corrupt or tampered" in result.stdout + result.stderr
    assert hashlib.sha256(b"truncated").hexdigest() in result.stdout + result.stderr
    assert not bad.exists()


@pytest.mark.skipif(
    shutil.which("docker") is None and not os.environ.get("GDAL_LAMBDA_REQUIRE_DOCKER"),
    reason="no docker",
)
def test_failing_build_step_names_the_step_and_its_last_lines(tmp_path: Path) -> None:
    from gdal_lambda import images
    from gdal_lambda.errors import GdalLambdaError

    cli = images.client()
    base = "gdal-lambda-standin:debian13"
    if not images.image_exists(cli, base):
        if os.environ.get("GDAL_LAMBDA_REQUIRE_DOCKER"):
            pytest.fail(f"{base} missing: run `invoke build.standin --target debian13`")
        pytest.skip(f"{base} missing")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM {base}\nRUN echo preparing\nRUN echo first-clue && echo second-clue >&2 && exit 3\n"
    )
    printed: list[str] = []
    with pytest.raises(GdalLambdaError) as err:
        images.stream_build(
            cli, context=ctx, tag="gdal-lambda-test:failing", buildargs={}, echo=printed.append
        )
    # Every step is printed after the seconds since the build started.
    log = "".join(printed)
    assert re.search(r"^\[\s*\d+ s\] Step 1/3 : FROM ", log, re.M), log[:300]
    assert re.search(r"^\[\s*\d+ s\] Step 3/3 : RUN echo first-clue", log, re.M)
    text = str(err.value)
    assert "failed at Step 3/3 : RUN echo first-clue" in text
    assert "returned a non-zero code: 3" in text
    assert "first-clue" in text.split("last lines", 1)[1]


def test_benchmark_direct_compile_gets_every_file_its_stages_copy() -> None:
    """benchmarks/build_gdal.py runs every stage's recipe in one toolchain container: each
    stage must get the tarball, .missing list and recipe its Dockerfile stage COPYs."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench", ROOT / "benchmarks" / "build_gdal.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    text = (ROOT / "docker" / "gdal" / "Dockerfile").read_text()
    names = bench.stage_names(text)
    assert names[-3:] == ["proj", "geos", "gdal"] and "sqlite" in names
    for name in names:
        copied = set(bench.direct_files(ROOT, name))
        assert f"tmp/src/{name}.sh" in copied
        assert (ROOT / "scripts" / "stack" / f"{name}.sh").is_file()
        assert (
            f"COPY sources/{name}.tar sources/{name}.missing scripts/stack/{name}.sh /tmp/src/"
            in text
        )


def test_a_cache_from_value_other_than_1_or_0_is_one_line() -> None:
    line = one_error_line(
        invoke("build.gdal", "--version", "3.13", env={"GDAL_LAMBDA_CACHE_FROM": "true"})
    )
    assert line.startswith("error: GDAL_LAMBDA_CACHE_FROM='true'"), line


# Set by gdal_lambda.local for the handler runner inside its container, not by users.
_INTERNAL_VARIABLES = {"GDAL_LAMBDA_EVENT", "GDAL_LAMBDA_TIMEOUT_MS"}


def test_every_variable_the_code_reads_is_in_the_readme() -> None:
    code = [*(ROOT / "src").rglob("*.py"), ROOT / "tasks.py", ROOT / "noxfile.py"]
    found = {m for path in code for m in re.findall(r"GDAL_LAMBDA_[A-Z_]+", path.read_text())}
    readme = (ROOT / "README.md").read_text()
    assert "GDAL_LAMBDA_CACHE_FROM" in found
    missing = sorted(v for v in found - _INTERNAL_VARIABLES if f"`{v}`" not in readme)
    assert not missing, f"add to README's Environment variables: {missing}"


def test_the_help_lists_the_matrix_targets_and_pythons() -> None:
    """--target's and --python's help once listed them by hand (al2023's Pythons, as default)."""
    matrix = shipped_matrix()
    result = invoke("build.python", "--help", drop=("GDAL_LAMBDA_MATRIX_OVERLAY",))
    text = " ".join(result.stdout.split())
    pythons = ", ".join(matrix.target().pythons)
    assert f"the target's list ({matrix.default_target}: {pythons})" in text
    assert all(name in text for name in matrix.targets)
