"""Hash-locked requirements: the shipped locks are fresh, pip refuses a tampered file, a stale or
missing lock is one line naming the command that fixes it."""

from __future__ import annotations

import base64
import hashlib
import itertools
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import ROOT
from httpserver import serve
from packaging.requirements import Requirement

from gdal_lambda import locks, naming, versions
from gdal_lambda.errors import GdalLambdaError


def test_every_shipped_lock_is_fresh() -> None:
    """Fails when an input changed (or a target's Pythons) and `invoke lock` was not run."""
    problems = locks.check(versions.load_matrix(), locks.known_overlays())
    assert not problems, "\n".join(problems)


def test_every_target_python_has_a_lock_per_input() -> None:
    matrix = versions.load_matrix()
    pythons = {p for t in matrix.targets.values() for p in t.pythons}
    assert pythons == set(locks.platforms(matrix))
    for path in locks.inputs():
        for python in pythons:
            assert (path.parent / "locks" / f"py{python}.txt").is_file()


def test_the_platform_is_the_lowest_glibc_of_the_targets_offering_a_python() -> None:
    platforms = locks.platforms(versions.load_matrix())
    # al2023 (2.34), debian13 (2.41) and the floor stand-in debian11 (2.31)
    assert platforms["3.13"] == "x86_64-manylinux_2_31"
    assert platforms["3.11"] == "x86_64-manylinux_2_36"  # debian12 only


def test_the_layer_locks_hold_what_the_recipe_compiles() -> None:
    """rasterio/shapely/pyproj are built from sdists against /opt (the matrix's
    compiled_against_opt): every layer lock pins each with its hashes; an overlay's lock pins
    the overlay's version, and its build lock meets the overlay's build constraints."""
    shipped = versions.load_matrix()
    lines = (ROOT / "layers/geo/requirements.txt").read_text().splitlines()
    wanted = {naming.distribution_name(r.name) for r in map(naming.requirement, lines) if r}
    compiled = sorted(wanted & {naming.distribution_name(n) for n in shipped.compiled_against_opt})
    assert compiled
    for lock in sorted((ROOT / "layers/geo/locks").glob("py*.txt")):
        pins = locks.read_lock(lock).pins
        for name in compiled:
            assert pins[name][0] and pins[name][1], (lock.name, name)
    for overlay, recipe in itertools.product(locks.known_overlays(), ("geo", "geopandas")):
        overrides = overlay.requirement_overrides
        folder = ROOT / "layers" / recipe / "locks" / locks.overrides_folder(overrides)
        layer_locks = sorted(p for p in folder.glob("py*.txt") if "-build-" not in p.name)
        assert layer_locks, folder
        for lock in layer_locks:
            pins = locks.read_lock(lock).pins
            # an override pins what the recipe has (geo has no geopandas)
            assert recipe == "geo" or set(overrides) <= set(pins), lock
            for name, version in overrides.items():
                if name in pins:
                    assert pins[name][0] == version and pins[name][1], (lock, name)
        for package, constraints in overlay.build_constraints.items():
            build_locks = sorted(folder.glob(f"py*-build-{package}.txt"))
            assert build_locks, (folder, package)
            for lock in build_locks:
                pins = locks.read_lock(lock).pins
                for constraint in map(Requirement, constraints):
                    pinned = pins[naming.distribution_name(constraint.name)][0]
                    assert constraint.specifier.contains(pinned), (lock, constraint)


def test_the_python_image_lock_holds_every_build_backend() -> None:
    """The recipe compiles with --no-build-isolation: its sdists' build-system requirements
    (setuptools, wheel, cython, numpy, meson-python) must come from the Python image's lock."""
    for python in ("3.11", "3.12", "3.13", "3.14"):
        pins = locks.read_lock(ROOT / f"docker/python/locks/py{python}.txt").pins
        for name in (
            "setuptools",
            "wheel",
            "cython",
            "numpy",
            "meson-python",
            "meson",
            "versioneer",
        ):
            assert pins[name][1], (python, name)
        layer = locks.read_lock(ROOT / f"layers/geo/locks/py{python}.txt").pins
        assert pins["numpy"][0] == layer["numpy"][0], "extensions are built against this numpy"


def test_the_bindings_hash_is_in_the_matrix_for_every_line() -> None:
    for line in versions.load_matrix().lines.values():
        assert len(line.bindings_sha256) == 64


# ------------------------------------------------------------------------------------------------
# stale and missing locks


def _project(tmp_path: Path, text: str) -> tuple[Path, locks.LockSpec]:
    req = tmp_path / "layers" / "demo" / "requirements.txt"
    req.parent.mkdir(parents=True)
    req.write_text(text)
    return req, locks.LockSpec(req, "3.13", "x86_64-manylinux_2_34")


def test_a_stale_lock_is_reported_with_the_command_to_run(tmp_path: Path) -> None:
    req, spec = _project(tmp_path, "tiny==1.0\n")
    spec.path.parent.mkdir(parents=True)
    spec.path.write_text(locks.render(spec, "tiny==1.0 \\\n    --hash=sha256:" + "a" * 64 + "\n"))
    assert locks.problem(spec) is None
    req.write_text("tiny==1.1\n")  # the input changed; nobody ran `invoke lock`
    why = locks.problem(spec)
    assert why is not None and "stale" in why and "run `invoke lock`" in why
    with pytest.raises(GdalLambdaError, match=r"stale.*invoke lock"):
        locks.require(req, "3.13")


def test_a_missing_lock_names_the_command_that_writes_it(tmp_path: Path) -> None:
    req, _ = _project(tmp_path, "tiny==1.0\n")
    with pytest.raises(GdalLambdaError) as info:
        locks.require(req, "3.12")
    message = str(info.value)
    assert "\n" not in message
    assert "Python 3.12" in message and "`invoke lock` writes it" in message


def test_uv_conflicts_are_condensed_to_one_line() -> None:
    stderr = (
        "  \u00d7 No solution found when resolving dependencies:\n"
        "  ╰─▶ Because rasterio==1.5.2 depends on Python>=3.12 and you require\n"
        "      rasterio==1.5.2, we can conclude that your requirements are unsatisfiable.\n"
    )
    assert locks.condense(stderr) == (
        "Because rasterio==1.5.2 depends on Python>=3.12 and you require rasterio==1.5.2, we "
        "can conclude that your requirements are unsatisfiable."
    )


def test_split_moves_an_isolated_entry_with_its_hashes() -> None:
    text = (
        "a==1 \\\n    --hash=sha256:"
        + "1" * 64
        + "\npyproj==3.6.1 \\\n    --hash=sha256:"
        + "2" * 64
        + "\nz==2\n"
    )
    shared, moved = locks.split(text, ["PyProj"])
    assert "pyproj" not in shared and "1" * 64 in shared and "z==2" in shared
    assert moved.startswith("pyproj==3.6.1") and "2" * 64 in moved


# ------------------------------------------------------------------------------------------------
# pip refuses a file whose hash the lock does not list (a real pip, a real local index)


def _wheel(folder: Path) -> Path:
    """A minimal valid pure-Python wheel (PEP 427): one module, METADATA, WHEEL, RECORD.

    Written with zipfile rather than `pip wheel`: building needs setuptools and wheel, which a
    fresh test environment need not have (and the index must not be reached for them)."""
    files = {
        "tinypkg/__init__.py": b"VALUE = 42\n",
        "tinypkg-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n",
        "tinypkg-1.0.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: gdal-lambda-tests\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    record = ""
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += f"{name},sha256={digest},{len(data)}\n"
    record += "tinypkg-1.0.dist-info/RECORD,,\n"
    files["tinypkg-1.0.dist-info/RECORD"] = record.encode()
    wheel = folder / "tinypkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return wheel


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Path:
    """A PEP 503 index (served by tests/httpserver.py) holding one small wheel."""
    root = tmp_path_factory.mktemp("index")
    simple = root / "www" / "simple" / "tinypkg"
    simple.mkdir(parents=True)
    wheel = _wheel(simple)
    (simple / "index.html").write_text(f'<a href="{wheel.name}">{wheel.name}</a>\n')
    return root


def _pip_install(index: Path, lock: Path, target: Path) -> subprocess.CompletedProcess[str]:
    with serve(index / "www") as server:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "--isolated",
                "install",
                "--no-cache-dir",
                "--require-hashes",
                "--no-deps",
                "--target",
                str(target),
                "-r",
                str(lock),
                "--index-url",
                server.url("simple"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )


def _lock_for(index: Path, tmp_path: Path, digest: str) -> Path:
    lock = tmp_path / "py3.13.txt"
    lock.write_text(f"tinypkg==1.0 \\\n    --hash=sha256:{digest}\n")
    return lock


def test_a_lock_with_the_right_hash_installs(index: Path, tmp_path: Path) -> None:
    wheel = next((index / "www/simple/tinypkg").glob("*.whl"))
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    lock = _lock_for(index, tmp_path, digest)
    # what our reader takes from a lock is what pip enforces
    assert locks.read_lock(lock).pins["tinypkg"] == ("1.0", frozenset({digest}))
    result = _pip_install(index, lock, tmp_path / "target")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "target" / "tinypkg" / "__init__.py").is_file()


def test_an_altered_hash_makes_the_install_fail_with_pips_mismatch_line(
    index: Path, tmp_path: Path
) -> None:
    wheel = next((index / "www/simple/tinypkg").glob("*.whl"))
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    altered = digest[:-1] + ("0" if digest[-1] != "0" else "1")
    lock = _lock_for(index, tmp_path, altered)
    assert locks.read_lock(lock).pins["tinypkg"] == ("1.0", frozenset({altered}))
    result = _pip_install(index, lock, tmp_path / "target")
    assert result.returncode != 0
    assert "THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE" in result.stderr
    assert f"Expected sha256 {altered}" in result.stderr
    assert f"Got        {digest}" in result.stderr
    assert not (tmp_path / "target" / "tinypkg").exists()


# ------------------------------------------------------------------------------------------------
# the manifest's Python entries


def _report(*items: tuple[str, str, str]) -> dict[str, object]:
    return {
        "install": [
            {
                "metadata": {"name": name, "version": version},
                "download_info": {
                    "url": f"https://files.example/{name}-{version}.tar.gz",
                    "archive_info": {"hashes": {"sha256": digest}},
                },
            }
            for name, version, digest in items
        ]
    }


def test_manifest_entries_carry_version_file_and_hash() -> None:
    entries = locks.python_packages(
        {"GDAL": "3.13.3", "rasterio": "1.5.2"},
        [_report(("rasterio", "1.5.2", "e" * 64)), _report(("GDAL", "3.13.3", "a" * 64))],
    )
    assert entries["GDAL"] == {
        "version": "3.13.3",
        "file": "GDAL-3.13.3.tar.gz",
        "sha256": "a" * 64,
    }
    assert entries["rasterio"]["sha256"] == "e" * 64


def test_a_distribution_without_provenance_is_an_error() -> None:
    with pytest.raises(GdalLambdaError, match="attrs 26.1.0 is installed"):
        locks.python_packages({"attrs": "26.1.0"}, [_report(("rasterio", "1.5.2", "e" * 64))])
