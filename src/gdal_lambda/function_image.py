"""Lambda function images: the same stack as the layer, as an image Lambda can run.

    built = build_image(variant, Path("examples/package"), handler="handler.handler")
    built.tag              # gdal-lambda-fn:package-gdal3.13
    outcome = invoke_image(cli, variant, built.tag, event)   # through the Runtime API
    push_image(built.tag, registry="localhost:5000/acme")    # and the size report

The image is the target's Python runtime image, ``/opt`` unpacked from the layer zip (so it is
grafted and policy-checked exactly as the zip, byte for byte), the companion package
``invoke package --layer`` makes (only what the layer lacks: no second GDAL) in ``/var/task``,
and the handler as CMD. On a stand-in the runtime interface client is AWS's ``awslambdaric``,
hash-locked (docker/function/requirements.txt); AWS's python images carry their own, and their
runtime interface emulator.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests

from . import containers, images, locks, naming, package
from .errors import GdalLambdaError, Kind, MissingZip
from .limits import IMAGE_LIMIT, fmt_mib
from .local import extract_zip
from .project import project_root
from .provenance import LABEL_PREFIX
from .runtime import LAYER_ROOT, data_env, lambda_env
from .runtime_api import Outcome, RuntimeApi
from .variant import DEFAULT_RECIPE, Variant

REPOSITORY = "gdal-lambda-fn"
REQUIREMENTS = Path("docker") / "function" / "requirements.txt"
# AWS's python images start /lambda-entrypoint.sh: the runtime interface emulator off Lambda.
AWS_ENTRYPOINT = "/lambda-entrypoint.sh"
STANDIN_ENTRYPOINT = ["python3", "-m", "awslambdaric"]
RIE_PORT = "8080/tcp"
RIE_PATH = "/2015-03-31/functions/function/invocations"


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    image_id: str
    size: int  # uncompressed, every layer
    seconds: float


def image_tag(variant: Variant, src: Path, repository: str = REPOSITORY) -> str:
    """``gdal-lambda-fn:<folder>-gdal3.13[-py3.12][-<recipe>][-<target>][-arm64]``: the Python
    and the recipe appear when they are not the target's defaults."""
    python = variant.python if variant.python != variant.target.check_python(None) else None
    recipe = variant.recipe if variant.recipe != DEFAULT_RECIPE else None
    stem = naming.stem(
        variant.line.name,
        python=python,
        recipe=recipe,
        target=variant.named_target,
        arch=variant.arch,
    )
    return f"{repository}:{package.slug(src)}-{stem}"


def check_size(size: int, what: str) -> None:
    """Lambda runs images up to 10 GB uncompressed: one error above that."""
    if size > IMAGE_LIMIT:
        raise GdalLambdaError(
            f"{what} is {fmt_mib(size)} uncompressed, over Lambda's {fmt_mib(IMAGE_LIMIT)} "
            "image limit: drop requirements or move data out of the image"
        )


def build_image(
    variant: Variant,
    src: Path,
    *,
    handler: str = "handler.handler",
    repository: str = REPOSITORY,
    echo: Any = None,
) -> BuiltImage:
    """Build the function image of ``src`` for the variant (its target, Python, recipe and
    architecture). Every input is checked before anything is built."""
    start = time.monotonic()
    package.check_handler(src, handler)
    layer_zip = variant.layer_zip()
    if not layer_zip.is_file():
        raise MissingZip(variant, Kind.LAYER_ZIP, f"layer zip {layer_zip}")
    aws_base = not variant.target.is_standin
    runtime_lock = (
        None if aws_base else locks.require(project_root() / REQUIREMENTS, variant.python)
    )
    cli = containers.client()
    images.require(cli, variant, Kind.RUNTIME, variant.runtime_image)
    tag = image_tag(variant, src, repository)
    with tempfile.TemporaryDirectory(prefix="gdal-lambda-image.") as tmp:
        work = Path(tmp)
        companion = package.build_package(
            variant, src, with_layer=True, handler=handler, out=work / "task.zip", force=True
        )
        extract_zip(companion.zip_path, work / "task")
        extract_zip(layer_zip, work / "opt")
        lock = work / "runtime.lock"
        lock.write_bytes(runtime_lock.read_bytes() if runtime_lock else b"")
        dockerfile = project_root() / "docker" / "function" / "Dockerfile"
        provenance = {
            k: v
            for k, v in containers.labels(cli, variant.layer_tag).items()
            if k.startswith(LABEL_PREFIX)
        }
        labels = {
            **provenance,
            f"{LABEL_PREFIX}.handler": handler,
            f"{LABEL_PREFIX}.recipe": variant.recipe,
            f"{LABEL_PREFIX}.python": variant.python,
            f"{LABEL_PREFIX}.layer-zip.sha256": package.sha256_of(layer_zip),
        }
        env = {**data_env(LAYER_ROOT), "PYTHONPATH": lambda_env(variant)["PYTHONPATH"]}
        with images.build_context(dockerfile) as ctx:
            for name in ("opt", "task"):
                shutil.copytree(work / name, ctx / name, symlinks=True)
            shutil.copy2(lock, ctx / "runtime.lock")
            lines = [] if aws_base else [f"ENTRYPOINT {json.dumps(STANDIN_ENTRYPOINT)}"]
            lines.append(f"CMD {json.dumps([handler])}")
            with (ctx / "Dockerfile").open("a", encoding="utf-8") as out:
                out.write("\n".join(lines) + "\n")
            built = images.stream_build(
                cli,
                context=ctx,
                tag=tag,
                buildargs={
                    "BASE_IMAGE": variant.runtime_image,
                    "PYTHONPATH": env["PYTHONPATH"],
                    "GDAL_DATA": env["GDAL_DATA"],
                    "PROJ_DATA": env["PROJ_DATA"],
                },
                platform=variant.platform,
                labels=labels,
                echo=echo,
            )
    size = int(cli.images.get(built.image_id).attrs.get("Size", 0))
    check_size(size, f"image {tag}")
    return BuiltImage(tag, built.image_id, size, time.monotonic() - start)


# ------------------------------------------------------------------------------------------------
# Running an image the way Lambda does


def _uses_emulator(cli: docker.DockerClient, image: str) -> bool:
    config = cli.images.get(image).attrs.get("Config") or {}
    return AWS_ENTRYPOINT in (config.get("Entrypoint") or [])


def invoke_image(
    cli: docker.DockerClient,
    variant: Variant,
    image: str,
    event: object,
    *,
    env: dict[str, str] | None = None,
    timeout_s: float = 60.0,
) -> tuple[Outcome, str]:
    """Invoke ``image`` once with ``event``; the outcome the function posted and its log.

    A stand-in image's ``awslambdaric`` talks to this project's Runtime API endpoint; an AWS
    python image's runtime interface emulator is called over its invoke URL instead. A function
    that exits or times out without posting is an error naming the log's last lines."""
    if not containers.image_exists(cli, image):
        raise GdalLambdaError(f"image {image} does not exist")
    name = image.rsplit(":", 1)[-1]
    environment = {
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": lambda_env(variant)["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"],
        "AWS_REGION": lambda_env(variant)["AWS_REGION"],
        "AWS_DEFAULT_REGION": lambda_env(variant)["AWS_DEFAULT_REGION"],
        **(env or {}),
    }
    if _uses_emulator(cli, image):
        return _invoke_emulator(cli, variant, image, event, environment, timeout_s)
    with RuntimeApi(event, function_name=name, timeout_s=timeout_s) as api:
        container = cli.containers.create(
            image,
            environment={**environment, "AWS_LAMBDA_RUNTIME_API": api.address},
            network_mode="host",
            read_only=True,
            tmpfs={"/tmp": "rw,size=512m"},
            platform=variant.platform,
        )
        try:
            container.start()
            deadline = time.monotonic() + timeout_s
            while not api.finished() and time.monotonic() < deadline:
                container.reload()
                if container.status == "exited":
                    api.wait(0.5)  # a post may still be on its way
                    break
                api.wait(0.2)
            log = container.logs().decode("utf-8", "replace")
        finally:
            container.remove(force=True)
    if api.outcome is None:
        tail = " | ".join(line.strip() for line in log.strip().splitlines()[-5:])
        raise GdalLambdaError(
            f"image {image} posted no result within {timeout_s:.0f} s"
            + (f"; its log ends: {tail}" if tail else "")
        )
    return api.outcome, log


def _invoke_emulator(
    cli: docker.DockerClient,
    variant: Variant,
    image: str,
    event: object,
    environment: dict[str, str],
    timeout_s: float,
) -> tuple[Outcome, str]:
    """AWS's images: the runtime interface emulator on port 8080, called on its invoke URL."""
    container = cli.containers.run(
        image,
        detach=True,
        environment=environment,
        ports={RIE_PORT: ("127.0.0.1", None)},
        platform=variant.platform,
    )
    try:
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"][RIE_PORT][0]["HostPort"]
        url = f"http://127.0.0.1:{port}{RIE_PATH}"
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                reply = requests.post(url, json=event, timeout=timeout_s)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise GdalLambdaError(f"the emulator in {image} did not answer") from None
                time.sleep(0.2)
        payload = reply.json() if reply.content else None
        failed = bool(reply.headers.get("X-Amz-Function-Error")) or (
            isinstance(payload, dict) and "errorType" in payload
        )
        log = container.logs().decode("utf-8", "replace")
    finally:
        container.remove(force=True)
    return Outcome("error" if failed else "response", payload), log
