"""Reading ELF files (pyelftools): what a shared object is called, needs, and where it looks.

Only the facts the loader uses: DT_SONAME, DT_NEEDED, DT_RPATH and DT_RUNPATH kept apart (the
loader treats them differently: see :mod:`gdal_lambda.policy`), and the symbol versions each
needed library must provide (``.gnu.version_r``), each with one symbol that uses it, so that a
violation can name it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection, GNUVerSymSection

MAGIC = b"\x7fELF"
# GLIBC_2.34, GLIBCXX_3.4.29, CXXABI_1.3.13, GCC_7.0.0, CXXABI_TM_1: family and version.
_VERSION = re.compile(r"^(?P<family>[A-Z][A-Z_]*?)_(?P<number>\d+(?:\.\d+)*)$")


def split_version(name: str) -> tuple[str, tuple[int, ...]] | None:
    """``GLIBC_2.34`` -> ``("GLIBC", (2, 34))``; None for names like ``GLIBC_PRIVATE``."""
    match = _VERSION.match(name)
    if not match:
        return None
    return match["family"], tuple(int(part) for part in match["number"].split("."))


@dataclass(frozen=True)
class ElfInfo:
    path: Path
    machine: str  # e_machine: EM_X86_64, EM_AARCH64...
    soname: str | None
    needed: tuple[str, ...]
    rpath: tuple[str, ...]  # DT_RPATH entries, unexpanded
    runpath: tuple[str, ...]  # DT_RUNPATH entries, unexpanded
    # needed file -> {version name -> one undefined symbol bound to it ("" if none is)}
    versions: dict[str, dict[str, str]] = field(default_factory=dict)


def is_elf(path: Path) -> bool:
    if path.is_symlink() or not path.is_file():
        return False
    with path.open("rb") as handle:
        return handle.read(4) == MAGIC


def read_elf(path: Path) -> ElfInfo | None:
    """The loader's view of one file; None when it is not an ELF file (or a symlink)."""
    if not is_elf(path):
        return None
    with path.open("rb") as handle:
        try:
            elf = ELFFile(handle)
        except ELFError:
            return None
        soname: str | None = None
        needed: list[str] = []
        rpath: list[str] = []
        runpath: list[str] = []
        versions: dict[str, dict[str, str]] = {}
        by_index: dict[int, tuple[str, str]] = {}  # vna_other -> (file, version)
        versym: GNUVerSymSection | None = None
        for section in elf.iter_sections():
            if isinstance(section, DynamicSection):
                for tag in section.iter_tags():
                    kind = tag.entry.d_tag
                    if kind == "DT_NEEDED":
                        needed.append(tag.needed)
                    elif kind == "DT_SONAME":
                        soname = tag.soname
                    elif kind == "DT_RPATH":
                        rpath.extend(p for p in tag.rpath.split(":") if p)
                    elif kind == "DT_RUNPATH":
                        runpath.extend(p for p in tag.runpath.split(":") if p)
            elif isinstance(section, GNUVerNeedSection):
                for verneed, auxiliaries in section.iter_versions():
                    wanted = versions.setdefault(verneed.name, {})
                    for aux in auxiliaries:
                        wanted.setdefault(aux.name, "")
                        by_index[aux["vna_other"]] = (verneed.name, aux.name)
            elif isinstance(section, GNUVerSymSection):
                versym = section
        dynsym = elf.get_section_by_name(".dynsym")
        if versym is not None and dynsym is not None and by_index:
            for index, symbol in enumerate(dynsym.iter_symbols()):
                if symbol["st_shndx"] != "SHN_UNDEF":
                    continue
                ndx = versym.get_symbol(index)["ndx"]
                if not isinstance(ndx, int) or (ndx & 0x7FFF) not in by_index:
                    continue
                library, version = by_index[ndx & 0x7FFF]
                if not versions[library][version]:
                    versions[library][version] = symbol.name
        return ElfInfo(
            path=path,
            machine=str(elf["e_machine"]),
            soname=soname,
            needed=tuple(needed),
            rpath=tuple(rpath),
            runpath=tuple(runpath),
            versions=versions,
        )


def iter_elf(tree: Path) -> Iterator[ElfInfo]:
    """Every ELF file below ``tree`` (symlinks skipped: their targets are visited), sorted."""
    for path in sorted(tree.rglob("*")):
        info = read_elf(path)
        if info is not None:
            yield info
