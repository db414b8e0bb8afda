"""Pushing the images (gdal, python, layer) to a registry through the docker SDK.

    push_images("3.13", "3.12", registry="ghcr.io/acme")
    # gdal-lambda:gdal3.13            -> ghcr.io/acme/gdal-lambda:gdal3.13
    # gdal-lambda:gdal3.13-py3.12     -> ghcr.io/acme/gdal-lambda:gdal3.13-py3.12
    # gdal-lambda:gdal3.13-py3.12-geo -> ghcr.io/acme/gdal-lambda:gdal3.13-py3.12-geo

Every local image is checked before the first push. The daemon reports a refused push as an
``error`` event in the stream, not as an exception: it becomes one GdalLambdaError line, with
what to do when it is an authentication failure. Credentials: the docker client's own (``docker
login``), or GDAL_LAMBDA_REGISTRY_USERNAME / GDAL_LAMBDA_REGISTRY_PASSWORD.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn
from rich.table import Table

from . import images, naming
from .errors import GdalLambdaError
from .versions import load_matrix

ENV_REGISTRY = "GDAL_LAMBDA_REGISTRY"
ENV_USERNAME = "GDAL_LAMBDA_REGISTRY_USERNAME"
ENV_PASSWORD = "GDAL_LAMBDA_REGISTRY_PASSWORD"
_REGISTRY = re.compile(
    r"^(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::\d+)?)"
    r"(?P<path>(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)$"
)
_AUTH = re.compile(
    r"unauthori[sz]ed|authentication required|no basic auth credentials|access.*denied"
    r"|denied: |\b401\b|\b403\b|forbidden",
    re.IGNORECASE,
)

console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)


@dataclass(frozen=True)
class Image:
    local: str  # <repo>:<tag>
    build_hint: str  # the task that makes it


@dataclass
class Pushed:
    local: str
    remote: str
    digest: str = ""
    layers: dict[str, tuple[int, int]] = field(default_factory=dict)  # id -> (current, total)


def registry_host(registry: str) -> str:
    """Check ``<host>[:port][/namespace...]`` and return the host part."""
    match = _REGISTRY.match(registry.strip().rstrip("/"))
    host = match.group("host") if match else ""
    if not match or not ("." in host or ":" in host or host == "localhost"):
        raise GdalLambdaError(
            f"registry {registry!r} is not <host>/<namespace>: e.g. ghcr.io/acme, "
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/gdal, docker.io/acme, localhost:5000"
        )
    return host


def remote_ref(registry: str, local: str) -> tuple[str, str]:
    """``(<registry>/<name>, <tag>)`` for a local ``[path/]name:tag``."""
    repository, _, tag = local.rpartition(":")
    name = repository.rsplit("/", 1)[-1]
    return f"{registry.strip().rstrip('/')}/{name}", tag


def images_for(
    line: str,
    python: str,
    recipe: str = "geo",
    target: str | None = None,
    repo: str | None = None,
) -> list[Image]:
    """The three images of (line, python, recipe, target), each with the task that builds it."""
    matrix = load_matrix()
    matrix.line(line)
    tgt = matrix.target(target)
    python = tgt.check_python(python)
    suffix = f" --target {tgt.name}" if tgt.name != naming.DEFAULT_TARGET else ""
    repo_opt = f" --repository {repo}" if repo else ""
    return [
        Image(
            images.tag(line, tgt, repo=repo),
            f"invoke build.gdal --version {line}{suffix}{repo_opt}",
        ),
        Image(
            images.tag(line, tgt, python=python, repo=repo),
            f"invoke build.python --gdal {line} --python {python}{suffix}{repo_opt}",
        ),
        Image(
            images.tag(line, tgt, python=python, recipe=recipe, repo=repo),
            f"invoke build.layer --gdal {line} --python {python} --recipe {recipe}"
            f"{suffix}{repo_opt}",
        ),
    ]


def auth_from_env() -> dict[str, str] | None:
    user, password = os.environ.get(ENV_USERNAME), os.environ.get(ENV_PASSWORD)
    if user and password:
        return {"username": user, "password": password}
    if user or password:
        raise GdalLambdaError(f"set both {ENV_USERNAME} and {ENV_PASSWORD}, or neither")
    return None


def push_images(
    line: str,
    python: str,
    *,
    registry: str | None = None,
    recipe: str = "geo",
    target: str | None = None,
    repo: str | None = None,
    auth: dict[str, str] | None = None,
    cli: docker.DockerClient | None = None,
    out: Console | None = None,
) -> list[Pushed]:
    """Tag and push the gdal, python and layer images; every image is checked first."""
    out = out or console
    registry = registry or os.environ.get(ENV_REGISTRY)
    if not registry:
        raise GdalLambdaError(
            f"name the registry: --registry <host>/<namespace> (or {ENV_REGISTRY})"
        )
    host = registry_host(registry)
    wanted = images_for(line, python, recipe, target, repo)
    auth = auth if auth is not None else auth_from_env()
    cli = cli or images.client()
    for image in wanted:
        if not images.image_exists(cli, image.local):
            raise GdalLambdaError(
                f"image {image.local} does not exist: run `{image.build_hint}` first"
            )
    done: list[Pushed] = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[state]}"),
    )
    with Progress(*columns, console=out, transient=False) as progress:
        for image in wanted:
            done.append(_push_one(cli, image, registry, host, auth, progress))
    table = Table(title=f"pushed to {registry}", title_justify="left")
    table.add_column("image", no_wrap=True)
    table.add_column("digest", overflow="fold")
    for item in done:
        table.add_row(item.remote, item.digest)
    out.print(table)
    return done


def _push_one(
    cli: docker.DockerClient,
    image: Image,
    registry: str,
    host: str,
    auth: dict[str, str] | None,
    progress: Progress,
) -> Pushed:
    repository, tag = remote_ref(registry, image.local)
    remote = f"{repository}:{tag}"
    pushed = Pushed(local=image.local, remote=remote)
    task = progress.add_task(remote, total=None, state="tagging")
    try:
        cli.images.get(image.local).tag(repository, tag)
        kwargs: dict[str, Any] = {"tag": tag, "stream": True, "decode": True}
        if auth:
            kwargs["auth_config"] = auth
        for event in cli.images.push(repository, **kwargs):
            _follow(event, pushed, progress, task, host)
    except docker.errors.APIError as exc:
        raise GdalLambdaError(_refusal(host, remote, str(exc.explanation or exc))) from None
    except docker.errors.DockerException as exc:
        raise GdalLambdaError(f"pushing {remote} failed: {exc}") from None
    if not pushed.digest:
        raise GdalLambdaError(f"pushing {remote} ended without a digest from {host}")
    progress.update(task, state="pushed")
    return pushed


def _follow(
    event: dict[str, Any], pushed: Pushed, progress: Progress, task: TaskID, host: str
) -> None:
    if "error" in event or "errorDetail" in event:
        message = (event.get("errorDetail") or {}).get("message") or event.get("error") or ""
        raise GdalLambdaError(_refusal(host, pushed.remote, str(message)))
    aux = event.get("aux") or {}
    if aux.get("Digest"):
        pushed.digest = str(aux["Digest"])
    layer, status = event.get("id"), str(event.get("status", ""))
    if layer and status not in {"", "Preparing", "Waiting"}:
        detail = event.get("progressDetail") or {}
        current, total = pushed.layers.get(layer, (0, 0))
        if detail.get("total"):  # the daemon's total can be below current: keep the larger
            current = int(detail.get("current", 0))
            total = max(int(detail["total"]), current)
        if status in {"Pushed", "Layer already exists", "Mounted from"} or status.startswith(
            "Mounted"
        ):
            current = total
        pushed.layers[layer] = (current, total)
    totals = [t for _, t in pushed.layers.values()]
    progress.update(
        task,
        completed=sum(c for c, _ in pushed.layers.values()),
        total=sum(totals) or None,
        state=status.split(":")[0][:24] if status else "",
    )


def _refusal(host: str, remote: str, message: str) -> str:
    message = " ".join(message.split())
    if _AUTH.search(message):
        return (
            f"registry {host} refused {remote}: authentication failed ({message}); "
            f"log in with `docker login {host}` or set {ENV_USERNAME} and {ENV_PASSWORD}"
        )
    return f"registry {host} refused {remote}: {message}"
