"""Stand-in base images: a Debian root (Docker Hub's digest-pinned image, or one debootstrap
makes) laid out like Lambda's images, checked before it is tagged.

    made = make_standin(matrix.target("debian11"), matrix.architecture("x86_64"), env=os.environ)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from . import locks, runtime_sdk
from .containers import client, image_exists, labels
from .emulation import check_runnable, host_architecture
from .errors import GdalLambdaError
from .images import build_context, stream_build
from .project import project_root
from .sources import FetchError, fetch
from .sources import Settings as FetchSettings
from .versions import DEFAULT_ARCH, Architecture, Target


def debootstrap_suites(env: Mapping[str, str]) -> Path:
    """Where debootstrap keeps one script a suite it knows (``$DEBOOTSTRAP_DIR/scripts``)."""
    return Path(env.get("DEBOOTSTRAP_DIR") or "/usr/share/debootstrap") / "scripts"


STANDIN_ROUTES = ("registry", "debootstrap")
# Debian's own interpreter, for a stand-in without a /var/lang CPython (python3-pip: Lambda's
# Python images ship pip).
DEBIAN_PYTHON_PACKAGES = ("python3", "python3-pip", "ca-certificates")
_STANDIN_CHECK = "import ssl, sqlite3, ctypes, lzma, bz2, zlib, uuid, json"
# The label a stand-in carries: the digest of what it was made from (inputs_digest).
INPUTS_LABEL = "org.gdal-lambda.standin-inputs"


def _sdk_check(pins: Mapping[str, str]) -> str:
    """The shell that proves /var/runtime holds exactly the locked SDK, importable."""
    wanted = ", ".join(f'"{name}": "{version}"' for name, version in sorted(pins.items()))
    script = (
        f"import importlib.metadata as m, boto3; pins = {{{wanted}}}; "
        'found = {d.metadata["Name"].lower().replace("_", "-"): d.version '
        'for d in m.distributions(path=["/var/runtime"])}; '
        "assert found == pins, (found, pins)"
    )
    return f"PYTHONPATH=/var/runtime python3 -c '{script}'"


def _package_list(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return [name for line in text.splitlines() if (name := line.split("#", 1)[0].strip())]


def _standin_checks(
    python: str | None, debian_python: bool, sdk: Mapping[str, str] | None = None
) -> str:
    """The shell a stand-in must pass before it is tagged: the standard library's C extensions
    load against the runtime's libraries; a /var/lang stand-in has that python3 first on PATH,
    and no compiler or -dev package; every stand-in has Lambda's /var/task and /opt; one with
    a Python has the runtime's SDK (``sdk``: name -> version) in /var/runtime, nothing else."""
    checks = ["[ -d /var/task ] && [ -d /opt ]"]
    if python is not None or debian_python:
        checks.append(f"python3 -c '{_STANDIN_CHECK}' && python3 -m pip --version >/dev/null")
    if sdk:
        checks.append(_sdk_check(sdk))
    if python is not None:
        checks += [
            '[ "$(command -v python3)" = /var/lang/bin/python3 ]',
            f"python3 -c 'import sys; assert sys.version.startswith(\"{python}.\")'",
        ]
    checks += [
        "! command -v gcc && ! command -v cc",
        "! dpkg-query -W -f '${Package}\\n' | grep -e '-dev$'",
    ]
    return " && ".join(checks)


def make_standin(
    target: Target,
    architecture: Architecture,
    *,
    python: str | None = None,
    via: str = "registry",
    force: bool = False,
    fetch_settings: FetchSettings | None = None,
    env: Mapping[str, str],
) -> list[str]:
    """Make the target's stand-in images for one architecture: its GDAL base and, for a target
    with standin_python, one image per Python with that CPython compiled into /var/lang (only
    ``python``'s when given). Returns the tags. A tag whose image was made from the same inputs
    (its label) is kept; every other is built, through Docker's cache (without it, and with a
    new debootstrap root, when ``force``).

    Both routes build docker/standin/Dockerfile, FROM a different root: ``registry``, Docker
    Hub's image pinned by digest (matrix.toml registry_base; no root, no debootstrap);
    ``debootstrap``, a root file system scripts/make-standin.sh makes (root, no registry).
    Every bad input is one error before anything is made; an image is tagged only once it has
    passed its checks. ``env`` gives ``$STANDIN_CA_BUNDLE`` (the host's CA bundle, default
    Debian's) and ``$DEBOOTSTRAP_DIR``."""
    if not target.is_standin:
        raise GdalLambdaError(
            f"target {target.name} uses real AWS base images, not a stand-in; "
            "stand-ins are the targets with standin_suite in matrix.toml"
        )
    assert target.standin_suite is not None
    if via not in STANDIN_ROUTES:
        raise GdalLambdaError(
            f"unknown stand-in route {via!r}: use registry (Docker Hub's pinned image) or "
            "debootstrap (no registry; needs root)"
        )
    if python is not None:
        target.check_python(python)
    wanted = {
        tag: py
        for tag, py in target.standin_images(architecture.name).items()
        if python is None or py in (None, python)
    }
    if via == "debootstrap":
        _debootstrap_preflight(target, env)
    elif architecture.name not in target.registry_base:
        raise GdalLambdaError(
            f"target {target.name} pins no registry_base for {architecture.name} in matrix.toml: "
            "add one, or make the stand-in with debootstrap (--via debootstrap, as root)"
        )
    scripts = project_root() / "scripts"
    runtime_list = scripts / "standin" / f"{target.standin_suite}-runtime.txt"
    build_list = scripts / "standin" / f"{target.standin_suite}-build.txt"
    if target.standin_pythons:
        for listing in (runtime_list, build_list):
            if not listing.is_file():
                raise GdalLambdaError(
                    f"target {target.name}: a /var/lang CPython on {target.standin_suite} "
                    f"needs the package list {listing}; write it or drop standin_python"
                )
    ca_bundle = Path(env.get("STANDIN_CA_BUNDLE") or "/etc/ssl/certs/ca-certificates.crt")
    if not ca_bundle.is_file():
        raise GdalLambdaError(
            f"CA bundle {ca_bundle} is not readable; set STANDIN_CA_BUNDLE to the host's bundle"
        )
    # The runtime's SDK for each Python stand-in: a missing or stale lock is one error, first.
    debian_python = not target.standin_pythons
    sdk_python = {
        tag: py if py is not None else (target.pythons[0] if debian_python else None)
        for tag, py in wanted.items()
    }
    sdk_locks = {
        tag: (py, locks.require(project_root() / locks.STANDIN_REQUIREMENTS, py))
        for tag, py in sdk_python.items()
        if py is not None
    }
    cli = client()
    standin_dir = project_root() / "docker" / "standin"
    # A CPython target's GDAL base is the Python stand-ins' own base stage (one cached layer).
    packages = _package_list(runtime_list) if target.standin_pythons else DEBIAN_PYTHON_PACKAGES
    # What each image is made from, recorded in its label: a tag whose label differs (an image
    # made before the SDK lock, a package list or a Dockerfile changed) is made again; one whose
    # label matches is kept, also where it was restored with `docker load`, which Docker's build
    # cache would not reuse. The root is not in the label (both routes from the same root give
    # the same images): a kept stand-in must descend from the root where the root is here. The
    # host's CA bundle is not in it either: it is how the stand-in reaches this host's network,
    # and a runner's refreshed bundle would otherwise remake every image built on it (after a
    # new proxy root: --force).
    plans: dict[str, _Plan] = {}
    for tag, py in wanted.items():
        sdk_python_of, sdk_lock = sdk_locks.get(tag, (None, None))
        buildargs = {"PACKAGES": " ".join(packages)}
        values = {"stage": "base" if py is None else "python"}
        if py is not None:
            buildargs["BUILD_PACKAGES"] = " ".join(_package_list(build_list))
            buildargs["LD_LIBRARY_PATH"] = ":".join(target.library_path(architecture))
            mirrors = target.standin_pythons[py].mirrors
            values["python_sha256"] = ",".join(sorted({m.sha256 for m in mirrors}))
        files = [standin_dir / "Dockerfile"]
        if sdk_lock is not None:
            files += [standin_dir / "sdk.Dockerfile", sdk_lock]
        inputs = inputs_digest(files, {**buildargs, **values})
        plans[tag] = _Plan(py, sdk_python_of, sdk_lock, buildargs, values["stage"], inputs)
    labelled = {tag for tag, plan in plans.items() if not force and _label(cli, tag) == plan.inputs}
    root_image = _local_root(cli, target, architecture, via)
    if root_image is None and labelled == set(wanted):
        for tag in wanted:
            print(f"stand-in {tag} is up to date (made from the same inputs)")
        return list(wanted)
    # Every CPython source is fetched and verified before anything is made.
    tarballs: dict[str, Path] = {}

    def fetch_python(py: str) -> None:
        source = target.standin_pythons[py]
        try:
            tarballs[py] = fetch(source, settings=fetch_settings).path
        except FetchError as exc:
            raise GdalLambdaError(
                f"no verified CPython {source.version} source for the stand-ins of "
                f"{target.name}, nothing was made: {'; '.join(exc.attempts)}"
            ) from None

    for tag, plan in plans.items():
        if plan.python is not None and tag not in labelled:
            fetch_python(plan.python)
    if host_architecture() != architecture.name:
        _run_script(scripts / "enable-emulation.sh", architecture.qemu)
    check_runnable(architecture)
    if via == "debootstrap":
        root_image = _debootstrap_root(cli, target, architecture, force=force)
    elif root_image is None:
        root_image = _registry_root(cli, target, architecture)
    root_layers = _layers(cli, root_image)
    for tag, plan in plans.items():
        if tag in labelled and _layers(cli, tag)[: len(root_layers)] == root_layers:
            print(f"stand-in {tag} is up to date (made from the same inputs and root)")
            continue
        py, sdk_python_of, sdk_lock = plan.python, plan.sdk_python, plan.sdk_lock
        if py is not None and py not in tarballs:
            fetch_python(py)
        buildargs = {"ROOT_IMAGE": root_image, **plan.buildargs}
        extra = [(ca_bundle, "host-ca-bundle.crt")]
        if py is not None:
            extra.append((tarballs[py], "python.tar.xz"))
        label = {INPUTS_LABEL: plan.inputs}
        scratch = f"gdal-lambda-standin-scratch:{os.getpid()}"
        with build_context(standin_dir / "Dockerfile", extra) as ctx:
            result = stream_build(
                cli,
                context=ctx,
                tag=scratch,
                buildargs=buildargs,
                platform=architecture.docker_platform,
                target=plan.stage,
                labels=label if sdk_lock is None else None,
                nocache=force,
            )
        if sdk_lock is not None:
            # The runtime's SDK in /var/runtime, on top (docker/standin/sdk.Dockerfile).
            with build_context(standin_dir / "sdk.Dockerfile", [(sdk_lock, "runtime.lock")]) as ctx:
                result = stream_build(
                    cli,
                    context=ctx,
                    tag=scratch,
                    buildargs={"STANDIN": scratch},
                    platform=architecture.docker_platform,
                    labels=label,
                    nocache=force,
                )
        sdk = runtime_sdk.pins(sdk_python_of) if sdk_python_of else None
        checks = _standin_checks(py, debian_python, sdk)
        try:
            cli.containers.run(
                scratch, ["sh", "-c", checks], remove=True, platform=architecture.docker_platform
            )
        except docker.errors.ContainerError as exc:
            cli.images.remove(scratch, noprune=True)
            output = exc.stderr.decode(errors="replace").strip() if exc.stderr else ""
            raise GdalLambdaError(
                f"the stand-in {tag} failed its checks ({checks}){': ' + output if output else ''}"
                "; no image was tagged"
            ) from None
        repository, _, name = tag.rpartition(":")
        cli.images.get(result.image_id).tag(repository, name)
        cli.images.remove(scratch, noprune=True)
        print(f"made stand-in {tag} ({architecture.docker_platform}) FROM {root_image}")
    return list(wanted)


def inputs_digest(files: Sequence[Path], values: Mapping[str, str]) -> str:
    """sha256 over the files' contents, in order, and the values: what a stand-in is made of
    (contents, not paths: the same lock elsewhere is the same input)."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    digest.update(json.dumps(dict(values), sort_keys=True).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class _Plan:
    """One stand-in to keep or make: its Python (None: the GDAL base, or Debian's python3), the
    Python whose SDK goes into /var/runtime and its lock, the build arguments but the root, the
    Dockerfile stage, and the digest of all it is made from."""

    python: str | None
    sdk_python: str | None
    sdk_lock: Path | None
    buildargs: dict[str, str]
    stage: str
    inputs: str


def _layers(cli: docker.DockerClient, image: str) -> list[str]:
    """The image's layer digests, bottom first: a stand-in descends from its root when the
    root's are the first of its own."""
    return list(cli.images.get(image).attrs["RootFS"]["Layers"])


def _local_root(
    cli: docker.DockerClient, target: Target, architecture: Architecture, via: str
) -> str | None:
    """The route's root where it is already here (nothing pulled, nothing made), else None."""
    root = (
        target.registry_base.get(architecture.name)
        if via == "registry"
        else _debootstrap_tag(target, architecture)
    )
    return root if root is not None and image_exists(cli, root) else None


def _label(cli: docker.DockerClient, tag: str) -> str | None:
    """The inputs label of the image the tag names now, or None (no such image, or no label)."""
    return labels(cli, tag).get(INPUTS_LABEL) if image_exists(cli, tag) else None


def _registry_root(cli: docker.DockerClient, target: Target, architecture: Architecture) -> str:
    """The registry route's root: the target's digest-pinned Docker Hub image, pulled."""
    pinned = target.registry_base[architecture.name]
    repository, _, digest = pinned.partition("@")
    try:
        cli.images.pull(repository, tag=digest, platform=architecture.docker_platform)
    except docker.errors.APIError as exc:
        reason = (exc.explanation or str(exc)).strip().splitlines()[0]
        raise GdalLambdaError(
            f"cannot pull {pinned} ({reason}); where no registry is in reach, make the "
            "stand-in with debootstrap instead (--via debootstrap, as root)"
        ) from None
    return pinned


def _debootstrap_preflight(target: Target, env: Mapping[str, str]) -> None:
    """What the debootstrap route needs, checked before anything is made."""
    assert target.standin_suite is not None
    for tool in ("debootstrap", "docker", "tar"):
        if shutil.which(tool) is None:
            raise GdalLambdaError(
                f"making a stand-in with debootstrap needs {tool}, which is not on PATH; "
                "on Debian: apt-get install -y debootstrap docker.io"
            )
    suites = debootstrap_suites(env)
    if not (suites / target.standin_suite).exists():
        raise GdalLambdaError(
            f"target {target.name}: debootstrap does not know the suite "
            f"{target.standin_suite!r} (its suites are the files in {suites}); "
            "fix standin_suite in matrix.toml or update debootstrap"
        )
    if os.geteuid() != 0:
        raise GdalLambdaError(
            "the debootstrap route needs root (run the same command as root), "
            "or take the registry route where Docker Hub is in reach (--via registry)"
        )


def _debootstrap_root(
    cli: docker.DockerClient, target: Target, architecture: Architecture, *, force: bool
) -> str:
    """The debootstrap route's root: scripts/make-standin.sh's minbase image of the suite,
    made once and shared by the target's stand-ins (again with ``force``)."""
    tag = _debootstrap_tag(target, architecture)
    if force or not image_exists(cli, tag):
        _run_script(
            project_root() / "scripts" / "make-standin.sh",
            "--arch",
            architecture.debian,
            "--platform",
            architecture.docker_platform,
            target.standin_suite,
            tag,
        )
    return tag


def _debootstrap_tag(target: Target, architecture: Architecture) -> str:
    """The debootstrap root's tag: one per suite and architecture."""
    assert target.standin_suite is not None
    tag = f"gdal-lambda-standin-root:{target.standin_suite}"
    return tag if architecture.name == DEFAULT_ARCH else f"{tag}-{architecture.name}"


def _run_script(script: Path, *args: str) -> None:
    """Run one of scripts/ with bash; its own lines say what failed."""
    result = subprocess.run(["bash", str(script), *args], check=False)
    if result.returncode != 0:
        raise GdalLambdaError(f"{script.name} {' '.join(args)} failed (see the lines above)")
