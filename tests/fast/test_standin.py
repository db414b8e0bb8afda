"""`invoke build.standin`'s bad input: each is one line on stderr, exit 1, and nothing is made.

The tools a stand-in needs are stand-ins here too: executables on a PATH of the test's own that
record being run, so a test proves that nothing was started (no debootstrap, no docker import).
Suites are debootstrap's own list when it is installed.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import ROOT, one_error_line
from helpers import invoke as run_invoke
from httpserver import serve

REAL_SUITES = Path("/usr/share/debootstrap")


@pytest.fixture
def tools() -> Iterator[Path]:
    """A world-readable folder: bin/ with debootstrap, docker and tar that record each call in
    calls.log and fail, and a debootstrap dir whose scripts/ knows bullseye."""
    folder = Path(tempfile.mkdtemp(prefix="gdal-lambda-standin-test."))
    try:
        folder.chmod(0o755)
        (folder / "bin").mkdir(mode=0o755)
        for tool in ("debootstrap", "docker", "tar"):
            exe = folder / "bin" / tool
            exe.write_text(f'#!/bin/sh\necho "{tool} $*" >>{folder}/calls.log\nexit 1\n')
            exe.chmod(0o755)
        (folder / "debootstrap" / "scripts").mkdir(parents=True)
        (folder / "debootstrap" / "scripts" / "bullseye").write_text("")
        os.chmod(folder / "debootstrap", 0o755)
        os.chmod(folder / "debootstrap" / "scripts", 0o755)
        yield folder
    finally:
        shutil.rmtree(folder)


def _env(tools: Path, **extra: str) -> dict[str, str]:
    suites = REAL_SUITES if (REAL_SUITES / "scripts").is_dir() else tools / "debootstrap"
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "GDAL_LAMBDA_MATRIX")}
    return {**env, "PATH": str(tools / "bin"), "DEBOOTSTRAP_DIR": str(suites), **extra}


def invoke(*args: str, env: dict[str, str], user: str | None = None) -> list[str]:
    """Run invoke in ``env`` alone (as ``user`` through setpriv, when given); return its one
    error line."""
    prefix: list[str] = []
    if user is not None:
        account = pwd.getpwnam(user)
        ids = ["--reuid", str(account.pw_uid), "--regid", str(account.pw_gid), "--clear-groups"]
        prefix = [shutil.which("setpriv") or "setpriv", *ids]
    return [one_error_line(run_invoke(*args, base=env, prefix=prefix))]


def _matrix(
    tmp: Path,
    *,
    suite: str = "bullseye",
    mirror: str | None = None,
    tag: str = "",
    registry: str = "",
) -> Path:
    """A copy of the shipped matrix with debian11's suite, CPython 3.13's mirror, image tag or
    x86_64 registry base changed."""
    text = (ROOT / "matrix.toml").read_text()
    start = text.index("[targets.debian11]")
    end = text.index("\n[", start + 1)
    block = text[start:end].replace('standin_suite = "bullseye"', f'standin_suite = "{suite}"')
    if tag:
        block = block.replace("gdal-lambda-standin:debian11", tag)
    if registry:
        block = re.sub(r'x86_64 = "debian@sha256:[0-9a-f]+"', f'x86_64 = "{registry}"', block)
    text = text[:start] + block + text[end:]
    if mirror is not None:
        start = text.index('[[sources.python]]\nversion = "3.13.15"')
        end = text.index("\n[", start + 1)
        mirrors = re.sub(r'url = "[^"]+"', f'url = "{mirror}"', text[start:end])
        text = text[:start] + mirrors + text[end:]
    path = tmp / "matrix.toml"
    path.write_text(text)
    path.chmod(0o644)
    return path


def _started(tools: Path) -> str:
    calls = tools / "calls.log"
    return calls.read_text() if calls.exists() else ""


def test_without_debootstrap(tools: Path) -> None:
    (tools / "bin" / "debootstrap").unlink()
    [line] = invoke(
        "build.standin", "--target", "debian11", "--via", "debootstrap", env=_env(tools)
    )
    assert line == (
        "error: making a stand-in with debootstrap needs debootstrap, which is not on PATH; "
        "on Debian: apt-get install -y debootstrap docker.io"
    )
    assert _started(tools) == ""


def test_an_unknown_suite(tools: Path) -> None:
    matrix = _matrix(tools, suite="hamm-and-eggs")
    env = _env(tools, GDAL_LAMBDA_MATRIX=str(matrix))
    [line] = invoke("build.standin", "--target", "debian11", "--via", "debootstrap", env=env)
    assert line.startswith(
        "error: target debian11: debootstrap does not know the suite 'hamm-and-eggs' "
        f"(its suites are the files in {env['DEBOOTSTRAP_DIR']}/scripts)"
    )
    assert _started(tools) == ""


def test_without_root(tools: Path) -> None:
    """As root (as on the CI machine) the task runs as nobody; as anyone else, as that user."""
    user = "nobody" if os.geteuid() == 0 else None
    env = _env(tools, HOME=str(tools))
    words = ("build.standin", "--target", "debian11", "--via", "debootstrap", "--force")
    [line] = invoke(*words, env=env, user=user)
    assert line == (
        "error: the debootstrap route needs root (run the same command as root), "
        "or take the registry route where Docker Hub is in reach (--via registry)"
    )
    assert _started(tools) == ""


def test_an_unknown_route(tools: Path) -> None:
    [line] = invoke("build.standin", "--target", "debian11", "--via", "ftp", env=_env(tools))
    assert line == (
        "error: unknown stand-in route 'ftp': use registry (Docker Hub's pinned image) or "
        "debootstrap (no registry; needs root)"
    )
    assert _started(tools) == ""


@pytest.mark.skipif(shutil.which("docker") is None, reason="the pull is the Docker engine's")
def test_a_registry_that_cannot_be_reached(tools: Path, tmp_path: Path) -> None:
    """The registry route where no registry answers: one line naming the pinned image and the
    debootstrap route; no image tagged."""
    pinned = "127.0.0.1:9/debian@sha256:" + "0" * 64
    tag = f"gdal-lambda-standin-test:{os.getpid()}"
    matrix = _matrix(tmp_path, registry=pinned, tag=tag)
    env = {**_env(tools, GDAL_LAMBDA_MATRIX=str(matrix)), "PATH": os.environ["PATH"]}
    [line] = invoke("build.standin", "--target", "debian11", "--python", "3.13", env=env)
    assert line.startswith(f"error: cannot pull {pinned} (")
    assert line.endswith(
        "where no registry is in reach, make the stand-in with debootstrap instead "
        "(--via debootstrap, as root)"
    )
    inspected = subprocess.run(["docker", "image", "inspect", tag], capture_output=True)
    assert inspected.returncode != 0


def test_a_python_the_target_lacks(tools: Path) -> None:
    [line] = invoke("build.standin", "--target", "debian11", "--python", "2.7", env=_env(tools))
    assert line.startswith("error: Python 2.7 is not available on target debian11: use one of ")


@pytest.mark.skipif(os.geteuid() != 0, reason="the source is fetched after the root check")
def test_a_python_source_that_fails_verification(tools: Path, tmp_path: Path) -> None:
    """The mirror serves other bytes than the matrix's sha256: one line naming the mirror and
    both digests; nothing cached, nothing started, no image tagged."""
    served = tmp_path / "www"
    served.mkdir()
    tampered = b"not CPython 3.13.15\n"
    (served / "Python-3.13.15.tar.xz").write_bytes(tampered)
    cache = tmp_path / "cache"
    with serve(served) as server:
        url = server.url("/Python-3.13.15.tar.xz")
        tag = f"gdal-lambda-standin-test:{os.getpid()}"
        env = _env(
            tools,
            GDAL_LAMBDA_MATRIX=str(_matrix(tmp_path, mirror=url, tag=tag)),
            GDAL_LAMBDA_CACHE=str(cache),
        )
        words = ("build.standin", "--target", "debian11", "--python", "3.13", "--force")
        [line] = invoke(*words, "--via", "debootstrap", env=env)
    assert line.startswith(
        "error: no verified CPython 3.13.15 source for the stand-ins of debian11, "
        "nothing was made: "
        f"sha256 mismatch for {url}: expected 1e66a7945a48390ee4c2a4268a0e4185884059a1"
    )
    assert hashlib.sha256(tampered).hexdigest() in line
    assert not list(cache.rglob("*.xz*"))
    assert _started(tools) == ""
    if shutil.which("docker"):
        inspected = subprocess.run(["docker", "image", "inspect", tag], capture_output=True)
        assert inspected.returncode != 0


def test_a_stand_ins_inputs_digest_follows_contents_not_paths(tmp_path: Path) -> None:
    """What decides whether a stand-in is made again: any changed byte of a file it is built
    from (the SDK lock, say) or a changed value changes the digest; the same bytes under another
    path do not."""
    from gdal_lambda.standin import inputs_digest

    lock, dockerfile = tmp_path / "runtime.lock", tmp_path / "Dockerfile"
    lock.write_text("boto3==1.38.36 --hash=sha256:aa\n")
    dockerfile.write_text("FROM scratch\n")
    values = {"PACKAGES": "python3", "root": "sha256:1", "stage": "base"}
    first = inputs_digest([dockerfile, lock], values)
    elsewhere = tmp_path / "other" / "lock.txt"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(lock.read_bytes())
    assert inputs_digest([dockerfile, elsewhere], values) == first
    lock.write_text("boto3==1.38.37 --hash=sha256:bb\n")
    assert inputs_digest([dockerfile, lock], values) != first
    lock.write_bytes(elsewhere.read_bytes())
    assert inputs_digest([dockerfile, lock], {**values, "root": "sha256:2"}) != first
    assert inputs_digest([lock, dockerfile], values) != first, "the order of the files counts"
