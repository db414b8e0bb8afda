"""Pushing the images (gdal, python, layer) to a registry through the docker SDK.

    push_images(Variant.resolve(matrix, line="3.13", python="3.12", env=os.environ),
                registry="ghcr.io/acme", env=os.environ)
    # gdal-lambda:gdal3.13            -> ghcr.io/acme/gdal-lambda:gdal3.13
    # gdal-lambda:gdal3.13-py3.12     -> ghcr.io/acme/gdal-lambda:gdal3.13-py3.12
    # gdal-lambda:gdal3.13-py3.12-geo -> ghcr.io/acme/gdal-lambda:gdal3.13-py3.12-geo

Every local image is checked before the first push. The daemon reports a refused push as an
``error`` event in the stream, not as an exception: it becomes one GdalLambdaError line, with
what to do when it is an authentication failure. Credentials: the docker client's own (``docker
login``), or GDAL_LAMBDA_REGISTRY_USERNAME / GDAL_LAMBDA_REGISTRY_PASSWORD.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.auth
import docker.errors
import docker.utils
import requests
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn
from rich.table import Table

from . import containers
from .errors import GdalLambdaError, Kind, MissingImage
from .limits import IMAGE_LIMIT, fmt_mib
from .variant import Variant

ENV_REGISTRY = "GDAL_LAMBDA_REGISTRY"
ENV_USERNAME = "GDAL_LAMBDA_REGISTRY_USERNAME"
ENV_PASSWORD = "GDAL_LAMBDA_REGISTRY_PASSWORD"
_AUTH = re.compile(
    r"unauthori[sz]ed|authentication required|no basic auth credentials|access.*denied"
    r"|denied: |\b401\b|\b403\b|forbidden",
    re.IGNORECASE,
)

console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)


@dataclass(frozen=True)
class Image:
    local: str  # <repo>:<tag>
    kind: Kind  # the step that makes it: gdal, python or layer


@dataclass
class Pushed:
    local: str
    remote: str
    digest: str = ""
    layers: dict[str, tuple[int, int]] = field(default_factory=dict)  # id -> (current, total)


def _valid_component(part: str) -> bool:
    """A repository path component: lower-case letters and digits, '.', '_' or '-' inside."""
    core = part.replace(".", "").replace("_", "").replace("-", "")
    return bool(part) and part == part.lower() and core.isalnum() and core.isascii()


def registry_host(registry: str) -> str:
    """Check ``<host>[:port][/namespace...]`` and return the host part.

    The host/namespace split is the docker SDK's (``docker.auth.resolve_repository_name``): a
    first component with a '.' or ':', or ``localhost``, is a host; without one it would be
    Docker Hub, which must be named (docker.io/acme)."""
    text = registry.strip().rstrip("/")
    bare = "/" not in text  # a host alone (localhost:5000): ask about a name below it
    try:
        host, namespace = docker.auth.resolve_repository_name(f"{text}/x" if bare else text)
    except docker.errors.InvalidRepository:
        host, namespace = "", ""
    parts = [] if bare else namespace.split("/")
    explicit = bool(host) and text.startswith(f"{host}/" if not bare else host)
    if not explicit or not all(_valid_component(p) for p in parts):
        raise GdalLambdaError(
            f"registry {registry!r} is not <host>/<namespace>: e.g. ghcr.io/acme, "
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/gdal, docker.io/acme, localhost:5000"
        )
    return host


def remote_ref(registry: str, local: str) -> tuple[str, str]:
    """``(<registry>/<name>, <tag>)`` for a local ``[path/]name:tag``."""
    repository, tag = docker.utils.parse_repository_tag(local)
    name = repository.rsplit("/", 1)[-1]
    return f"{registry.strip().rstrip('/')}/{name}", tag or "latest"


def images_for(variant: Variant) -> list[Image]:
    """The three images of a variant, each with the kind of step that builds it."""
    return [
        Image(variant.gdal_tag, Kind.GDAL),
        Image(variant.python_tag, Kind.PYTHON),
        Image(variant.layer_tag, Kind.LAYER),
    ]


def auth_from_env(env: Mapping[str, str]) -> dict[str, str] | None:
    user, password = env.get(ENV_USERNAME), env.get(ENV_PASSWORD)
    if user and password:
        return {"username": user, "password": password}
    if user or password:
        raise GdalLambdaError(f"set both {ENV_USERNAME} and {ENV_PASSWORD}, or neither")
    return None


def _destination(
    registry: str | None, env: Mapping[str, str] | None, auth: dict[str, str] | None
) -> tuple[str, str, dict[str, str] | None]:
    """(registry, its host, credentials): the option, else ``env``'s $GDAL_LAMBDA_REGISTRY and
    credentials (``env`` is the caller's to pass: tasks.py gives the process environment)."""
    env = env if env is not None else {}
    registry = registry if registry is not None else env.get(ENV_REGISTRY)
    if not registry:
        raise GdalLambdaError(
            f"name the registry: --registry <host>/<namespace> (or {ENV_REGISTRY})"
        )
    return registry, registry_host(registry), auth if auth is not None else auth_from_env(env)


def _progress(out: Console) -> Progress:
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn())
    return Progress(*columns, TextColumn("{task.fields[state]}"), console=out, transient=False)


def push_images(
    variant: Variant,
    *,
    registry: str | None = None,
    env: Mapping[str, str] | None = None,
    auth: dict[str, str] | None = None,
    cli: docker.DockerClient | None = None,
    out: Console | None = None,
) -> list[Pushed]:
    """Tag and push the gdal, python and layer images; every image is checked first.

    ``env`` (the caller's to pass: tasks.py gives the process environment; default none)
    gives $GDAL_LAMBDA_REGISTRY when ``registry`` is None, and the credentials when ``auth`` is
    None."""
    out = out if out is not None else console
    registry, host, auth = _destination(registry, env, auth)
    wanted = images_for(variant)
    cli = cli if cli is not None else containers.client()
    for image in wanted:
        if not containers.image_exists(cli, image.local):
            raise MissingImage(variant, image.kind, f"image {image.local}")
    done: list[Pushed] = []
    with _progress(out) as progress:
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


# ------------------------------------------------------------------------------------------------
# One function image (`invoke push --image`)


@dataclass(frozen=True)
class ImageSizes:
    uncompressed: int  # every layer, as Lambda counts its 10 GB
    compressed: int | None  # the layers' blobs in the registry; None where it would not say


def push_image(
    local: str,
    *,
    registry: str | None = None,
    env: Mapping[str, str] | None = None,
    auth: dict[str, str] | None = None,
    cli: docker.DockerClient | None = None,
    out: Console | None = None,
) -> tuple[Pushed, ImageSizes]:
    """Tag and push one local image (a function image) to ``registry``, as push_images does the
    three build images, then report its sizes against Lambda's image limit."""
    out = out if out is not None else console
    registry, host, auth = _destination(registry, env, auth)
    cli = cli if cli is not None else containers.client()
    if not containers.image_exists(cli, local):
        raise GdalLambdaError(f"image {local} does not exist")
    with _progress(out) as progress:
        pushed = _push_one(cli, Image(local, "function-image"), registry, host, auth, progress)
    size = int(cli.images.get(local).attrs.get("Size", 0))
    sizes = ImageSizes(size, registry_sizes(pushed.remote, pushed.digest, auth))
    compressed = fmt_mib(sizes.compressed) if sizes.compressed else f"not given by {host}"
    out.print(f"pushed {pushed.remote}@{pushed.digest}")
    out.print(
        f"image size: {fmt_mib(sizes.uncompressed)} uncompressed "
        f"(Lambda's limit {fmt_mib(IMAGE_LIMIT)}), {compressed} compressed in the registry"
    )
    return pushed, sizes


def registry_sizes(remote: str, digest: str, auth: dict[str, str] | None) -> int | None:
    """The compressed size of a pushed image: its manifest's layer sizes, asked of the registry
    (plain HTTP for a loopback registry, HTTPS otherwise); None where it does not answer."""
    host, _, path = remote.partition("/")
    repository = path.rsplit(":", 1)[0]
    scheme = "http" if re.match(r"^(localhost|127\.[0-9.]+)(:\d+)?$", host) else "https"
    accept = (
        "application/vnd.docker.distribution.manifest.v2+json, "
        "application/vnd.oci.image.manifest.v1+json"
    )
    credentials = (auth["username"], auth["password"]) if auth else None
    try:
        reply = requests.get(
            f"{scheme}://{host}/v2/{repository}/manifests/{digest}",
            headers={"Accept": accept},
            auth=credentials,
            timeout=30,
        )
        reply.raise_for_status()
        layers = reply.json().get("layers", [])
    except (requests.RequestException, ValueError):
        return None
    return sum(int(layer.get("size", 0)) for layer in layers) or None
