"""Licence texts of the native stack, taken from the verified source tarballs themselves.

    write_licences(fetched, ctx / "licenses", fetch_hint="invoke fetch --version 3.13")
    # ctx/licenses/geos/COPYING, ctx/licenses/geos/SOURCE, ... -> /opt/share/licenses/ in the
    # GDAL image (docker/gdal/Dockerfile), and so in every layer and full package

Each source in matrix.toml names its licence files (``licenses``, relative to the tarball's top
folder) and its SPDX expression (``spdx``). A named file the tarball lacks is an error naming the
source and the path, before anything is built. Beside the texts, ``SOURCE`` says where the exact
source of the binaries is and how to fetch it again: LGPL-2.1 section 6 asks that the work be
accompanied by the complete corresponding source or a way to obtain it (README "Licences").
"""

from __future__ import annotations

import tarfile
from pathlib import Path, PurePosixPath

from .errors import GdalLambdaError
from .sources import Fetched

LICENSES_DIR = PurePosixPath("share/licenses")


def _members(archive: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    """Every regular file of the tarball by its path below the top folder."""
    out: dict[str, tarfile.TarInfo] = {}
    for member in archive.getmembers():
        parts = PurePosixPath(member.name).parts
        if member.isfile() and len(parts) > 1:
            out.setdefault(PurePosixPath(*parts[1:]).as_posix(), member)
    return out


def source_note(item: Fetched, fetch_hint: str) -> str:
    """The SOURCE file beside a component's licence texts."""
    source, mirror = item.source, item.mirror
    upstream = source.mirrors[0]
    lines = [
        f"{source.name} {source.version}",
        f"licence (SPDX): {source.spdx}",
        f"built from: {mirror.url}",
        f"sha256: {mirror.sha256}",
    ]
    if upstream.url != mirror.url:
        lines += [f"upstream release: {upstream.url}", f"upstream sha256: {upstream.sha256}"]
    lines += [
        "The binaries in lib/ that come from this source were compiled from exactly that",
        "tarball (verified against the sha256 above), unmodified.",
        f"To fetch and verify it again: {fetch_hint}",
    ]
    return "\n".join(lines) + "\n"


def write_licences(fetched: dict[str, Fetched], dest: Path, *, fetch_hint: str) -> list[Path]:
    """Copy every component's licence files out of its tarball into ``dest/<name>/``, with a
    SOURCE note; returns the files written. Raises one GdalLambdaError for the first source
    that has no licence data or lacks a named file."""
    written: list[Path] = []
    for name, item in fetched.items():
        source = item.source
        if not source.licenses or not source.spdx:
            raise GdalLambdaError(
                f"source {name} {source.version} has no licence data: add spdx and licenses to "
                "its [[sources]] entry in matrix.toml"
            )
        folder = dest / name
        folder.mkdir(parents=True, exist_ok=True)
        try:
            with tarfile.open(item.path) as archive:
                members = _members(archive)
                for wanted in source.licenses:
                    member = members.get(PurePosixPath(wanted).as_posix())
                    extracted = archive.extractfile(member) if member is not None else None
                    if extracted is None:
                        raise GdalLambdaError(
                            f"source {name} {source.version} ({item.mirror.url}): licence file "
                            f"{wanted} is not in the tarball; fix licenses in matrix.toml"
                        )
                    target = folder / wanted
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(extracted.read())
                    written.append(target)
        except tarfile.TarError as exc:
            raise GdalLambdaError(f"source {name}: {item.path} cannot be read ({exc})") from None
        note = folder / "SOURCE"
        note.write_text(source_note(item, fetch_hint), encoding="utf-8")
        written.append(note)
    return written
