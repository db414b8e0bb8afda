"""Function packages: full (runs with no layer) or layer companion (only what a layer lacks).

Both kinds share the layer's assembly (scripts/assemble.sh), ELF checks, deterministic zip and
size report (gdal_lambda.assembly). Running a handler locally is gdal_lambda.local.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import docker

from . import containers, images, locks, naming, sbom, wheels
from .assembly import (
    LAMBDA_UNZIPPED_LIMIT,
    SizeReport,
    assemble,
    print_report,
    write_manifest,
    zip_tree,
)
from .emulation import check_runnable
from .errors import GdalLambdaError, Kind
from .fsutil import atomic_write_text
from .limits import fmt_mib
from .policy import PUBLIC_PREFIXES
from .project import project_root
from .provenance import gdal_provenance
from .runtime import STAGING, TASK_ROOT, WORK_DIR
from .sources import cache_dir
from .variant import Variant

# Files in a source folder that describe the function rather than belong to it.
NOT_CODE = re.compile(r"^(requirements.*\.txt|event.*\.json|README.*|\..*|__pycache__)$")


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


def package_zip(src: Path, variant: Variant, out: Path | None = None) -> Path:
    """``dist/<folder>[-<target>][-arm64].zip`` unless ``out`` names it."""
    if out is not None:
        return out
    suffix = f"-{variant.named_target}" if variant.named_target else ""
    if variant.arch != naming.DEFAULT_ARCH:
        suffix += f"-{variant.arch}"
    return naming.dist_dir() / f"{src.resolve().name}{suffix}.zip"


def _code_files(src: Path) -> list[Path]:
    files = []
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if any(NOT_CODE.match(part) for part in rel.parts) or not path.is_file():
            continue
        files.append(path)
    return files


def _code_in(src: Path) -> dict[str, bytes | Path]:
    """The source folder's code as the package image holds it (WORK_DIR/code): a requirement
    may name a wheel or folder of it (``file:///tmp/gdal-lambda/code/...``)."""
    work = PurePosixPath(WORK_DIR)
    if not src.is_dir():
        return {}
    return {f"{work.name}/code/{p.relative_to(src).as_posix()}": p for p in _code_files(src)}


def _layer_facts(cli: docker.DockerClient, image: str) -> tuple[dict[str, str], set[str]]:
    """The distributions (name -> version) and library file names a layer image provides."""
    script = (
        "import json, pathlib, importlib.metadata as m\n"
        "d = {x.metadata['Name']: x.version for x in m.distributions(path=['/opt/python'])}\n"
        "libs = sorted(p.name for p in pathlib.Path('/opt/lib').iterdir())\n"
        "print(json.dumps({'dists': d, 'libs': libs}))\n"
    )
    ran = containers.run(cli, image, ["python3", "-c", script])
    if ran.status != 0:
        raise GdalLambdaError(f"could not read the layer in {image}: {ran.output.strip()[-300:]}")
    facts = json.loads(ran.output.strip().splitlines()[-1])
    return facts["dists"], set(facts["libs"])


def check_conflicts(
    cli: docker.DockerClient,
    image: str,
    requirements: Path,
    layer_dists: dict[str, str],
    recipe: str,
) -> None:
    """Resolve the requirements against the layer (pip --dry-run --report): anything pip would
    install that the layer already has means a requirement conflicts with the layer's pin.

    A requirement that itself excludes the layer's version is named first, without pip: pip
    would fetch and prepare the version it allows, which for a package with no wheel for the
    target's Python means compiling it (numpy<2 on Python 3.13: minutes, a quarter of an hour
    under emulation) only to report the same conflict."""
    text = requirements.read_text(encoding="utf-8")
    check_direct_conflicts(text, layer_dists, recipe)
    script = (
        "set -e; PYTHONPATH=/opt/python PYTHONUSERBASE=/tmp/u python3 -m pip install --user "
        "--dry-run --quiet --disable-pip-version-check --report /tmp/report.json "
        f"-r {WORK_DIR}/requirements.txt >&2; cat /tmp/report.json"
    )
    work = PurePosixPath(WORK_DIR)
    ran = containers.run(
        cli,
        image,
        ["bash", "-c", script],
        files={f"{work.name}/requirements.txt": text.encode(), **_code_in(requirements.parent)},
        files_at=str(work.parent),
    )
    if ran.status != 0:
        tail = "\n".join(f"    {line}" for line in ran.stderr.strip().splitlines()[-12:])
        raise GdalLambdaError(f"pip could not resolve {requirements}:\n{tail}")
    report = json.loads(ran.stdout)
    layer = _by_distribution(layer_dists)
    for item in report.get("install", []):
        meta = item.get("metadata", {})
        name = naming.distribution_name(meta.get("name", ""))
        if name in layer:
            wanted = [
                line.strip()
                for line in text.splitlines()
                if (req := naming.requirement(line)) is not None
                and naming.distribution_name(req.name) == name
            ]
            asked = wanted[0] if wanted else f"a dependency needing {meta.get('name')}"
            raise GdalLambdaError(
                f"requirement {asked!r} needs {meta.get('name')} {meta.get('version')}, but layer "
                f"{recipe} provides {layer[name][0]} {layer[name][1]}: relax the requirement, or "
                "build a full package (without --layer)"
            )


def _by_distribution(layer_dists: dict[str, str]) -> dict[str, tuple[str, str]]:
    """The layer's distributions by canonical name: name -> (its own spelling, version)."""
    return {
        naming.distribution_name(name): (name, version) for name, version in layer_dists.items()
    }


def check_direct_conflicts(text: str, layer_dists: dict[str, str], recipe: str) -> None:
    """Raise on the first requirement whose specifier excludes the version of that distribution
    the layer provides. Lines with an environment marker are left to pip, which evaluates it
    in the target's own Python."""
    layer = _by_distribution(layer_dists)
    for line in text.splitlines():
        req = naming.requirement(line)
        if req is None or req.marker is not None:
            continue
        name = naming.distribution_name(req.name)
        if name not in layer:
            continue
        provided, version = layer[name]
        if not req.specifier.contains(version, prereleases=True):
            raise GdalLambdaError(
                f"requirement {naming.requirement_text(line)!r} excludes {provided} {version}, "
                f"which layer {recipe} provides: relax the requirement, or build a full package "
                "(without --layer)"
            )


def build_package(
    variant: Variant,
    src: Path,
    *,
    with_layer: bool = False,
    handler: str = "handler.handler",
    out: Path | None = None,
    force: bool = False,
    no_binary: str | None = None,
) -> PackageResult:
    """Build a full package, or (``with_layer``) a companion of the variant's layer recipe.

    ``no_binary``: the distributions compiled against /opt instead of taken as wheels
    (default: matrix.toml's compiled_against_opt, the packages that link GDAL/GEOS/PROJ)."""
    start = time.monotonic()
    check_handler(src, handler)
    dest = package_zip(src, variant, out)
    check_runnable(variant.architecture)
    cli = containers.client()
    recipe = variant.recipe if with_layer else None
    base = variant.layer_tag if with_layer else variant.python_tag
    images.require(cli, variant, Kind.LAYER if with_layer else Kind.PYTHON, base)

    requirements = src / "requirements.txt"
    layer_dists: dict[str, str] = {}
    layer_libs: set[str] = set()
    if recipe:
        layer_dists, layer_libs = _layer_facts(cli, base)
        if requirements.is_file():
            # What excludes the layer's version is named before pip prepares anything.
            check_direct_conflicts(requirements.read_text(encoding="utf-8"), layer_dists, recipe)
    if no_binary is None:
        no_binary = ",".join(variant.matrix.compiled_against_opt)
    if requirements.is_file() and requirements.read_text(encoding="utf-8").strip():
        # No wheel with its own GDAL, PROJ or GEOS beside /opt's: compiled against it, or refused.
        no_binary = _cached_wheel_check(cli, base, src, requirements, no_binary, bool(recipe))
    if recipe and requirements.is_file():
        _cached_conflict_check(cli, base, requirements, layer_dists, recipe)
    ref = f"{variant.repository}:package-{slug(src)}-{variant.stem(recipe=with_layer)}"
    with tempfile.TemporaryDirectory(prefix="gdal-lambda-pkgctx.") as tmp:
        extra: list[tuple[Path, str]] = [
            (p, f"code/{p.relative_to(src).as_posix()}") for p in _code_files(src)
        ]
        req = Path(tmp) / "requirements.txt"
        req.write_bytes(requirements.read_bytes() if requirements.is_file() else b"")
        extra.append((req, "requirements.txt"))
        dockerfile = project_root() / "docker" / "package" / "Dockerfile"
        with images.build_context(dockerfile, extra) as ctx:
            (ctx / "code").mkdir(exist_ok=True)
            built = images.stream_build(
                cli,
                context=ctx,
                tag=ref,
                buildargs={
                    "WORK_DIR": WORK_DIR,
                    "STAGING": STAGING,
                    "BASE_IMAGE": base,
                    "MODE": "layer" if recipe else "full",
                    "NO_BINARY": no_binary,
                },
            )

    stamp = dest.with_name(f".{dest.name}.build.json")
    fingerprint = {"image": built.image_id, "handler": handler, "layer": recipe}
    if not force and dest.is_file() and stamp.is_file():
        try:
            recorded = json.loads(stamp.read_text())
        except json.JSONDecodeError:
            recorded = {}
        if recorded.get("fingerprint") == fingerprint and recorded.get("sha256") == sha256_of(dest):
            print(f"{dest} is up to date (image {built.image_id[:19]} unchanged)")
            report = SizeReport(unzipped=recorded.get("unzipped", 0), zipped=dest.stat().st_size)
            return PackageResult(
                dest, report, recorded.get("bundled", []), True, time.monotonic() - start
            )

    with tempfile.TemporaryDirectory(prefix="gdal-lambda-pkg.") as tmp:
        tree = Path(tmp) / "task"
        assembled = assemble(
            cli,
            ref,
            STAGING,
            tree,
            mount=TASK_ROOT,
            runs_on=[variant],
            # A companion package runs beside the layer: only the layer's public libraries
            # (libgdal, libproj, libgeos_c keep their names when grafted) are there by name.
            provided={name for name in layer_libs if name.startswith(PUBLIC_PREFIXES)},
            python_dir=".",
            requirements=requirements.read_text(encoding="utf-8") if requirements.is_file() else "",
        )
        bundled = assembled.bundled
        if not recipe:
            manifest = {
                "package": dest.stem,
                "target": variant.target.name,
                "arch": variant.arch,
                "python": variant.python,
                "line": variant.line.name,
                "components": gdal_provenance(containers.labels(cli, base)),
                "bundled_libraries": bundled,
                "runtime_provided": assembled.runtime_provided,
                "satisfies_policies": assembled.satisfies,
            }
            write_manifest(tree, manifest)
            # A full package redistributes the native stack too: its bill of materials.
            sbom.write_sbom(
                tree,
                sbom.sbom_json(
                    tree,
                    manifest,
                    variant.matrix,
                    name=dest.stem,
                    python_dir=".",
                    created=containers.created(cli, ref),
                ),
            )
        budget = LAMBDA_UNZIPPED_LIMIT
        what = f"package {dest.name}"
        layer_size = None
        if recipe:
            layer_size = _layer_unzipped(variant)
            if layer_size is not None:
                budget -= layer_size
                what += f" (with layer {recipe}: {fmt_mib(layer_size)})"
        report = zip_tree(tree, dest, what, budget=budget)
    atomic_write_text(
        stamp,
        json.dumps(
            {
                "fingerprint": fingerprint,
                "sha256": sha256_of(dest),
                "unzipped": report.unzipped,
                "bundled": bundled,
            },
            indent=2,
        ),
    )
    print_report(report, dest.name, beside=layer_size or 0)
    return PackageResult(dest, report, bundled, False, time.monotonic() - start)


def _cached_conflict_check(
    cli: docker.DockerClient,
    image: str,
    requirements: Path,
    layer_dists: dict[str, str],
    recipe: str,
) -> None:
    """The resolution needs the index; remember a passing one per (requirements, layer image)."""
    key = hashlib.sha256(requirements.read_bytes() + cli.images.get(image).id.encode()).hexdigest()
    marker = cache_dir() / "resolved" / key
    if marker.is_file():
        return
    check_conflicts(cli, image, requirements, layer_dists, recipe)
    atomic_write_text(marker, "ok\n")


def _cached_wheel_check(
    cli: docker.DockerClient,
    image: str,
    src: Path,
    requirements: Path,
    no_binary: str,
    layer: bool,
) -> str:
    """:func:`wheel_check`, remembered per (requirements, image, --no-binary): it needs the
    index."""
    key = hashlib.sha256(
        requirements.read_bytes() + cli.images.get(image).id.encode() + no_binary.encode()
    ).hexdigest()
    marker = cache_dir() / "wheel-check" / key
    if marker.is_file():
        return marker.read_text(encoding="utf-8").strip()
    result = wheel_check(cli, image, src, requirements, no_binary, layer=layer)
    atomic_write_text(marker, result + "\n")
    return result


def wheel_check(
    cli: docker.DockerClient,
    image: str,
    src: Path,
    requirements: Path,
    no_binary: str,
    *,
    layer: bool,
    index_url: str = locks.INDEX_URL,
) -> str:
    """No second GDAL beside /opt's: resolve the requirements as the build will (against the
    layer for a companion), fetch every wheel pip would install, and read each
    (gdal_lambda.wheels). A distribution whose wheel carries its own libgdal, libproj, GEOS or
    proj.db is compiled against /opt instead (added to ``no_binary``, returned); one with no
    sdist to compile is refused, in one line naming the wheel, the library and the fix."""
    work = PurePosixPath(WORK_DIR)
    collected = PurePosixPath("/tmp/gdal-lambda-wheels")
    files: dict[str, bytes | Path] = {
        f"{work.name}/requirements.txt": requirements.read_bytes(),
        **_code_in(src),
    }
    with tempfile.TemporaryDirectory(prefix="gdal-lambda-wheels.") as tmp:
        into = Path(tmp) / "wheels"
        ran = containers.run(
            cli,
            image,
            ["bash", "-c", wheels.RESOLVE.format(work=work, wheels=collected)],
            files=files,
            files_at=str(work.parent),
            collect=str(collected),
            into=into,
            environment={"MODE": "layer" if layer else "full"},
        )
        if ran.status != 0:
            tail = "\n".join(f"    {line}" for line in ran.stderr.strip().splitlines()[-12:])
            raise GdalLambdaError(f"pip could not resolve {requirements}:\n{tail}")
        direct = wheels.direct_references(json.loads((into / "report.json").read_text()))
        found = [item for wheel in sorted(into.glob("*.whl")) for item in wheels.carried(wheel)]
    compiled = [name for name in no_binary.split(",") if name]
    for item in wheels.compile_instead(
        found, compiled, direct, lambda name, version: _has_sdist(name, version, index_url)
    ):
        print(
            f"{item.wheel} carries its own {item.provides} ({item.library}): "
            f"{item.distribution} is compiled against /opt instead"
        )
        compiled.append(item.distribution)
    return ",".join(compiled)


def _has_sdist(name: str, version: str, index_url: str) -> bool:
    """Whether the index serves an sdist of ``name`` ``version`` (PEP 691's JSON listing)."""
    import requests
    from packaging.utils import InvalidSdistFilename, parse_sdist_filename
    from packaging.version import Version

    listing = requests.get(
        f"{index_url.rstrip('/')}/{name}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        timeout=60,
    )
    if listing.status_code == 404:
        return False
    listing.raise_for_status()
    for item in listing.json().get("files", []):
        try:
            found, found_version = parse_sdist_filename(item["filename"])
        except InvalidSdistFilename:
            continue
        if naming.distribution_name(found) == name and found_version == Version(version):
            return True
    return False


def _layer_unzipped(variant: Variant) -> int | None:
    path = variant.layer_zip()
    if not path.is_file():
        return None
    with zipfile.ZipFile(path) as zf:
        return sum(info.file_size for info in zf.infolist())


def slug(src: Path) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "-", src.resolve().name.lower()).strip("-.") or "src"


def sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
