"""The source fetcher against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest
from httpserver import Behaviour, serve

from gdal_lambda import sources
from gdal_lambda.errors import GdalLambdaError
from gdal_lambda.versions import Mirror, Source

PAYLOAD = b"gdal-lambda test tarball\n" * 4096  # ~100 KiB: several chunks


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def site(tmp_path: Path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "good.tar.gz").write_bytes(PAYLOAD)
    (root / "other.tar.gz").write_bytes(PAYLOAD)
    (root / "evil.tar.gz").write_bytes(PAYLOAD[:-1] + b"!")
    with serve(root) as server:
        yield server


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _no_temp_files(directory: Path) -> bool:
    return not directory.exists() or not [p for p in directory.iterdir() if p.name.startswith(".")]


def test_downloads_verifies_and_caches(site, cache: Path) -> None:
    src = Source("proj", "1.0", (Mirror(site.url("good.tar.gz"), _sha(PAYLOAD)),))
    got = sources.fetch(src, cache, show_progress=False)
    assert got.path == cache / "good.tar.gz"
    assert got.path.read_bytes() == PAYLOAD
    assert _no_temp_files(cache)


def test_checksum_mismatch_names_url_and_digests_and_keeps_nothing(site, cache: Path) -> None:
    url = site.url("evil.tar.gz")
    src = Source("proj", "1.0", (Mirror(url, _sha(PAYLOAD)),))
    with pytest.raises(GdalLambdaError) as err:
        sources.fetch(src, cache, show_progress=False, log=lambda _: None)
    text = str(err.value)
    assert url in text
    assert _sha(PAYLOAD) in text
    assert _sha(PAYLOAD[:-1] + b"!") in text
    assert not (cache / "evil.tar.gz").exists()
    assert _no_temp_files(cache)


def test_fails_over_to_the_next_mirror(site, cache: Path) -> None:
    site.state.faults["/missing.tar.gz"] = Behaviour(status=404)
    src = Source(
        "geos",
        "1.0",
        (
            Mirror(f"http://127.0.0.1:{_closed_port()}/gone.tar.gz", _sha(PAYLOAD)),
            Mirror(site.url("missing.tar.gz"), _sha(PAYLOAD)),
            Mirror(site.url("evil.tar.gz"), _sha(PAYLOAD)),
            Mirror(site.url("other.tar.gz"), _sha(PAYLOAD)),
        ),
    )
    logs: list[str] = []
    got = sources.fetch(src, cache, show_progress=False, log=logs.append)
    assert got.mirror.url.endswith("other.tar.gz")
    assert got.path.read_bytes() == PAYLOAD
    assert sorted(p.name for p in cache.iterdir()) == ["other.tar.gz"]
    assert any("after:" in line for line in logs)


def test_all_mirrors_failing_is_one_error_listing_each_attempt(site, cache: Path) -> None:
    site.state.faults["/missing.tar.gz"] = Behaviour(status=503)
    dead = f"http://127.0.0.1:{_closed_port()}/gone.tar.gz"
    src = Source(
        "gdal",
        "9.9.9",
        (Mirror(dead, _sha(PAYLOAD)), Mirror(site.url("missing.tar.gz"), _sha(PAYLOAD))),
    )
    with pytest.raises(GdalLambdaError) as err:
        sources.fetch(src, cache, show_progress=False)
    text = str(err.value)
    assert text.startswith("could not fetch gdal 9.9.9 from any mirror")
    assert dead in text and "connection failed" in text
    assert site.url("missing.tar.gz") in text and "HTTP 503" in text


def test_interrupted_download_leaves_nothing_and_fails_over(site, cache: Path) -> None:
    site.state.faults["/good.tar.gz"] = Behaviour(truncate_at=1000)
    src = Source(
        "proj",
        "1.0",
        (
            Mirror(site.url("good.tar.gz"), _sha(PAYLOAD)),
            Mirror(site.url("other.tar.gz"), _sha(PAYLOAD)),
        ),
    )
    got = sources.fetch(src, cache, show_progress=False, log=lambda _: None)
    assert got.path.name == "other.tar.gz"
    assert not (cache / "good.tar.gz").exists()
    assert _no_temp_files(cache)


def test_interrupted_download_alone_is_an_error(site, cache: Path) -> None:
    site.state.faults["/good.tar.gz"] = Behaviour(truncate_at=1000)
    src = Source("proj", "1.0", (Mirror(site.url("good.tar.gz"), _sha(PAYLOAD)),))
    with pytest.raises(GdalLambdaError, match="could not fetch proj 1.0"):
        sources.fetch(src, cache, show_progress=False)
    assert not cache.exists() or not any(cache.iterdir())


def test_warm_cache_needs_no_network(site, cache: Path) -> None:
    src = Source("proj", "1.0", (Mirror(site.url("good.tar.gz"), _sha(PAYLOAD)),))
    sources.fetch(src, cache, show_progress=False)
    before = len(site.state.requests)
    offline = Source(
        "proj", "1.0", (Mirror(f"http://127.0.0.1:{_closed_port()}/good.tar.gz", _sha(PAYLOAD)),)
    )
    got = sources.fetch(offline, cache, show_progress=False)
    assert got.path.read_bytes() == PAYLOAD
    assert len(site.state.requests) == before


def test_tampered_cache_is_removed_and_fetched_again(site, cache: Path) -> None:
    src = Source("proj", "1.0", (Mirror(site.url("good.tar.gz"), _sha(PAYLOAD)),))
    path = sources.fetch(src, cache, show_progress=False).path
    path.write_bytes(PAYLOAD[:500])  # truncated in the cache
    logs: list[str] = []
    again = sources.fetch(src, cache, show_progress=False, log=logs.append)
    assert again.path.read_bytes() == PAYLOAD
    assert any("corrupt or tampered" in line for line in logs)


def test_tampered_cache_offline_is_an_error_and_removes_the_file(cache: Path) -> None:
    cache.mkdir(parents=True)
    (cache / "good.tar.gz").write_bytes(b"not the tarball")
    src = Source(
        "proj", "1.0", (Mirror(f"http://127.0.0.1:{_closed_port()}/good.tar.gz", _sha(PAYLOAD)),)
    )
    with pytest.raises(GdalLambdaError, match="could not fetch proj 1.0 from any mirror"):
        sources.fetch(src, cache, show_progress=False, log=lambda _: None)
    assert not (cache / "good.tar.gz").exists()


def test_cache_dir_follows_environment(tmp_path: Path) -> None:
    xdg = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert sources.cache_dir(xdg) == tmp_path / "xdg" / "gdal-lambda"
    mine = {**xdg, "GDAL_LAMBDA_CACHE": str(tmp_path / "mine")}
    assert sources.cache_dir(mine) == tmp_path / "mine"


def test_settings_come_from_the_mapping_given() -> None:
    settings = sources.Settings.from_env(
        {"GDAL_LAMBDA_CACHE": "/c", "GDAL_LAMBDA_CONNECT_TIMEOUT": "0.5"}
    )
    assert settings == sources.Settings(cache=Path("/c"), connect_timeout=0.5)
    assert sources.Settings.from_env({"GDAL_LAMBDA_CACHE": "/c"}).connect_timeout == 5.0
    for bad in ("0", "-1", "soon"):
        with pytest.raises(GdalLambdaError, match="GDAL_LAMBDA_CONNECT_TIMEOUT"):
            sources.Settings.from_env({"GDAL_LAMBDA_CONNECT_TIMEOUT": bad})
