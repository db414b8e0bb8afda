"""ELF checks (pyelftools): every library a tree's ELF files need resolves, within the glibc
floor of the runtime they will run in."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection, GNUVerSymSection

from .errors import GdalLambdaError
from .versions import Target

GLIBC_FAMILY = re.compile(
    r"^(ld-linux.*|libc|libm|libdl|libpthread|librt|libresolv|libutil|libnsl|libanl|libmvec"
    r"|libBrokenLocale|libthread_db|libc_malloc_debug)\.so"
)


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
