"""Real servers for the publishing tests: moto in server mode, a fault-injecting proxy, registries.

    with moto_server() as endpoint: ...             # every AWS service on http://127.0.0.1:<port>
    with FaultProxy(endpoint) as proxy: ...         # in front of it: latency, 429s, 500s, a log
    with registry(tmp, auth=("user", "pw")) as r:   # Debian's docker-registry on 127.0.0.1

Used by tests/fast/test_publish*.py, tests/fast/test_push*.py and benchmarks/publish_regions.py.
Fixtures are plain functions here; test modules import the ones they use.
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from helpers import make_variant

from gdal_lambda.variant import Variant

FAKE_ACCOUNT = "123456789012"
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------------------------
# AWS environment and moto


def aws_env(tmp: Path) -> dict[str, str]:
    """Fake credentials; the host's AWS config and instance metadata out of the way."""
    empty = tmp / "aws-empty"
    empty.write_text("", encoding="utf-8")
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(empty),
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


AWS_UNSET = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "GDAL_LAMBDA_ENDPOINT_URL",
    "GDAL_LAMBDA_DIRECT_UPLOAD_LIMIT",
    "GDAL_LAMBDA_MAX_ATTEMPTS",
    "GDAL_LAMBDA_RETRY_MODE",
    "GDAL_LAMBDA_MANIFEST",
)


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's ThreadedMotoServer on 127.0.0.1 and a free port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def moto_reset(endpoint: str) -> None:
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()


def variant(line: str = "3.13", python: str | None = "3.12", **parts: str | None) -> Variant:
    """The Variant `invoke publish` would resolve (target, recipe, arch: keyword ``parts``)."""
    return make_variant(line, python=python, **parts)


def make_zip(path: Path, payload: bytes = b"print('hello')\n", *, files: int = 1) -> Path:
    """A small layer zip; different ``payload`` gives a different sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(files):
            archive.writestr(f"python/mod{index}.py", payload)
    return path


def make_big_unzipped_zip(path: Path, unzipped: int) -> Path:
    """A zip that is small on disk but declares ``unzipped`` bytes of (compressible) content."""
    chunk = b"\0" * (4 * 1024 * 1024)
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("lib/huge.bin", "w", force_zip64=True) as handle,
    ):
        left = unzipped
        while left > 0:
            handle.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)
    return path


# ------------------------------------------------------------------------------------------------
# The fault-injecting proxy


@dataclass
class Fault:
    """Answer matching requests with an error instead of forwarding them.

    ``region``/``service`` match the SigV4 credential scope in the Authorization header, ``path``
    is a regex searched in the request path, ``method`` the HTTP method. ``times`` limits how many
    requests the fault answers (None: all of them).
    """

    status: int = 500
    code: str = "ServiceException"
    region: str | None = None
    service: str | None = None
    path: str | None = None
    method: str | None = None
    times: int | None = None
    hits: int = 0

    def matches(self, seen: Seen) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        return (
            (self.region is None or seen.region == self.region)
            and (self.service is None or seen.service == self.service)
            and (self.method is None or seen.method == self.method)
            and (self.path is None or re.search(self.path, seen.path) is not None)
        )


@dataclass
class Seen:
    method: str
    path: str
    region: str
    service: str
    action: str  # query-protocol Action (STS, EC2), else ""
    attempt: str  # botocore's amz-sdk-request header: "attempt=2; max=5"
    status: int = 0
    injected: bool = False

    @property
    def writes(self) -> bool:
        """Would this request change anything on AWS?"""
        if self.service in {"sts", "ec2"}:
            return not self.action.startswith(("Get", "Describe", "List"))
        return self.method not in {"GET", "HEAD"}


XML_ERRORS = {
    "s3": "<?xml version='1.0' encoding='UTF-8'?><Error>{error}</Error>",
    "ec2": "<Response><Errors><Error>{error}</Error></Errors><RequestID>1</RequestID></Response>",
    "sts": "<ErrorResponse><Error><Type>Sender</Type>{error}</Error></ErrorResponse>",
}


@dataclass
class ProxyState:
    upstream: tuple[str, int]
    latency: float = 0.0
    faults: list[Fault] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    inflight: int = 0
    max_inflight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class _ProxyHandler(BaseHTTPRequestHandler):
    server: _ProxyServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        state = self.server.state
        body = self._body()
        scope = _SCOPE.search(self.headers.get("Authorization", ""))
        action = ""
        if self.command == "POST" and b"Action=" in body[:200]:
            action = urllib.parse.parse_qs(body.decode("latin-1")).get("Action", [""])[0]
        seen = Seen(
            method=self.command,
            path=self.path,
            region=scope.group(1) if scope else "",
            service=scope.group(2) if scope else "",
            action=action,
            attempt=self.headers.get("amz-sdk-request", ""),
        )
        with state.lock:
            state.seen.append(seen)
            state.inflight += 1
            state.max_inflight = max(state.max_inflight, state.inflight)
            fault = next((f for f in state.faults if f.matches(seen)), None)
            if fault:
                fault.hits += 1
        try:
            if state.latency:
                time.sleep(state.latency)
            if fault:
                seen.injected = True
                self._answer_fault(seen, fault)
            else:
                self._forward(seen, body)
        finally:
            with state.lock:
                state.inflight -= 1

    def _answer_fault(self, seen: Seen, fault: Fault) -> None:
        seen.status = fault.status
        error = f"<Code>{fault.code}</Code><Message>injected by the test proxy</Message>"
        if seen.service in XML_ERRORS:  # each protocol's own error document
            data = XML_ERRORS[seen.service].format(error=error).encode()
            kind = "text/xml"
        else:
            data = json.dumps({"__type": fault.code, "message": "injected by the test proxy"})
            data = data.encode()
            kind = "application/json"
        self.send_response(fault.status)
        self.send_header("Content-Type", kind)
        self.send_header("x-amzn-ErrorType", fault.code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _forward(self, seen: Seen, body: bytes) -> None:
        host, port = self.server.state.upstream
        conn = http.client.HTTPConnection(host, port, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        if body or self.command in {"POST", "PUT"}:
            headers["Content-Length"] = str(len(body))
        try:
            conn.request(self.command, self.path, body=body or None, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
            seen.status = answer.status
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in _HOP:
                    self.send_header(key, value)
            if self.command == "HEAD":
                self.send_header("Content-Length", answer.getheader("Content-Length") or "0")
            else:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        finally:
            conn.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, state: ProxyState) -> None:
        self.state = state
        super().__init__(("127.0.0.1", 0), _ProxyHandler)


class FaultProxy:
    """A real HTTP server on 127.0.0.1 that forwards to ``upstream`` with faults and latency."""

    def __init__(self, upstream: str, latency: float = 0.0) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self.state = ProxyState(upstream=(parsed.hostname or "127.0.0.1", parsed.port or 80))
        self.state.latency = latency
        self._server = _ProxyServer(self.state)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def seen(self) -> list[Seen]:
        with self.state.lock:
            return list(self.state.seen)

    def add(self, fault: Fault) -> Fault:
        with self.state.lock:
            self.state.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self.state.lock:
            self.state.faults.clear()
            self.state.seen.clear()
            self.state.max_inflight = 0

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# ------------------------------------------------------------------------------------------------
# Docker and the registry


def require_or_skip(reason: str) -> None:
    """Skip, unless GDAL_LAMBDA_REQUIRE_DOCKER=1 (CI): then the missing piece is a failure."""
    if os.environ.get("GDAL_LAMBDA_REQUIRE_DOCKER") == "1":
        pytest.fail(f"{reason} (GDAL_LAMBDA_REQUIRE_DOCKER=1)")
    pytest.skip(reason)


REGISTRY_BIN = "/usr/bin/docker-registry"


@dataclass
class Registry:
    host: str  # 127.0.0.1:<port>
    root: Path
    auth: tuple[str, str] | None

    def tags(self, repository: str) -> list[str]:
        answer = requests.get(
            f"http://{self.host}/v2/{repository}/tags/list", auth=self.auth, timeout=10
        )
        if answer.status_code == 404:
            return []
        answer.raise_for_status()
        return sorted(answer.json().get("tags") or [])


@contextmanager
def registry(tmp: Path, auth: tuple[str, str] | None = None) -> Iterator[Registry]:
    """Debian's docker-registry on 127.0.0.1:<free port>, storage in ``tmp``; stopped after."""
    binary = shutil.which("docker-registry") or REGISTRY_BIN
    if not Path(binary).is_file():
        require_or_skip("docker-registry is not installed (apt-get install docker-registry)")
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    auth_block = ""
    if auth:
        htpasswd = shutil.which("htpasswd")
        if not htpasswd:
            require_or_skip("htpasswd is not installed (apt-get install apache2-utils)")
        assert htpasswd is not None
        line = subprocess.run(
            [htpasswd, "-Bbn", *auth], check=True, capture_output=True, text=True
        ).stdout.strip()
        (tmp / "htpasswd").write_text(line + "\n", encoding="utf-8")
        auth_block = f"auth:\n  htpasswd:\n    realm: gdal-lambda-test\n    path: {tmp}/htpasswd\n"
    config = tmp / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp}/data\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: gdal-lambda-test-secret\n" + auth_block,
        encoding="utf-8",
    )
    log = (tmp / "registry.log").open("wb")
    process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    text = (tmp / "registry.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"docker-registry did not start: {text}") from None
                time.sleep(0.1)
        yield Registry(host=f"127.0.0.1:{port}", root=tmp, auth=auth)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def tiny_image_tar(marker: str) -> bytes:
    """A root file system of one small file: what `docker import` needs, nothing pulled."""
    import tarfile

    data = f"gdal-lambda push test {marker}\n".encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(f"etc/gdal-lambda-test-{marker}")
        info.size = len(data)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------------
# pytest fixtures (test modules import the ones they use)


@pytest.fixture
def aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Fake credentials in the environment, nothing of the host's AWS set-up."""
    for name in AWS_UNSET:
        monkeypatch.delenv(name, raising=False)
    env = aws_env(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def moto(moto_endpoint: str, aws: dict[str, str]) -> str:
    """The moto endpoint, emptied: every test starts with no layer, bucket or policy."""
    moto_reset(moto_endpoint)
    return moto_endpoint


@pytest.fixture
def proxy(moto: str) -> Iterator[FaultProxy]:
    with FaultProxy(moto) as running:
        yield running
