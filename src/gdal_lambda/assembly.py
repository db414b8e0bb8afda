"""Assembly, shared by layers and function packages: collect, check, zip, report.

assembled = assemble(cli, image, "/opt", tree, mount="/opt", runs_on=[variant])
                             # scripts/assemble.sh in the image: slim, strip, bundle; then
                             # every ELF: needed libraries resolvable, glibc floor respected
write_manifest(tree, {...})  # share/gdal-lambda/manifest.json
report = zip_tree(tree, dest, "layer x.zip")   # sized (250 MB is an error), zipped
print_report(report, "x.zip")                  # zipped/unzipped, per folder, largest files
"""

from __future__ import annotations

import email.parser
import json
import os
import shutil
import stat
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import docker
from rich.console import Console
from rich.table import Table

from . import containers
from .elf import check_tree, iter_files
from .errors import GdalLambdaError
from .fsutil import atomic_write_text
from .images import LABEL_PREFIX
from .project import project_root
from .runtime import runtime_sonames
from .variant import Variant
from .versions import LIBRARIES

MB = 1_000_000
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024  # Lambda's limit: function + layers, unzipped
DIRECT_UPLOAD_LIMIT = 50 * 1024 * 1024  # larger zips must be published through S3
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
MANIFEST = Path("share/gdal-lambda/manifest.json")
console = Console(stderr=False, highlight=False)


# ------------------------------------------------------------------------------------------------
# Collecting and checking a tree


def collect_tree(
    cli: docker.DockerClient,
    image: str,
    source: str,
    runtime_libs: set[str],
    dest: Path,
    *,
    python_dir: str = "python",
    echo: Callable[[str], None] = print,
) -> list[str]:
    """Run scripts/assemble.sh in ``image`` on ``source`` and extract the result to ``dest``.

    ``python_dir`` is where Python packages live in the tree ("python" in a layer, "." in a
    function package). Returns the names of the libraries the script bundled.
    """
    scripts = project_root() / "scripts"
    files: dict[str, bytes | Path] = {
        f"gdal-lambda/scripts/{p.name}": p for p in scripts.iterdir() if p.is_file()
    }
    files["gdal-lambda/runtime-libs.txt"] = "".join(f"{s}\n" for s in sorted(runtime_libs)).encode()
    work = "/tmp/gdal-lambda"
    ran = containers.run(
        cli,
        image,
        ["bash", f"{work}/scripts/assemble.sh", source, f"{work}/out", f"{work}/runtime-libs.txt"],
        files=files,
        collect=f"{work}/out",
        into=dest,
        environment={"PYTHON_DIR": python_dir},
    )
    log = ran.output
    if ran.status != 0:
        tail = "\n".join(f"    {line}" for line in log.splitlines()[-20:])
        raise GdalLambdaError(f"assembling {source} in {image} failed:\n{tail}")
    for line in log.splitlines():
        if line.startswith("warning:"):
            echo(line)
    return sorted(line.split()[1] for line in log.splitlines() if line.startswith("bundled "))


@dataclass
class Assembled:
    bundled: list[str]  # libraries bundled into the tree
    elf_count: int
    highest_glibc: str | None


def assemble(
    cli: docker.DockerClient,
    image: str,
    source: str,
    tree: Path,
    *,
    mount: str,
    runs_on: Sequence[Variant],
    provided: set[str] | frozenset[str] = frozenset(),
    python_dir: str = "python",
) -> Assembled:
    """Collect ``source`` from ``image`` into ``tree`` and check it for every runtime.

    ``runs_on``: the variants whose runtimes must run the tree (the first is the one built
    for). A library is bundled unless *every* runtime, or ``provided`` (a layer's own
    libraries, for a package that runs on it), has it; every runtime's glibc floor is checked.
    """
    runtime_libs = runtime_sonames(cli, runs_on[0])
    for other in runs_on[1:]:
        runtime_libs &= runtime_sonames(cli, other)
    runtime_libs |= provided
    bundled = collect_tree(cli, image, source, runtime_libs, tree, python_dir=python_dir)
    count, highest = check_tree(tree, mount, runs_on[0].target, runtime_libs)
    for other in runs_on[1:]:
        check_tree(tree, mount, other.target, runtime_libs)
    return Assembled(bundled, count, highest)


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
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
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
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def gdal_provenance(labels: dict[str, str]) -> dict[str, dict[str, str]]:
    prefix = LABEL_PREFIX
    return {
        name: {
            "version": labels.get(f"{prefix}.{name}.version", ""),
            "sha256": labels.get(f"{prefix}.{name}.sha256", ""),
        }
        for name in LIBRARIES
    }


def zip_tree(
    tree: Path, dest: Path, what: str, *, budget: int = LAMBDA_UNZIPPED_LIMIT
) -> SizeReport:
    """Measure ``tree``, refuse it over ``budget``, zip it to ``dest``: the report, zipped size
    included."""
    report = measure_tree(tree)
    check_limits(report, what, budget=budget)
    write_zip(tree, dest)
    report.zipped = dest.stat().st_size
    return report
