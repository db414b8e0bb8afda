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
import re
import shutil
import stat
import tarfile
import tempfile
import time
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import docker
from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection, GNUVerSymSection
from rich.console import Console
from rich.table import Table

from . import images, locks, naming
from .errors import GdalLambdaError
from .fsutil import atomic_write_text
from .runtime import LAYER_ROOT, runtime_sonames
from .versions import LIBRARIES, ROOT, Line, Matrix, Target

MB = 1_000_000
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024  # Lambda's limit: function + layers, unzipped
DIRECT_UPLOAD_LIMIT = 50 * 1024 * 1024  # larger zips must be published through S3
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
MANIFEST = Path("share/gdal-lambda/manifest.json")
GLIBC_FAMILY = re.compile(
    r"^(ld-linux.*|libc|libm|libdl|libpthread|librt|libresolv|libutil|libnsl|libanl|libmvec"
    r"|libBrokenLocale|libthread_db|libc_malloc_debug)\.so"
)
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
    files: dict[str, bytes | Path] = {
        f"gdal-lambda/scripts/{p.name}": p for p in (ROOT / "scripts").iterdir() if p.is_file()
    }
    files["gdal-lambda/runtime-libs.txt"] = "".join(f"{s}\n" for s in sorted(runtime_libs)).encode()
    work = "/tmp/gdal-lambda"
    container = cli.containers.create(
        image,
        [f"{work}/scripts/assemble.sh", source, f"{work}/out", f"{work}/runtime-libs.txt"],
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
    return sorted(line.split()[1] for line in log.splitlines() if line.startswith("bundled "))


# ------------------------------------------------------------------------------------------------
# ELF checks (pyelftools)


@dataclass
class ElfFacts:
    needed: list[str]
    search: list[str]  # DT_RUNPATH / DT_RPATH entries, unexpanded
    glibc: tuple[int, ...] | None  # highest GLIBC_x.y symbol version required
    glibc_symbol: str | None


def _version_tuple(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.removeprefix("GLIBC_").split(".") if part.isdigit())


def elf_facts(path: Path) -> ElfFacts | None:
    """Needed libraries, search paths and glibc floor of an ELF file; None if not ELF."""
    with path.open("rb") as handle:
        if handle.read(4) != b"\x7fELF":
            return None
        handle.seek(0)
        try:
            elf = ELFFile(handle)
        except ELFError:
            return None
        needed: list[str] = []
        search: list[str] = []
        for section in elf.iter_sections():
            if isinstance(section, DynamicSection):
                for tag in section.iter_tags():
                    if tag.entry.d_tag == "DT_NEEDED":
                        needed.append(tag.needed)
                    elif tag.entry.d_tag == "DT_RUNPATH":
                        search.extend(tag.runpath.split(":"))
                    elif tag.entry.d_tag == "DT_RPATH":
                        search.extend(tag.rpath.split(":"))
        names: dict[int, str] = {}
        versym: GNUVerSymSection | None = None
        for section in elf.iter_sections():
            if isinstance(section, GNUVerNeedSection):
                for _, auxiliaries in section.iter_versions():
                    for aux in auxiliaries:
                        names[aux["vna_other"]] = aux.name
            elif isinstance(section, GNUVerSymSection):
                versym = section
        best: tuple[int, ...] | None = None
        best_symbol: str | None = None
        dynsym = elf.get_section_by_name(".dynsym")
        if versym is not None and dynsym is not None and names:
            for index, symbol in enumerate(dynsym.iter_symbols()):
                if symbol["st_shndx"] != "SHN_UNDEF":
                    continue
                ndx = versym.get_symbol(index)["ndx"]
                if not isinstance(ndx, int):
                    continue
                version = names.get(ndx & 0x7FFF, "")
                if version.startswith("GLIBC_") and version[6:7].isdigit():
                    value = _version_tuple(version)
                    if best is None or value > best:
                        best, best_symbol = value, f"{symbol.name}@{version}"
        return ElfFacts(needed=needed, search=search, glibc=best, glibc_symbol=best_symbol)


def iter_files(tree: Path) -> Iterator[Path]:
    for path in sorted(tree.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield path


def check_tree(
    tree: Path, mount: str, target: Target, runtime_libs: set[str]
) -> tuple[int, str | None]:
    """Fail unless every ELF's libraries resolve and its glibc floor is within the target's.

    ``mount`` is where the tree will live (/opt or /var/task). Returns (ELF count, highest
    glibc symbol seen) for the report.
    """
    floor = _version_tuple(target.glibc)
    mount_dirs = [d for d in target.ld_library_path if d == mount or d.startswith(mount + "/")]
    default_dirs = [tree / os.path.relpath(d, mount) for d in mount_dirs]
    problems: list[str] = []
    count = 0
    highest: tuple[tuple[int, ...], str] | None = None
    for path in iter_files(tree):
        facts = elf_facts(path)
        if facts is None:
            continue
        count += 1
        rel = path.relative_to(tree)
        if facts.glibc is not None:
            if highest is None or facts.glibc > highest[0]:
                highest = (facts.glibc, f"{rel}: {facts.glibc_symbol}")
            if facts.glibc > floor:
                problems.append(
                    f"{rel} needs {facts.glibc_symbol}, newer than the {target.name} runtime's "
                    f"glibc {target.glibc}"
                )
        dirs = list(default_dirs)
        for entry in facts.search:
            expanded = entry.replace("$ORIGIN", str(path.parent)).replace(
                "${ORIGIN}", str(path.parent)
            )
            if expanded.startswith(mount + "/") or expanded == mount:
                expanded = str(tree / os.path.relpath(expanded, mount))
            dirs.append(Path(expanded))
        for soname in facts.needed:
            if GLIBC_FAMILY.match(soname) or soname in runtime_libs:
                continue
            if any((d / soname).exists() for d in dirs):
                continue
            problems.append(
                f"{rel} needs {soname}, which neither this tree nor the {target.name} "
                "runtime provides"
            )
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise GdalLambdaError(problems[0] + more)
    return count, highest[1] if highest else None


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


# ------------------------------------------------------------------------------------------------
# The layer task


@dataclass
class LayerResult:
    zip_path: Path
    report: SizeReport
    bundled: list[str]
    elf_count: int
    highest_glibc: str | None
    seconds: float


def gdal_provenance(labels: dict[str, str]) -> dict[str, dict[str, str]]:
    prefix = images.LABEL_PREFIX
    return {
        name: {
            "version": labels.get(f"{prefix}.{name}.version", ""),
            "sha256": labels.get(f"{prefix}.{name}.sha256", ""),
        }
        for name in LIBRARIES
    }


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
    runtime_libs = runtime_sonames(cli, target, python)
    for other in also_runs_on:
        runtime_libs &= runtime_sonames(cli, other, other.check_python(None))
    with tempfile.TemporaryDirectory(prefix="gdal-lambda-layer.") as tmp:
        tree = Path(tmp) / "opt"
        bundled = collect_tree(cli, ref, LAYER_ROOT, runtime_libs, tree)
        elf_count, highest = check_tree(tree, LAYER_ROOT, target, runtime_libs)
        for other in also_runs_on:
            check_tree(tree, LAYER_ROOT, other, runtime_libs)
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
                # version, file and sha256 of each (pip's --report, see gdal_lambda.locks)
                "python_packages": locks.python_packages(
                    installed_distributions(tree / "python"), locks.image_reports(cli, ref)
                ),
                "bundled_libraries": bundled,
            },
        )
        report = measure_tree(tree)
        check_limits(report, f"layer {dest.name}")
        write_zip(tree, dest)
        report.zipped = dest.stat().st_size
    print_report(report, f"{dest.name}")
    return LayerResult(dest, report, bundled, elf_count, highest, time.monotonic() - start)
