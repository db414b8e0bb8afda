"""Files written for users follow their umask, as a plain open() would: not mkstemp's 0600."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from httpserver import serve

from gdal_lambda import assembly, fsutil, sources
from gdal_lambda.publish import Manifest
from gdal_lambda.versions import Mirror, Source


@pytest.fixture(params=[0o022, 0o027])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_manifest_follows_the_umask(umask: int, tmp_path: Path) -> None:
    book = Manifest(tmp_path / "layers.json")
    book.record("gdal313-py312-geo", "us-east-1", {"version": 1, "arn": "arn:x"})

    assert mode(book.path) == 0o666 & ~umask
    assert mode(book.markdown) == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layers.json", "layers.md"]


def test_a_dist_zip_follows_the_umask(umask: int, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "python").mkdir(parents=True)
    (tree / "python" / "mod.py").write_text("x = 1\n")
    dest = tmp_path / "dist" / "layer.zip"

    assembly.write_zip(tree, dest)

    assert mode(dest) == 0o666 & ~umask
    assert sorted(p.name for p in dest.parent.iterdir()) == ["layer.zip"]


def test_a_cached_tarball_follows_the_umask(umask: int, tmp_path: Path) -> None:
    payload = b"tarball\n" * 1000
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "proj.tar.gz").write_bytes(payload)
    cache = tmp_path / "cache"
    with serve(tmp_path / "www") as site:
        mirror = Mirror(site.url("proj.tar.gz"), hashlib.sha256(payload).hexdigest())
        got = sources.fetch(Source("proj", "1.0", (mirror,)), cache, show_progress=False)

    assert mode(got.path) == 0o666 & ~umask
    assert sorted(p.name for p in cache.iterdir()) == ["proj.tar.gz"]


def test_a_failed_write_leaves_nothing_and_keeps_the_old_file(umask: int, tmp_path: Path) -> None:
    target = tmp_path / "kept.txt"
    fsutil.atomic_write_text(target, "old\n")

    with pytest.raises(RuntimeError), fsutil.atomic_open(target) as handle:
        handle.write(b"half")
        raise RuntimeError("interrupted")

    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.txt"]
