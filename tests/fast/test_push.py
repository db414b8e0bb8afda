"""Pushing images to a real local registry (Debian's docker-registry) through the Docker daemon.

The images are tiny ones made with `docker import` (nothing is pulled), tagged as the gdal,
python and layer images of line 3.13 on the debian13 stand-in, in a repository unique to the
test run; they and their registry tags are removed afterwards. Without Docker or docker-registry
these tests skip, unless GDAL_LAMBDA_REQUIRE_DOCKER=1 (CI), where that is a failure.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import docker
import docker.errors
import pytest
import requests
from helpers import ROOT, make_variant
from publish_support import Registry, free_port, registry, require_or_skip, tiny_image_tar
from rich.console import Console

from gdal_lambda import push as pushing
from gdal_lambda.errors import GdalLambdaError, MissingImage
from gdal_lambda.variant import Variant

LINE, PYTHON, TARGET = "3.13", "3.13", "debian13"
TAGS = ["gdal3.13-debian13", "gdal3.13-py3.13-debian13", "gdal3.13-py3.13-geo-debian13"]
USER = ("pusher", "correct-horse")


def variant(repo: str | None = None) -> Variant:
    return make_variant(LINE, python=PYTHON, target=TARGET, repository=repo)


def quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


@pytest.fixture(scope="module")
def cli() -> docker.DockerClient:
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except docker.errors.DockerException as exc:
        require_or_skip(f"no Docker daemon ({str(exc)[:80]})")
    return client


@pytest.fixture(scope="module")
def plain(cli: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture(scope="module")
def guarded(
    cli: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Registry]:
    with registry(tmp_path_factory.mktemp("registry-auth"), auth=USER) as running:
        yield running


@pytest.fixture
def repo(cli: docker.DockerClient) -> Iterator[str]:
    """Three tiny local images tagged as line 3.13's images in a fresh repository."""
    name = f"gdal-lambda-pushtest-{uuid.uuid4().hex[:10]}"
    v = variant(name)
    refs = [v.gdal_tag, v.python_tag, v.layer_tag]
    assert [r.split(":", 1)[1] for r in refs] == TAGS
    for index, ref in enumerate(refs):
        repository, tag = ref.split(":")
        cli.api.import_image_from_data(tiny_image_tar(f"{name}-{index}"), repository, tag)
    try:
        yield name
    finally:
        for image in cli.images.list():
            for ref in image.tags:
                if ref.rsplit(":", 1)[0].endswith(name):
                    cli.images.remove(ref, noprune=False)


def test_pushes_the_three_images_with_their_digests(
    cli: docker.DockerClient, plain: Registry, repo: str
) -> None:
    out = quiet()
    pushed = pushing.push_images(variant(repo), registry=f"{plain.host}/acme", out=out)

    assert [p.remote for p in pushed] == [f"{plain.host}/acme/{repo}:{tag}" for tag in TAGS]
    assert plain.tags(f"acme/{repo}") == sorted(TAGS)
    for item in pushed:
        tag = item.remote.rsplit(":", 1)[1]
        answer = requests.head(
            f"http://{plain.host}/v2/acme/{repo}/manifests/{tag}",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
            timeout=10,
        )
        assert answer.headers["Docker-Content-Digest"] == item.digest
    assert f"pushed to {plain.host}/acme" in out.file.getvalue()  # type: ignore[attr-defined]


def test_a_missing_image_names_the_task_that_builds_it(
    cli: docker.DockerClient, plain: Registry, repo: str
) -> None:
    cli.images.remove(f"{repo}:{TAGS[2]}")

    with pytest.raises(MissingImage) as raised:
        pushing.push_images(variant(repo), registry=f"{plain.host}/acme", out=quiet())

    assert (raised.value.kind, raised.value.what) == ("layer", f"image {repo}:{TAGS[2]}")
    assert raised.value.variant == variant(repo)
    assert plain.tags(f"acme/{repo}") == []  # checked before anything was pushed


def test_authentication_failure_is_one_clear_line(
    cli: docker.DockerClient, guarded: Registry, repo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(pushing.ENV_USERNAME, raising=False)
    monkeypatch.delenv(pushing.ENV_PASSWORD, raising=False)

    with pytest.raises(GdalLambdaError) as raised:
        pushing.push_images(variant(repo), registry=f"{guarded.host}/acme", out=quiet())

    message = str(raised.value)
    assert f"registry {guarded.host} refused {guarded.host}/acme/{repo}:{TAGS[0]}" in message
    assert "authentication failed (no basic auth credentials)" in message
    assert f"`docker login {guarded.host}`" in message and "\n" not in message
    assert guarded.tags(f"acme/{repo}") == []


def test_a_wrong_password_is_an_authentication_failure(
    cli: docker.DockerClient, guarded: Registry, repo: str
) -> None:
    with pytest.raises(GdalLambdaError, match=r"authentication failed \(unauthorized"):
        pushing.push_images(
            variant(repo),
            registry=f"{guarded.host}/acme",
            auth={"username": USER[0], "password": "wrong"},
            out=quiet(),
        )


def test_credentials_from_the_environment(
    cli: docker.DockerClient, guarded: Registry, repo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(pushing.ENV_USERNAME, USER[0])
    monkeypatch.setenv(pushing.ENV_PASSWORD, USER[1])

    pushing.push_images(
        variant(repo), registry=f"{guarded.host}/team/sub", env=os.environ, out=quiet()
    )

    assert guarded.tags(f"team/sub/{repo}") == sorted(TAGS)


def test_an_unreachable_registry_is_one_line(cli: docker.DockerClient, repo: str) -> None:
    host = f"127.0.0.1:{free_port()}"
    with pytest.raises(GdalLambdaError, match=rf"registry {host} refused .*connection refused"):
        pushing.push_images(variant(repo), registry=f"{host}/acme", out=quiet())


@pytest.mark.parametrize("bad", ["acme", "acme/gdal", "ghcr.io/Acme", "ghcr.io//x", ""])
def test_a_registry_needs_a_host(bad: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(pushing.ENV_REGISTRY, raising=False)
    with pytest.raises(GdalLambdaError, match="is not <host>/<namespace>|name the registry"):
        pushing.push_images(variant(), registry=bad, env={}, out=quiet())


def test_registry_forms() -> None:
    assert pushing.registry_host("localhost:5000/acme") == "localhost:5000"
    assert pushing.registry_host("123456789012.dkr.ecr.eu-west-1.amazonaws.com/gdal") == (
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    )
    assert pushing.remote_ref("ghcr.io/acme/", "org/gdal-lambda:gdal3.13") == (
        "ghcr.io/acme/gdal-lambda",
        "gdal3.13",
    )


def test_invoke_push_missing_image_is_exit_1_with_one_line(cli: docker.DockerClient) -> None:
    repo = f"gdal-lambda-pushtest-absent-{uuid.uuid4().hex[:8]}"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "invoke",
            "push",
            "--gdal",
            "3.13",
            "--python",
            "3.13",
            "--target",
            "debian13",
            "--repository",
            repo,
            "--registry",
            "localhost:5000/acme",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 1, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        f"error: image {repo}:gdal3.13-debian13 does not exist: run `invoke build.gdal "
        f"--version 3.13 --target debian13 --repository {repo}` first"
    ]
