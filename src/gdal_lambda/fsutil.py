"""Small file-system helpers shared by every module that writes user-visible files.

Every file is written beside its destination and renamed into place, so a reader (or an
interrupted run) never sees half a file; the temporary file is created the way a plain
``open(path, "w")`` would create it, mode ``0o666 & ~umask``, so what users keep follows their
umask (``tempfile.mkstemp`` would make it 0600).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def _create_beside(path: Path, suffix: str) -> tuple[int, Path]:
    """A new, empty, exclusively created file in ``path``'s folder; the umask applies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}{suffix}")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


@contextlib.contextmanager
def atomic_path(path: Path, *, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary file's path beside ``path``: renamed onto it if the block succeeds, removed
    if it raises (Ctrl-C included). For writers that want a path (``zipfile.ZipFile``)."""
    fd, tmp = _create_beside(path, suffix)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(path: Path, *, suffix: str = ".tmp") -> Iterator[BinaryIO]:
    """A binary file open for writing beside ``path``, renamed onto it when the block succeeds."""
    fd, tmp = _create_beside(path, suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: readers never see half a file."""
    with atomic_open(path) as handle:
        handle.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
