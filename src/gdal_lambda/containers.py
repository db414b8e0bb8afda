"""Throw-away containers through the docker SDK: start one, copy files in, collect, remove.

    ran = run(cli, image, ["bash", "-c", script], files={"work/in.txt": b"..."})
    ran.status, ran.output            # exit code, stdout and stderr interleaved
    ran = run(cli, image, [...], collect="/tmp/out", into=Path("tree"))   # /tmp/out -> tree

The command's first word becomes the entrypoint: the Lambda base images have an entrypoint of
their own (the runtime bootstrap) that would otherwise wrap it.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors

from .errors import GdalLambdaError


def client(env: dict[str, str] | None = None) -> docker.DockerClient:
    """A docker SDK client, or one clear error saying how to start the daemon."""
    env = dict(os.environ) if env is None else env
    try:
        cli = docker.from_env(timeout=600, environment=env)
        cli.ping()
    except docker.errors.DockerException as exc:
        where = env.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise GdalLambdaError(
            f"cannot reach the Docker daemon at {where} ({reason[:160]}); start it "
            "(`sudo systemctl start docker`, or `sudo dockerd &`) or set DOCKER_HOST"
        ) from None
    return cli


def image_exists(cli: docker.DockerClient, ref: str) -> bool:
    try:
        cli.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def labels(cli: docker.DockerClient, ref: str) -> dict[str, str]:
    return dict(cli.images.get(ref).labels or {})


def tar_of(files: dict[str, bytes | Path]) -> bytes:
    """An uncompressed tar of ``{name: content or file}``; ``*.sh`` files are executable."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in sorted(files.items()):
            data = content.read_bytes() if isinstance(content, Path) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.endswith(".sh") else 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@dataclass(frozen=True)
class Ran:
    status: int
    output: str  # stdout and stderr, interleaved as written
    stdout: str
    stderr: str


def run(
    cli: docker.DockerClient,
    image: str,
    command: list[str],
    *,
    files: dict[str, bytes | Path] | None = None,
    files_at: str = "/tmp",
    collect: str | None = None,
    into: Path | None = None,
    **kwargs: Any,
) -> Ran:
    """Run ``command`` in a new container of ``image`` and remove it.

    ``files`` are copied in below ``files_at`` before it starts. When it exits 0, ``collect``
    (a folder in the container) is copied out to ``into``, replacing what was there. Other
    keyword arguments go to ``containers.create`` (environment, volumes, read_only...).
    """
    container = cli.containers.create(image, command[1:], entrypoint=command[:1], **kwargs)
    try:
        if files:
            container.put_archive(files_at, tar_of(files))
        container.start()
        status = int(container.wait().get("StatusCode", 1))

        def logs(out: bool, err: bool) -> str:
            return container.logs(stdout=out, stderr=err).decode("utf-8", "replace")

        ran = Ran(status, logs(True, True), logs(True, False), logs(False, True))
        if status == 0 and collect is not None and into is not None:
            _copy_out(container, collect, into)
    finally:
        container.remove(force=True)
    return ran


def _copy_out(container: Any, path: str, dest: Path) -> None:
    """The folder ``path`` of a container, extracted to ``dest`` (made anew)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    stream, _ = container.get_archive(path)
    with (
        tempfile.TemporaryDirectory(prefix=".collect.", dir=dest.parent) as tmp,
        tempfile.TemporaryFile() as spool,
    ):
        for chunk in stream:
            spool.write(chunk)
        spool.seek(0)
        with tarfile.open(fileobj=spool, mode="r|") as tar:
            tar.extractall(tmp, filter="tar")
        if dest.exists():
            shutil.rmtree(dest)
        (Path(tmp) / Path(path).name).rename(dest)


def created(cli: docker.DockerClient, image: str) -> datetime:
    """When ``image`` was built (its Created time, to the second): a stable timestamp for what
    is made from it."""
    text = str(cli.images.get(image).attrs.get("Created", ""))
    try:
        return datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return datetime(1980, 1, 1, tzinfo=UTC)
