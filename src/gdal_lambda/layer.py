"""Layer zips (and the parts function packages share): assemble, check, zip, report.

tree = collect_tree(...)     # scripts/assemble.sh run in the build image: slim, strip, bundle
check_tree(...)              # every ELF: needed libraries resolvable, glibc floor respected
write_manifest(...)          # share/gdal-lambda/manifest.json
report = size_report(...)    # zipped/unzipped, per folder, largest files; 250 MB is an error
write_zip(...)               # deterministic, atomic
"""

from __future__ import annotations

import email.parser
import io
import json
import os
import shutil
import stat
import tarfile
import tempfile
import time
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import docker
from rich.console import Console
from rich.table import Table

from . import images, naming
from .errors import GdalLambdaError
from .fsutil import atomic_path, atomic_write_text
from .limits import DIRECT_UPLOAD_LIMIT, LAMBDA_UNZIPPED_LIMIT
from .policy import Policy, check_tree, graft, load_policy
from .runtime import LAYER_ROOT
from .versions import ROOT, Line, Matrix, Target

MB = 1_000_000
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
MANIFEST = Path("share/gdal-lambda/manifest.json")
POLICIES = ROOT / "policies"
console = Console(stderr=False, highlight=False)


# ------------------------------------------------------------------------------------------------
# Collecting a tree out of an image


def tar_of(files: dict[str, bytes | Path]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in sorted(files.items()):
            data = content.read_bytes() if isinstance(content, Path) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.endswith(".sh") else 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def collect_tree(
    cli: docker.DockerClient,
    image: str,
    source: str,
    dest: Path,
    *,
    python_dir: str = "python",
    echo: Callable[[str], None] = print,
) -> list[str]:
    """Run scripts/assemble.sh in ``image`` on ``source`` and extract the result to ``dest``.

    ``python_dir`` is where Python packages live in the tree ("python" in a layer, "." in a
    function package).
    """
    files: dict[str, bytes | Path] = {
        f"gdal-lambda/scripts/{p.name}": p for p in (ROOT / "scripts").iterdir() if p.is_file()
    }
    work = "/tmp/gdal-lambda"
    container = cli.containers.create(
        image,
        [f"{work}/scripts/assemble.sh", source, f"{work}/out"],
        entrypoint=["bash"],
        environment={"PYTHON_DIR": python_dir},
    )
    try:
        container.put_archive("/tmp", tar_of(files))
        container.start()
        status = container.wait()
        log = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
        if status.get("StatusCode", 1) != 0:
            tail = "\n".join(f"    {line}" for line in log.splitlines()[-20:])
            raise GdalLambdaError(f"assembling {source} in {image} failed:\n{tail}")
        for line in log.splitlines():
            if line.startswith("warning:"):
                echo(line)
        stream, _ = container.get_archive(f"{work}/out")
        with tempfile.TemporaryFile() as spool:
            for chunk in stream:
                spool.write(chunk)
            spool.seek(0)
            with tarfile.open(fileobj=spool, mode="r|") as tar:
                tar.extractall(dest.parent / ".collect", filter="tar")
        if dest.exists():
            shutil.rmtree(dest)
        (dest.parent / ".collect" / "out").rename(dest)
        shutil.rmtree(dest.parent / ".collect")
    finally:
        container.remove(force=True)


# ------------------------------------------------------------------------------------------------
# Bundled libraries and the Lambda policy


@dataclass
class Checked:
    bundled: dict[str, str]  # original soname -> unique (grafted) soname
    elf_count: int
    highest: dict[str, str]  # version family -> highest version needed from the runtime
    satisfies: list[str]  # every target whose policy the tree meets


def iter_files(tree: Path) -> Iterator[Path]:
    for path in sorted(tree.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield path


def policy_for(matrix: Matrix, target: Target, arch: str) -> Policy:
    return load_policy(POLICIES, target.name, arch, matrix.targets)


def finish_tree(
    matrix: Matrix,
    tree: Path,
    mount: str,
    target: Target,
    *,
    arch: str = "x86_64",
    also: Sequence[Target] = (),
    provided: Iterable[str] = (),
) -> Checked:
    """Graft the tree's bundled libraries, then check every ELF file against the policies.

    The target's policy and those of ``also`` must hold (a violation raises, naming the file,
    the library and the symbol); every other target's is tried, for the report. ``provided``:
    sonames another zip mounted beside this one guarantees (a companion package's layer).
    """
    bundled = graft(tree)
    extra = frozenset(provided)
    reports = {}
    for name in matrix.targets:
        pol = load_policy(POLICIES, name, arch, matrix.targets)
        pol = replace(pol, libraries=pol.libraries | extra)
        reports[name] = check_tree(tree, mount, matrix.targets[name].ld_library_path, pol)
    for required in (target, *also):
        reports[required.name].raise_for_violations()
    own = reports[target.name]
    return Checked(
        bundled=bundled,
        elf_count=own.elf_count,
        highest=own.highest_names(),
        satisfies=sorted(name for name, report in reports.items() if report.ok),
    )


# ------------------------------------------------------------------------------------------------
# Manifest, zip, report


def installed_distributions(python_dir: Path) -> dict[str, str]:
    """name -> version of every distribution installed in a flat site directory (dist-info)."""
    out: dict[str, str] = {}
    parser = email.parser.HeaderParser()
    for meta in sorted(python_dir.glob("*.dist-info/METADATA")):
        headers = parser.parsestr(meta.read_text(encoding="utf-8", errors="replace"))
        if headers.get("Name") and headers.get("Version"):
            out[headers["Name"]] = headers["Version"]
    return out


def write_manifest(tree: Path, manifest: dict[str, object]) -> None:
    atomic_write_text(tree / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _mode_of(path: Path) -> int:
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):
        return stat.S_IFLNK | 0o777
    if stat.S_ISDIR(st.st_mode):
        return stat.S_IFDIR | 0o755
    return stat.S_IFREG | (0o755 if st.st_mode & 0o111 else 0o644)


def zip_entries(tree: Path) -> list[Path]:
    """Every file, directory and link below ``tree``, sorted by archive name (directories
    with their trailing slash, as they are named in the zip)."""

    def name(path: Path) -> str:
        rel = path.relative_to(tree).as_posix()
        return rel + "/" if path.is_dir() and not path.is_symlink() else rel

    return sorted(tree.rglob("*"), key=name)


def write_zip(tree: Path, dest: Path, *, level: int = 9) -> None:
    """A deterministic zip of ``tree``: sorted names, fixed times, normalised modes, links kept.

    Written to a temporary file beside ``dest`` and renamed, so no half zip is ever left.
    """
    with (
        atomic_path(dest) as tmp,
        zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as zf,
    ):
        for path in zip_entries(tree):
            name = path.relative_to(tree).as_posix()
            mode = _mode_of(path)
            if stat.S_ISDIR(mode):
                name += "/"
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.create_system = 3  # Unix: external_attr carries the mode
            info.external_attr = (mode << 16) | (0x10 if stat.S_ISDIR(mode) else 0)
            if stat.S_ISLNK(mode):
                info.compress_type = zipfile.ZIP_STORED
                zf.writestr(info, os.readlink(path))
            elif stat.S_ISDIR(mode):
                info.compress_type = zipfile.ZIP_STORED
                zf.writestr(info, b"")
            else:
                info.compress_type = zipfile.ZIP_DEFLATED
                with path.open("rb") as src, zf.open(info, "w") as out:
                    shutil.copyfileobj(src, out, 1 << 20)


@dataclass
class SizeReport:
    unzipped: int
    zipped: int | None
    folders: dict[str, int] = field(default_factory=dict)
    largest: list[tuple[str, int]] = field(default_factory=list)
    files: int = 0


def measure_tree(tree: Path) -> SizeReport:
    folders: dict[str, int] = defaultdict(int)
    sizes: list[tuple[str, int]] = []
    for path in iter_files(tree):
        rel = path.relative_to(tree)
        size = path.stat().st_size
        folders[rel.parts[0] if len(rel.parts) > 1 else "."] += size
        sizes.append((rel.as_posix(), size))
    sizes.sort(key=lambda item: (-item[1], item[0]))
    return SizeReport(
        unzipped=sum(s for _, s in sizes),
        zipped=None,
        folders=dict(sorted(folders.items())),
        largest=sizes[:10],
        files=len(sizes),
    )


def check_limits(report: SizeReport, what: str, *, budget: int = LAMBDA_UNZIPPED_LIMIT) -> None:
    if report.unzipped > budget:
        raise GdalLambdaError(
            f"{what} is {report.unzipped / MB:.1f} MB unzipped, over Lambda's limit of "
            f"{budget / MB:.1f} MB: drop packages from its requirements"
        )


def print_report(report: SizeReport, title: str) -> None:
    table = Table(title=title)
    table.add_column("folder")
    table.add_column("unzipped MB", justify="right")
    for name, size in report.folders.items():
        table.add_row(name, f"{size / MB:.1f}")
    table.add_row("total", f"{report.unzipped / MB:.1f}", style="bold")
    if report.zipped is not None:
        table.add_row("zipped", f"{report.zipped / MB:.1f}", style="bold")
    console.print(table)
    largest = Table(title="10 largest files")
    largest.add_column("file")
    largest.add_column("MB", justify="right")
    for name, size in report.largest:
        largest.add_row(name, f"{size / MB:.2f}")
    console.print(largest)
    if report.zipped is not None and report.zipped > DIRECT_UPLOAD_LIMIT:
        console.print(
            f"warning: the zip is {report.zipped / MB:.1f} MB, over the 50 MB direct-upload limit: "
            "`invoke publish` will upload it through S3"
        )


# ------------------------------------------------------------------------------------------------
# The layer task


@dataclass
class LayerResult:
    zip_path: Path
    report: SizeReport
    checked: Checked
    seconds: float


def gdal_provenance(labels: dict[str, str]) -> dict[str, dict[str, str]]:
    """library -> {version, sha256} for every source the GDAL image's labels name."""
    prefix = images.LABEL_PREFIX + "."
    out: dict[str, dict[str, str]] = {}
    for key, value in labels.items():
        if key.startswith(prefix) and key.endswith((".version", ".sha256")):
            name, _, field_name = key[len(prefix) :].rpartition(".")
            out.setdefault(name, {"version": "", "sha256": ""})[field_name] = value
    return dict(sorted(out.items()))


def build_layer_zip(
    matrix: Matrix,
    line: Line,
    target: Target,
    python: str,
    recipe: str = "geo",
    *,
    repo: str | None = None,
    dist: Path | None = None,
    also_runs_on: Sequence[Target] = (),
) -> LayerResult:
    """Turn the layer image into dist/<stem>.zip, proven against the target's runtime.

    ``also_runs_on``: other targets whose runtimes must run the layer too. A library is then
    bundled unless *every* runtime has it, and every runtime's glibc floor is checked."""
    start = time.monotonic()
    cli = images.client()
    ref = images.tag(line, target, python=python, recipe=recipe, repo=repo)
    if not images.image_exists(cli, ref):
        raise GdalLambdaError(
            f"layer image {ref} does not exist: run `invoke build.layer --gdal {line.name} "
            f"--python {python} --recipe {recipe} --target {target.name}` first"
        )
    dest = naming.layer_zip(line.name, python, recipe, target.name, dist)
    with tempfile.TemporaryDirectory(prefix="gdal-lambda-layer.") as tmp:
        tree = Path(tmp) / "opt"
        collect_tree(cli, ref, LAYER_ROOT, tree)
        checked = finish_tree(matrix, tree, LAYER_ROOT, target, also=also_runs_on)
        write_manifest(
            tree,
            {
                "layer": naming.stem(line.name, python=python, recipe=recipe, target=target.name),
                "recipe": recipe,
                "target": target.name,
                "also_runs_on": [other.name for other in also_runs_on],
                "python": python,
                "line": line.name,
                "components": gdal_provenance(images.labels(cli, ref)),
                "python_packages": installed_distributions(tree / "python"),
                "bundled_libraries": checked.bundled,
                "runtime_symbol_versions": checked.highest,
                "satisfies_policies": checked.satisfies,
            },
        )
        report = measure_tree(tree)
        check_limits(report, f"layer {dest.name}")
        write_zip(tree, dest)
        report.zipped = dest.stat().st_size
    print_report(report, f"{dest.name}")
    print(
        f"{checked.elf_count} ELF files checked; {len(checked.bundled)} libraries bundled; "
        f"highest runtime symbols {', '.join(checked.highest.values()) or 'none'}; "
        f"satisfies the Lambda policies of {', '.join(checked.satisfies)}"
    )
    return LayerResult(dest, report, checked, time.monotonic() - start)
