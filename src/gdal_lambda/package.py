"""Function packages: full (runs with no layer) or layer companion (only what a layer lacks),
and local invocation of a handler in the clean runtime.

Both kinds share the layer's assembly (scripts/assemble.sh), ELF checks, deterministic zip and
size report (gdal_lambda.layer).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import docker

from . import images, naming
from .errors import GdalLambdaError
from .fsutil import atomic_write_text
from .layer import (
    LAMBDA_UNZIPPED_LIMIT,
    MB,
    SizeReport,
    check_limits,
    collect_tree,
    finish_tree,
    gdal_provenance,
    measure_tree,
    print_report,
    tar_of,
    write_manifest,
    write_zip,
)
from .policy import PUBLIC_PREFIXES
from .runtime import TASK_ROOT, data_env, run_clean
from .versions import ROOT, Line, Matrix, Target

# Files in a source folder that describe the function rather than belong to it.
NOT_CODE = re.compile(r"^(requirements.*\.txt|event.*\.json|README.*|\..*|__pycache__)$")
STAGING = "/var/task-staging"


@dataclass
class PackageResult:
    zip_path: Path
    report: SizeReport
    bundled: list[str]
    unchanged: bool
    seconds: float


def check_handler(src: Path, handler: str) -> None:
    """``module.function`` must name a top-level function (or callable) in the source folder."""
    if not src.is_dir():
        raise GdalLambdaError(f"source folder {src} does not exist")
    module, _, function = handler.rpartition(".")
    if not module or not function:
        raise GdalLambdaError(f"handler {handler!r} is not of the form module.function")
    path = src / Path(*module.split(".")).with_suffix(".py")
    if not path.is_file():
        path = src / Path(*module.split(".")) / "__init__.py"
    if not path.is_file():
        raise GdalLambdaError(
            f"handler {handler!r}: no module {module} in {src} "
            f"(expected {module.replace('.', '/')}.py)"
        )
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        raise GdalLambdaError(
            f"handler module {path} does not parse: line {exc.lineno}: {exc.msg}"
        ) from None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function:
            return
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == function for t in node.targets
        ):
            return
    raise GdalLambdaError(f"handler {handler!r}: {path.name} defines no top-level {function}()")


def package_zip(src: Path, target: Target, out: Path | None = None) -> Path:
    if out is not None:
        return out
    suffix = "" if target.name == naming.DEFAULT_TARGET else f"-{target.name}"
    return naming.DIST / f"{src.resolve().name}{suffix}.zip"


def _code_files(src: Path) -> list[Path]:
    files = []
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if any(NOT_CODE.match(part) for part in rel.parts) or not path.is_file():
            continue
        files.append(path)
    return files


def _layer_facts(cli: docker.DockerClient, image: str) -> tuple[dict[str, str], set[str]]:
    """The distributions (name -> version) and library file names a layer image provides."""
    script = (
        "import json, pathlib, importlib.metadata as m\n"
        "d = {x.metadata['Name']: x.version for x in m.distributions(path=['/opt/python'])}\n"
        "libs = sorted(p.name for p in pathlib.Path('/opt/lib').iterdir())\n"
        "print(json.dumps({'dists': d, 'libs': libs}))\n"
    )
    code, out = images.run_in(cli, image, ["python3", "-c", script])
    if code != 0:
        raise GdalLambdaError(f"could not read the layer in {image}: {out.strip()[-300:]}")
    facts = json.loads(out.strip().splitlines()[-1])
    return facts["dists"], set(facts["libs"])


def check_conflicts(
    cli: docker.DockerClient,
    image: str,
    requirements: Path,
    layer_dists: dict[str, str],
    recipe: str,
) -> None:
    """Resolve the requirements against the layer (pip --dry-run --report): anything pip would
    install that the layer already has means a requirement conflicts with the layer's pin."""
    text = requirements.read_text(encoding="utf-8")
    script = (
        "set -e; PYTHONPATH=/opt/python PYTHONUSERBASE=/tmp/u python3 -m pip install --user "
        "--dry-run --quiet --disable-pip-version-check --report /tmp/report.json "
        "-r /tmp/gdal-lambda/requirements.txt >&2; cat /tmp/report.json"
    )
    container = cli.containers.create(image, ["-c", script], entrypoint=["bash"])
    try:
        container.put_archive("/tmp", tar_of({"gdal-lambda/requirements.txt": text.encode()}))
        container.start()
        status = container.wait()
        stdout = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
        stderr = container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
    finally:
        container.remove(force=True)
    if status.get("StatusCode", 1) != 0:
        tail = "\n".join(f"    {line}" for line in stderr.strip().splitlines()[-12:])
        raise GdalLambdaError(f"pip could not resolve {requirements}:\n{tail}")
    report = json.loads(stdout)
    layer = {
        naming.distribution_name(name): (name, version) for name, version in layer_dists.items()
    }
    for item in report.get("install", []):
        meta = item.get("metadata", {})
        name = naming.distribution_name(meta.get("name", ""))
        if name in layer:
            wanted = [
                line.strip()
                for line in text.splitlines()
                if re.match(rf"^\s*{re.escape(meta.get('name', ''))}\b", line, re.IGNORECASE)
                or naming.distribution_name(re.split(r"[\s<>=!~;\[]", line.strip())[0] or "-")
                == name
            ]
            asked = wanted[0] if wanted else f"a dependency needing {meta.get('name')}"
            raise GdalLambdaError(
                f"requirement {asked!r} needs {meta.get('name')} {meta.get('version')}, but layer "
                f"{recipe} provides {layer[name][0]} {layer[name][1]}: relax the requirement, or "
                "build a full package (without --layer)"
            )


def build_package(
    matrix: Matrix,
    line: Line,
    target: Target,
    python: str,
    src: Path,
    *,
    layer_recipe: str | None = None,
    handler: str = "handler.handler",
    out: Path | None = None,
    repo: str | None = None,
    force: bool = False,
    no_binary: str | None = None,
) -> PackageResult:
    """Build a full package (``layer_recipe`` None) or a layer companion from ``src``.

    ``no_binary``: the distributions compiled against /opt instead of taken as wheels
    (default: docker/package/Dockerfile's NO_BINARY, the packages that link GDAL/GEOS/PROJ)."""
    start = time.monotonic()
    check_handler(src, handler)
    dest = package_zip(src, target, out)
    cli = images.client()
    if layer_recipe:
        base = images.tag(line, target, python=python, recipe=layer_recipe, repo=repo)
        hint = (
            f"invoke build.layer --gdal {line.name} --python {python} --recipe {layer_recipe} "
            f"--target {target.name}"
        )
    else:
        base = images.tag(line, target, python=python, repo=repo)
        hint = f"invoke build.python --gdal {line.name} --python {python} --target {target.name}"
    if not images.image_exists(cli, base):
        raise GdalLambdaError(f"image {base} does not exist: run `{hint}` first")

    requirements = src / "requirements.txt"
    layer_dists: dict[str, str] = {}
    layer_libs: set[str] = set()
    if layer_recipe:
        layer_dists, layer_libs = _layer_facts(cli, base)
        if requirements.is_file():
            _cached_conflict_check(cli, base, requirements, layer_dists, layer_recipe)

    stem = naming.stem(line.name, python=python, recipe=layer_recipe, target=target.name)
    ref = f"{images.repository(repo)}:package-{_slug(src)}-{stem}"
    with tempfile.TemporaryDirectory(prefix="gdal-lambda-pkgctx.") as tmp:
        extra: list[tuple[Path, str]] = [
            (p, f"code/{p.relative_to(src).as_posix()}") for p in _code_files(src)
        ]
        req = Path(tmp) / "requirements.txt"
        req.write_bytes(requirements.read_bytes() if requirements.is_file() else b"")
        extra.append((req, "requirements.txt"))
        with images.build_context(ROOT / "docker" / "package" / "Dockerfile", extra) as ctx:
            (ctx / "code").mkdir(exist_ok=True)
            built = images.stream_build(
                cli,
                context=ctx,
                tag=ref,
                buildargs={
                    "BASE_IMAGE": base,
                    "MODE": "layer" if layer_recipe else "full",
                    **({"NO_BINARY": no_binary} if no_binary else {}),
                },
            )

    stamp = dest.with_name(f".{dest.name}.build.json")
    fingerprint = {"image": built.image_id, "handler": handler, "layer": layer_recipe}
    if not force and dest.is_file() and stamp.is_file():
        try:
            recorded = json.loads(stamp.read_text())
        except json.JSONDecodeError:
            recorded = {}
        if recorded.get("fingerprint") == fingerprint and recorded.get("sha256") == _sha(dest):
            print(f"{dest} is up to date (image {built.image_id[:19]} unchanged)")
            report = SizeReport(unzipped=recorded.get("unzipped", 0), zipped=dest.stat().st_size)
            return PackageResult(
                dest, report, recorded.get("bundled", []), True, time.monotonic() - start
            )

    # A companion package runs beside the layer: the layer's public libraries (libgdal, libproj,
    # libgeos_c keep their names when grafted) are there at /opt/lib.
    provided = {name for name in layer_libs if name.startswith(PUBLIC_PREFIXES)}
    with tempfile.TemporaryDirectory(prefix="gdal-lambda-pkg.") as tmp:
        tree = Path(tmp) / "task"
        collect_tree(cli, ref, STAGING, tree, python_dir=".")
        checked = finish_tree(matrix, tree, TASK_ROOT, target, provided=provided)
        bundled = sorted(checked.bundled.values())
        if not layer_recipe:
            write_manifest(
                tree,
                {
                    "package": dest.stem,
                    "target": target.name,
                    "python": python,
                    "line": line.name,
                    "components": gdal_provenance(images.labels(cli, base)),
                    "bundled_libraries": checked.bundled,
                    "satisfies_policies": checked.satisfies,
                },
            )
        report = measure_tree(tree)
        budget = LAMBDA_UNZIPPED_LIMIT
        what = f"package {dest.name}"
        if layer_recipe:
            layer_size = _layer_unzipped(line, target, python, layer_recipe)
            if layer_size is not None:
                budget -= layer_size
                what += f" (with layer {layer_recipe}: {layer_size / MB:.1f} MB)"
        check_limits(report, what, budget=budget)
        write_zip(tree, dest)
        report.zipped = dest.stat().st_size
    atomic_write_text(
        stamp,
        json.dumps(
            {
                "fingerprint": fingerprint,
                "sha256": _sha(dest),
                "unzipped": report.unzipped,
                "bundled": bundled,
            },
            indent=2,
        ),
    )
    print_report(report, dest.name)
    return PackageResult(dest, report, bundled, False, time.monotonic() - start)


def _cached_conflict_check(
    cli: docker.DockerClient,
    image: str,
    requirements: Path,
    layer_dists: dict[str, str],
    recipe: str,
) -> None:
    """The resolution needs the index; remember a passing one per (requirements, layer image)."""
    from .sources import cache_dir

    key = hashlib.sha256(requirements.read_bytes() + cli.images.get(image).id.encode()).hexdigest()
    marker = cache_dir() / "resolved" / key
    if marker.is_file():
        return
    check_conflicts(cli, image, requirements, layer_dists, recipe)
    atomic_write_text(marker, "ok\n")


def _layer_unzipped(line: Line, target: Target, python: str, recipe: str) -> int | None:
    path = naming.layer_zip(line.name, python, recipe, target.name)
    if not path.is_file():
        return None
    with zipfile.ZipFile(path) as zf:
        return sum(info.file_size for info in zf.infolist())


def _slug(src: Path) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "-", src.resolve().name.lower()).strip("-.") or "src"


def _sha(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------------
# Local invocation


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
    cli: docker.DockerClient,
    target: Target,
    python: str,
    package: Path,
    event_path: Path,
    *,
    layer_zip: Path | None = None,
    handler: str = "handler.handler",
    env: dict[str, str] | None = None,
) -> Invocation:
    """Run ``handler`` from ``package`` (and ``layer_zip`` at /opt) in the clean runtime."""
    if not package.is_file():
        raise GdalLambdaError(f"package {package} does not exist: build it with `invoke package`")
    if layer_zip is not None and not layer_zip.is_file():
        raise GdalLambdaError(f"layer zip {layer_zip} does not exist: build it with `invoke layer`")
    try:
        event = json.loads(event_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GdalLambdaError(f"event file {event_path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise GdalLambdaError(
            f"event file {event_path} is not JSON: line {exc.lineno}: {exc.msg}"
        ) from None
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
            cli, target, python, ["python3", "-c", BOOTSTRAP], opt=opt, task=task, env=environment
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
