"""Fetch pinned source tarballs into a local cache, verified by sha256, before any Docker build.

* The cache is ``$GDAL_LAMBDA_CACHE`` or ``$XDG_CACHE_HOME/gdal-lambda`` (``~/.cache/...``);
  :class:`Settings` reads these (and ``$GDAL_LAMBDA_CONNECT_TIMEOUT``) from a mapping given to it.
* A cached file is used only if its digest matches; a warm cache needs no network.
* Mirrors are tried in the matrix's order, each with a short connect timeout; a download goes to
  a temporary file in the cache directory and is renamed into place only once verified, so an
  interrupted or tampered download never leaves a file behind.
* If every mirror fails, one error lists each attempt.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import requests
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from .errors import GdalLambdaError
from .fsutil import atomic_open
from .versions import Mirror, Source

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0
CHUNK = 1 << 16
ENV_CACHE = "GDAL_LAMBDA_CACHE"
ENV_CONNECT_TIMEOUT = "GDAL_LAMBDA_CONNECT_TIMEOUT"


@dataclass(frozen=True)
class Settings:
    """Where the cache is and how long to wait for a mirror: built from an explicit mapping."""

    cache: Path
    connect_timeout: float = CONNECT_TIMEOUT

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        raw = env.get(ENV_CONNECT_TIMEOUT)
        timeout = CONNECT_TIMEOUT
        if raw is not None and raw.strip():
            try:
                timeout = float(raw)
            except ValueError:
                timeout = -1.0
            if not timeout > 0:
                raise GdalLambdaError(
                    f"{ENV_CONNECT_TIMEOUT}={raw!r} is not a positive number of seconds"
                )
        return cls(cache=cache_dir(env), connect_timeout=timeout)


class ChecksumError(GdalLambdaError):
    """A file's sha256 differs from the matrix."""


class FetchError(GdalLambdaError):
    """No mirror gave a verified file; ``attempts`` says why for each, one line a mirror."""

    def __init__(self, message: str, attempts: list[str]) -> None:
        super().__init__(message)
        self.attempts = attempts


@dataclass(frozen=True)
class Fetched:
    source: Source
    mirror: Mirror
    path: Path


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$GDAL_LAMBDA_CACHE``, else ``$XDG_CACHE_HOME/gdal-lambda``, else ``~/.cache/...``."""
    env = os.environ if env is None else env
    explicit = env.get(ENV_CACHE)
    if explicit:
        return Path(explicit)
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gdal-lambda"


def sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _cached(mirror: Mirror, directory: Path, log: Callable[[str], None]) -> Path | None:
    """The cached file for a mirror if it verifies; a bad one is removed and reported."""
    path = directory / mirror.filename
    if not path.is_file():
        return None
    actual = sha256_of(path)
    if actual == mirror.sha256:
        return path
    path.unlink()
    log(
        f"warning: cached {path} was corrupt or tampered with "
        f"(expected sha256 {mirror.sha256}, got {actual}); removed it, fetching again"
    )
    return None


def _download(
    mirror: Mirror, directory: Path, progress: Progress | None, connect_timeout: float
) -> Path:
    """Download one mirror's file, verify it, rename it into the cache. Raises on any failure."""
    final = directory / mirror.filename
    digest = hashlib.sha256()
    with (
        atomic_open(final, suffix=".part") as out,
        requests.get(mirror.url, stream=True, timeout=(connect_timeout, READ_TIMEOUT)) as resp,
    ):
        resp.raise_for_status()
        total = int(resp.headers.get("Content-Length") or 0) or None
        task = progress.add_task(mirror.filename, total=total) if progress else None
        received = 0
        for block in resp.iter_content(CHUNK):
            out.write(block)
            digest.update(block)
            received += len(block)
            if progress is not None and task is not None:
                progress.update(task, advance=len(block))
        if total is not None and received != total:
            raise OSError(f"connection closed after {received} of {total} bytes")
        actual = digest.hexdigest()
        if actual != mirror.sha256:  # raised inside: the partial file is removed, never renamed
            raise ChecksumError(
                f"sha256 mismatch for {mirror.url}: expected {mirror.sha256}, got {actual}"
            )
    return final


def _describe(exc: BaseException, connect_timeout: float) -> str:
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, requests.ConnectTimeout):
        return f"no connection within {connect_timeout:g} s"
    if isinstance(exc, requests.ConnectionError):
        return f"connection failed ({exc.__class__.__name__})"
    return str(exc) or exc.__class__.__name__


def fetch(
    source: Source,
    directory: Path | None = None,
    *,
    show_progress: bool = True,
    log: Callable[[str], None] = print,
    settings: Settings | None = None,
) -> Fetched:
    """Return a verified local copy of ``source``, from the cache or the first working mirror.

    ``settings`` None: :meth:`Settings.from_env` of this process's environment."""
    settings = settings if settings is not None else Settings.from_env(os.environ)
    directory = directory if directory is not None else settings.cache / "sources"
    for mirror in source.mirrors:
        path = _cached(mirror, directory, log)
        if path is not None:
            return Fetched(source, mirror, path)

    attempts: list[str] = []
    progress = (
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            transient=True,
        )
        if show_progress
        else None
    )
    for mirror in source.mirrors:
        try:
            if progress is not None:
                with progress:
                    path = _download(mirror, directory, progress, settings.connect_timeout)
            else:
                path = _download(mirror, directory, None, settings.connect_timeout)
        except ChecksumError as exc:
            attempts.append(str(exc))
            log(f"warning: {exc}")
            continue
        except (requests.RequestException, OSError) as exc:
            attempts.append(f"{mirror.url}: {_describe(exc, settings.connect_timeout)}")
            continue
        if attempts:
            log(
                f"fetched {source.name} {source.version} from {mirror.url} after: "
                + "; ".join(attempts)
            )
        return Fetched(source, mirror, path)
    listing = "\n".join(f"  - {a}" for a in attempts)
    raise FetchError(
        f"could not fetch {source.name} {source.version} from any mirror "
        f"(check the network, or put a verified copy in {directory}):\n{listing}",
        attempts,
    )


def fetch_all(
    sources: list[Source],
    directory: Path | None = None,
    *,
    show_progress: bool = True,
    settings: Settings | None = None,
) -> dict[str, Fetched]:
    return {
        s.name: fetch(s, directory, show_progress=show_progress, settings=settings) for s in sources
    }
