"""Running a handler locally, the way Lambda would: the package at /var/task, a layer at /opt,
in the target's clean runtime image (read-only, /tmp a tmpfs)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import docker

from . import containers
from .errors import GdalLambdaError, Kind, MissingZip
from .runtime import TASK_ROOT, data_env, run_clean
from .variant import Variant


def read_event(path: Path) -> object:
    """The JSON event in ``path``, or one GdalLambdaError saying what is wrong with the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GdalLambdaError(f"event file {path} does not exist") from None
    except IsADirectoryError:
        raise GdalLambdaError(f"event file {path} is a directory: name a JSON file") from None
    except UnicodeDecodeError:
        raise GdalLambdaError(
            f"event file {path} is not text (not UTF-8): name a JSON file"
        ) from None
    except OSError as exc:
        raise GdalLambdaError(f"event file {path} cannot be read: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise GdalLambdaError(
            f"event file {path} is not JSON: line {exc.lineno}: {exc.msg}"
        ) from None


def extract_zip(archive: Path, dest: Path) -> None:
    """Unpack a zip the way Lambda does: modes kept, symbolic links restored as links."""
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            path = dest / info.filename
            if not path.resolve().is_relative_to(dest.resolve()):
                raise GdalLambdaError(f"{archive}: entry {info.filename!r} escapes the archive")
            mode = info.external_attr >> 16
            if info.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if stat.S_ISLNK(mode):
                os.symlink(zf.read(info).decode(), path)
                continue
            with zf.open(info) as src, path.open("wb") as out:
                shutil.copyfileobj(src, out)
            path.chmod(stat.S_IMODE(mode) or 0o644)


BOOTSTRAP = r"""
import importlib, json, os, sys, time, traceback, uuid

class LambdaContext:
    def __init__(self, timeout_ms):
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = "$LATEST"
        self.invoked_function_arn = "arn:aws:lambda:%s:000000000000:function:%s" % (
            os.environ["AWS_REGION"], self.function_name)
        self.memory_limit_in_mb = int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = "/aws/lambda/" + self.function_name
        self.log_stream_name = time.strftime("%Y/%m/%d") + "/[$LATEST]local"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_ms / 1000.0

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))

module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
event = json.loads(os.environ["GDAL_LAMBDA_EVENT"])
context = LambdaContext(int(os.environ.get("GDAL_LAMBDA_TIMEOUT_MS", "30000")))
try:
    function = getattr(importlib.import_module(module_name), function_name)
    result = function(event, context)
    sys.stdout.write("\n@@gdal-lambda-result@@" + json.dumps(result) + "\n")
except Exception as exc:
    sys.stdout.write("\n@@gdal-lambda-error@@" + json.dumps({
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exc(),
    }) + "\n")
    sys.exit(1)
"""


@dataclass
class Invocation:
    ok: bool
    result: object
    error: dict[str, str] | None
    log: str


def invoke_local(
    cli: docker.DockerClient | None,
    variant: Variant,
    package: Path,
    event_path: Path,
    *,
    layer_zip: Path | None = None,
    handler: str = "handler.handler",
    env: dict[str, str] | None = None,
) -> Invocation:
    """Run ``handler`` from ``package`` (and ``layer_zip`` at /opt) in the variant's clean
    runtime. ``cli`` None: a client made once the inputs are checked."""
    if not package.is_file():
        raise MissingZip(variant, Kind.PACKAGE, f"package {package}")
    if layer_zip is not None and not layer_zip.is_file():
        raise MissingZip(variant, Kind.LAYER_ZIP, f"layer zip {layer_zip}")
    event = read_event(event_path)
    cli = cli if cli is not None else containers.client()
    with tempfile.TemporaryDirectory(prefix="gdal-lambda-run.") as tmp:
        task = Path(tmp) / "task"
        extract_zip(package, task)
        opt = None
        if layer_zip is not None:
            opt = Path(tmp) / "opt"
            extract_zip(layer_zip, opt)
        environment = {
            **(data_env("/opt") if layer_zip is not None else data_env(TASK_ROOT)),
            "_HANDLER": handler,
            "AWS_LAMBDA_FUNCTION_NAME": package.stem,
            "GDAL_LAMBDA_EVENT": json.dumps(event),
            **(env or {}),
        }
        code, log = run_clean(
            cli,
            variant,
            ["python3", "-c", BOOTSTRAP],
            opt=opt,
            task=task,
            env=environment,
        )
    for marker, ok in (("@@gdal-lambda-result@@", True), ("@@gdal-lambda-error@@", False)):
        if marker in log:
            before, _, payload = log.rpartition(marker)
            data = json.loads(payload.strip().splitlines()[0])
            return Invocation(ok, data if ok else None, None if ok else data, before)
    return Invocation(
        False,
        None,
        {"errorType": "Runtime.ExitError", "errorMessage": f"exit {code}", "stackTrace": ""},
        log,
    )
