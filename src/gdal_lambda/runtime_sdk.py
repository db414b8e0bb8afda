"""What Lambda's python runtime already carries in /var/runtime, and when a tree may rely on it.

Lambda's python runtimes ship the AWS SDK for Python and its dependencies (boto3, botocore,
s3transfer, jmespath, python-dateutil, six, urllib3) in /var/runtime, last on sys.path. A layer
or package need not carry a second copy of one of them, but only where the runtime's copy
satisfies every requirement on it in the tree: otherwise the function would import the runtime's
older copy, or a shipped boto3 beside the runtime's botocore. Which versions the runtime carries
is docker/standin/requirements.txt (what the stand-ins install, locked per Python).

    decision = decide(site, requirements_text, pins("3.13"), python="3.13", machine="x86_64")
    remove(site, decision.dropped)      # the runtime's copies serve these
"""

from __future__ import annotations

import csv
import email.parser
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from . import locks, naming
from .project import project_root

# Who asked for a requirement when it is the layer recipe's or the function's own list.
TOP_LEVEL = "requirements.txt"


def pins(python: str) -> dict[str, str]:
    """The distributions Lambda's python``python`` runtime carries in /var/runtime, as the
    stand-ins install them: canonical name -> version (from the hash-locked
    docker/standin/requirements.txt; a missing or stale lock is one error naming `invoke lock`)."""
    lock = locks.require(project_root() / locks.STANDIN_REQUIREMENTS, python)
    return {name: version for name, (version, _) in locks.read_lock(lock).pins.items()}


@dataclass(frozen=True)
class Installed:
    """One distribution installed in a flat site directory."""

    name: str  # canonical
    version: str
    requires: tuple[Requirement, ...]
    dist_info: Path


@dataclass
class Decision:
    # canonical name -> the runtime's version that serves it (removed from the tree)
    dropped: dict[str, str] = field(default_factory=dict)
    # canonical name -> why it stays: "<who> requires <requirement>; the runtime has <version>"
    shipped: dict[str, str] = field(default_factory=dict)


def installed(site: Path) -> dict[str, Installed]:
    """Every distribution in ``site`` (its ``*.dist-info/METADATA``), by canonical name."""
    parser = email.parser.HeaderParser()
    out: dict[str, Installed] = {}
    for meta in sorted(site.glob("*.dist-info/METADATA")):
        headers = parser.parsestr(meta.read_text(encoding="utf-8", errors="replace"))
        name, version = headers.get("Name"), headers.get("Version")
        if not name or not version:
            continue
        requires = []
        for text in headers.get_all("Requires-Dist") or []:
            try:
                requires.append(Requirement(text))
            except InvalidRequirement:
                continue
        key = naming.distribution_name(name)
        out[key] = Installed(key, version, tuple(requires), meta.parent)
    return out


def marker_environment(python: str, machine: str) -> dict[str, str]:
    """PEP 508's marker variables on Lambda's Linux for ``python`` on ``machine``."""
    return {
        "python_version": python,
        "python_full_version": f"{python}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "os_name": "posix",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": machine,
    }


def _applies(marker: Marker | None, env: Mapping[str, str], extras: Iterable[str]) -> bool:
    if marker is None:
        return True
    return any(marker.evaluate({**env, "extra": extra}) for extra in ("", *extras))


def _satisfied(requirement: Requirement, version: str) -> bool:
    if requirement.url:
        return False  # a file or URL of its own: never the runtime's copy
    try:
        Version(version)
    except InvalidVersion:
        return False
    return SpecifierSet(str(requirement.specifier)).contains(version, prereleases=True)


def decide(
    site: Path,
    requirements: str,
    runtime: Mapping[str, str],
    *,
    python: str,
    machine: str = "x86_64",
) -> Decision:
    """Which of the runtime's distributions installed in ``site`` may be dropped.

    The requirements on each: the top-level ``requirements`` (a requirements file's text: the
    recipe's or the function's) and the ``Requires-Dist`` of every distribution that stays,
    markers evaluated for Lambda's Linux and ``python`` (an ``extra`` marker counts where some
    requirement asks for that extra). A distribution is dropped only where ``runtime``'s
    version satisfies all of them; shipping one adds its own requirements, so this repeats
    until nothing changes (a shipped boto3 that needs a newer botocore ships botocore too)."""
    env = marker_environment(python, machine)
    dists = installed(site)
    top = [req for line in requirements.splitlines() if (req := naming.requirement(line))]
    top = [req for req in top if _applies(req.marker, env, ())]
    extras: dict[str, set[str]] = {}
    for req in [*top, *(r for d in dists.values() for r in d.requires)]:
        extras.setdefault(naming.distribution_name(req.name), set()).update(req.extras)
    requires = {
        name: [r for r in dist.requires if _applies(r.marker, env, extras.get(name, ()))]
        for name, dist in dists.items()
    }
    decision = Decision()
    dropped = {name for name in dists if name in runtime}
    while True:
        asked = [(TOP_LEVEL, req) for req in top]
        asked += [
            (f"{name} {dists[name].version}", req)
            for name in sorted(dists)
            if name not in dropped
            for req in requires[name]
        ]
        unmet = {}
        for who, req in asked:
            key = naming.distribution_name(req.name)
            if key in dropped and key not in unmet and not _satisfied(req, runtime[key]):
                unmet[key] = f"{who} requires {req}; the runtime has {runtime[key]}"
        if not unmet:
            break
        dropped -= unmet.keys()
        decision.shipped.update(unmet)
    decision.dropped = {name: runtime[name] for name in sorted(dropped)}
    return decision


def remove(site: Path, names: Iterable[str]) -> list[str]:
    """Remove each named distribution from ``site``: every file its RECORD lists below
    ``site``, the bytecode compiled from them, and folders left empty. Returns the files
    removed (relative to ``site``)."""
    dists = installed(site)
    removed: list[str] = []
    root = site.resolve()
    for name in names:
        dist = dists[naming.distribution_name(name)]
        record = dist.dist_info / "RECORD"
        entries = []
        if record.is_file():
            with record.open(encoding="utf-8", newline="") as handle:
                entries = [row[0] for row in csv.reader(handle) if row]
        folders: set[Path] = set()
        for entry in entries:
            path = (site / entry).resolve()
            if not path.is_relative_to(root) or path == root:
                continue  # a console script pip wrote outside the site (../bin): not its code
            rel = PurePosixPath(path.relative_to(root).as_posix())
            if rel.suffix == ".py":
                cache = path.parent / "__pycache__"
                for compiled in sorted(cache.glob(f"{path.stem}.*.pyc")):
                    compiled.unlink()
                    removed.append(compiled.relative_to(root).as_posix())
                folders.add(cache)
            if path.is_file() or path.is_symlink():
                path.unlink()
                removed.append(rel.as_posix())
            folders.add(path.parent)
        shutil.rmtree(dist.dist_info, ignore_errors=True)
        for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
            while folder != root and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
                folder = folder.parent
    return removed
