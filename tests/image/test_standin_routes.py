"""The two routes to a stand-in give the same image: FROM Docker Hub's digest-pinned Debian (the
registry route: no root, no debootstrap) and FROM debootstrap's root file system.

A real registry (Debian's docker-registry on loopback) stands in for Docker Hub: the root image
the debootstrap route made is pushed there, the matrix pins it by the digest the registry gives,
and `invoke build.standin --via registry` builds from the pulled image. Every step of
docker/standin/Dockerfile is then the same step on the same parent, so the stand-ins it tags
must be the very images the debootstrap route made (same IDs), and pass the same checks.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import docker
import pytest
from helpers import ROOT

from gdal_lambda.variant import Variant

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fast"))
from publish_support import registry


def _root_or_skip(cli: docker.DockerClient, variant: Variant) -> str:
    """The debootstrap root the stand-ins of the variant's target were made from."""
    target = variant.target
    if not target.is_standin or variant.arch != "x86_64":
        pytest.skip("stand-in targets on x86_64 only")
    root = f"gdal-lambda-standin-root:{target.standin_suite}"
    if not cli.images.list(name=root):
        pytest.skip(f"{root} was not made here (the stand-ins came another way)")
    return root


def _matrix_naming(variant: Variant, mine: str, where: Path, pinned: str | None = None) -> Path:
    """matrix.toml with the target's stand-ins tagged ``mine:…`` (and its x86_64 registry root
    ``pinned``), written to ``where``."""
    text = (ROOT / "matrix.toml").read_text()
    start = text.index(f"[targets.{variant.target.name}]")
    end = text.index("\n[", start + 1)
    block = text[start:end].replace("gdal-lambda-standin:", f"{mine}:")
    if pinned is not None:
        block = re.sub(r'x86_64 = "debian@sha256:[0-9a-f]+"', f'x86_64 = "{pinned}"', block)
    where.write_text(text[:start] + block + text[end:])
    return where


def _build_standin(variant: Variant, matrix: Path, via: str) -> subprocess.CompletedProcess:
    """`invoke build.standin` for the variant's target and Python, with ``matrix``."""
    words = ["build.standin", "--target", variant.target.name, "--python", variant.python]
    return subprocess.run(
        [sys.executable, "-m", "invoke", *words, "--via", via],
        cwd=ROOT, env={**os.environ, "GDAL_LAMBDA_MATRIX": str(matrix)},
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip


def _remove_tags(cli: docker.DockerClient, *prefixes: str) -> None:
    """Only a test's own tags: the images stay, under the real stand-ins' names."""
    for image in cli.images.list():
        for tag in image.tags:
            if tag.startswith(prefixes):
                cli.images.remove(tag, noprune=True)


def test_the_registry_route_builds_the_same_stand_ins(
    cli: docker.DockerClient, variant: Variant, tmp_path: Path
) -> None:
    target = variant.target
    root = _root_or_skip(cli, variant)
    mine = f"gdal-lambda-standin-route-{os.getpid()}"
    with registry(tmp_path / "registry") as running:
        pushed = f"{running.host}/debian"
        cli.images.get(root).tag(pushed, target.standin_suite)
        try:
            cli.images.push(pushed, tag=target.standin_suite)
            digests = cli.images.get(f"{pushed}:{target.standin_suite}").attrs["RepoDigests"]
            [pinned] = [d for d in digests if d.startswith(pushed + "@")]
            cli.images.remove(f"{pushed}:{target.standin_suite}")
            matrix = _matrix_naming(variant, mine, tmp_path / "matrix.toml", pinned)
            made = _build_standin(variant, matrix, "registry")
            assert made.returncode == 0, made.stdout[-3000:] + made.stderr
            assert f"FROM {pinned}" in made.stdout
            for image in (variant.gdal_base, variant.python_base):
                routed = image.replace("gdal-lambda-standin:", f"{mine}:")
                assert cli.images.get(routed).id == cli.images.get(image).id, image
        finally:
            _remove_tags(cli, f"{mine}:", f"{pushed}:")
    # The stand-ins and their root are still there under their own names.
    for image in (variant.gdal_base, variant.python_base, root):
        assert cli.images.list(name=image), f"{image} was removed"


def test_a_stand_in_made_from_older_inputs_is_made_again(
    cli: docker.DockerClient, variant: Variant, tmp_path: Path
) -> None:
    """A stand-in tag that names an image made from other inputs (here: its own root, without a
    Python or the runtime's SDK, and without the label recording its inputs) is built again;
    Docker's cache makes it the very image the current inputs give. Before, such a tag was kept
    as it was ("already exists"), and tests ran against a runtime without the SDK the lock pins.
    A tag made from the same inputs is kept: run again, by either route, nothing is built."""
    root = _root_or_skip(cli, variant)
    mine = f"gdal-lambda-standin-stale-{os.getpid()}"
    matrix = _matrix_naming(variant, mine, tmp_path / "matrix.toml")
    images = {image: image.replace("gdal-lambda-standin:", f"{mine}:")
              for image in (variant.gdal_base, variant.python_base)}  # fmt: skip
    try:
        for stale in images.values():
            repository, _, name = stale.rpartition(":")
            cli.images.get(root).tag(repository, name)
        made = _build_standin(variant, matrix, "debootstrap")
        assert made.returncode == 0, made.stdout[-3000:] + made.stderr
        assert "already exists" not in made.stdout
        for real, remade in images.items():
            assert cli.images.get(remade).id == cli.images.get(real).id, remade
            assert f"made stand-in {remade}" in made.stdout
        again = _build_standin(variant, matrix, "debootstrap")
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr
        assert "Step 1/" not in again.stdout, "a current stand-in was built again"
        for real, remade in images.items():
            assert f"stand-in {remade} is up to date" in again.stdout
            assert cli.images.get(remade).id == cli.images.get(real).id, remade
        # The registry route (the test sessions' default) keeps them too, with its pinned root
        # neither here nor pulled: CI reaches no registry.
        if not cli.images.list(name=variant.target.registry_base.get("x86_64", "-")):
            kept = _build_standin(variant, matrix, "registry")
            assert kept.returncode == 0, kept.stdout[-3000:] + kept.stderr
            assert "Step 1/" not in kept.stdout and "pull" not in kept.stdout + kept.stderr
    finally:
        _remove_tags(cli, f"{mine}:")
