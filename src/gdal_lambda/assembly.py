"""Assembly, shared by layers and function packages: collect, check, zip, report.

assembled = assemble(cli, image, "/opt", tree, mount="/opt", runs_on=[variant])
                             # scripts/assemble.sh in the image: slim, strip, bundle; then
                             # every ELF: needed libraries resolvable, glibc floor respected
write_manifest(tree, {...})  # share/gdal-lambda/manifest.json
report = zip_tree(tree, dest, "layer x.zip")   # sized (over 250 MiB is an error), zipped
print_report(report, "x.zip")                  # zipped/unzipped, per folder, largest files
"""

from __future__ import annotations

import email.parser
import json
import os
import shutil
import stat
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

import docker
from rich.console import Console
from rich.table import Table

from . import containers, runtime_sdk
from .errors import GdalLambdaError
from .fsutil import atomic_path, atomic_write_text
from .limits import LAMBDA_UNZIPPED_LIMIT, MIB, direct_upload_warning, fmt_mib
from .policy import check_tree, graft, load_policy
from .project import project_root
from .provenance import MANIFEST
from .runtime import WORK_DIR
from .variant import Variant

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
console = Console(stderr=False, highlight=False)


# ------------------------------------------------------------------------------------------------
# Collecting and checking a tree


def collect_tree(
    cli: docker.DockerClient,
    image: str,
    source: str,
    dest: Path,
    *,
    python_dir: str = "python",
    echo: Callable[[str], None] = print,
) -> None:
    """Run scripts/assemble.sh in ``image`` on ``source`` and extract the result to ``dest``.

    ``python_dir`` is where Python packages live in the tree ("python" in a layer, "." in a
    function package).
    """
    scripts = project_root() / "scripts"
    work = PurePosixPath(WORK_DIR)
    files: dict[str, bytes | Path] = {
        f"{work.name}/scripts/{p.name}": p for p in scripts.iterdir() if p.is_file()
    }
    ran = containers.run(
        cli,
        image,
        ["bash", f"{work}/scripts/assemble.sh", source, f"{work}/out"],
        files=files,
        files_at=str(work.parent),
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


@dataclass
class Assembled:
    bundled: dict[str, str]  # original soname -> unique (grafted) soname
    elf_count: int
    highest: dict[str, str]  # version family -> highest version needed from the runtime
    satisfies: list[str]  # every target whose Lambda policy the tree meets
    # distributions left to the runtime's copies in /var/runtime: name -> the runtime's version
    runtime_provided: dict[str, str] = field(default_factory=dict)
    # the runtime's distributions kept in the tree: name -> which requirement its copy misses
    shipped_over_runtime: dict[str, str] = field(default_factory=dict)


def assemble(
    cli: docker.DockerClient,
    image: str,
    source: str,
    tree: Path,
    *,
    mount: str,
    runs_on: Sequence[Variant],
    provided: Iterable[str] = (),
    python_dir: str = "python",
    requirements: str = "",
) -> Assembled:
    """Collect ``source`` from ``image`` into ``tree``, graft it, check it against the policies.

    Every library outside a policy is already in the tree (the native stack is compiled into
    /opt): :func:`gdal_lambda.policy.graft` gives those unique sonames, then every ELF file's
    closure is checked. ``runs_on``: the variants whose targets' policies must hold, with each
    target's ``must_satisfy`` (the first is the one built for; a violation raises, naming the
    file, the library and the symbol);
    every other target's is tried for the report. ``provided``: sonames another zip mounted
    beside this one guarantees (a companion package's layer). ``requirements``: the text of
    the requirements file the tree was installed from (the recipe's, the function's): with the
    tree's own metadata, what decides which of the runtime's distributions the tree may leave
    to /var/runtime (gdal_lambda.runtime_sdk).
    """
    collect_tree(cli, image, source, tree, python_dir=python_dir)
    built = runs_on[0]
    matrix, architecture = built.matrix, built.architecture
    decision = rely_on_runtime(tree / python_dir, requirements, built)
    bundled = graft(tree)
    extra = frozenset(provided)
    reports = {}
    directory = project_root() / "policies"
    for name, target in matrix.targets.items():
        policy = load_policy(directory, name, architecture.name, matrix.targets)
        policy = replace(policy, libraries=policy.libraries | extra)
        reports[name] = check_tree(
            tree,
            mount,
            target.library_path(architecture),
            policy,
            machine=architecture.elf_machine,
        )
    for variant in runs_on:
        for name in (variant.target.name, *variant.target.must_satisfy):
            reports[name].raise_for_violations()
    own = reports[built.target.name]
    return Assembled(
        bundled=bundled,
        elf_count=own.elf_count,
        highest=own.highest_names(),
        satisfies=sorted(name for name, report in reports.items() if report.ok),
        runtime_provided=decision.dropped,
        shipped_over_runtime=decision.shipped,
    )


def rely_on_runtime(
    site: Path, requirements: str, variant: Variant, echo: Callable[[str], None] = print
) -> runtime_sdk.Decision:
    """Drop from ``site`` the runtime's distributions (the AWS SDK in /var/runtime) whose
    runtime copy satisfies what the tree requires; keep, and say why, the others."""
    if not site.is_dir():
        return runtime_sdk.Decision()
    decision = runtime_sdk.decide(
        site,
        requirements,
        runtime_sdk.pins(variant.python),
        python=variant.python,
        machine=variant.architecture.gnu.split("-")[0],
    )
    runtime_sdk.remove(site, decision.dropped)
    for name, version in decision.dropped.items():
        echo(f"{name}: left to the runtime's copy ({version}, /var/runtime)")
    for name, why in decision.shipped.items():
        echo(f"{name}: shipped, not left to the runtime ({why})")
    return decision


def iter_files(tree: Path) -> Iterator[Path]:
    for path in sorted(tree.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield path


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
    """A deterministic zip of ``tree``: sorted entries, fixed timestamps, normalised modes,
    symlinks kept as links.

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
        largest = ", ".join(f"{name} ({fmt_mib(size)})" for name, size in report.largest)
        raise GdalLambdaError(
            f"{what} is {fmt_mib(report.unzipped)} unzipped, over Lambda's limit of "
            f"{fmt_mib(budget)}: drop packages from its requirements; its 10 largest files: "
            f"{largest}"
        )


def headroom(report: SizeReport, *, beside: int = 0) -> int:
    """What is left of Lambda's 250 MiB for everything else a function attaches (its code, other
    layers), after this tree and ``beside`` (a companion package's layer)."""
    return LAMBDA_UNZIPPED_LIMIT - report.unzipped - beside


def print_report(report: SizeReport, title: str, *, beside: int = 0) -> None:
    table = Table(title=title)
    table.add_column("folder")
    table.add_column("unzipped MiB", justify="right")
    for name, size in report.folders.items():
        table.add_row(name, f"{size / MIB:.1f}")
    table.add_row("total", f"{report.unzipped / MIB:.1f}", style="bold")
    if report.zipped is not None:
        table.add_row("zipped", f"{report.zipped / MIB:.1f}", style="bold")
    if beside:
        table.add_row("with the layer", f"{(report.unzipped + beside) / MIB:.1f}")
    table.add_row(
        f"headroom under Lambda's {fmt_mib(LAMBDA_UNZIPPED_LIMIT)}",
        f"{headroom(report, beside=beside) / MIB:.1f}",
        style="bold",
    )
    console.print(table)
    largest = Table(title="10 largest files")
    largest.add_column("file")
    largest.add_column("MiB", justify="right")
    for name, size in report.largest:
        largest.add_row(name, f"{size / MIB:.2f}")
    console.print(largest)
    warning = direct_upload_warning(report.zipped) if report.zipped is not None else None
    if warning:
        console.print(f"warning: {warning}")


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
