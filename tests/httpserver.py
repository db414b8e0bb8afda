"""A real HTTP server on 127.0.0.1 for tests: static files with Range support, plus faults.

Used by the fetcher tests (mirrors that fail, truncate or serve the wrong bytes) and by the
image tests (GDAL's /vsicurl/ reading a COG with Range requests).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class Behaviour:
    """What the server does for a path: serve it, fail it, or cut it short."""

    status: int | None = None  # answer with this status instead of the file
    truncate_at: int | None = None  # send a full Content-Length but close after N bytes
    stall: float = 0.0  # with truncate_at: hang this many seconds before closing


@dataclass
class ServerState:
    root: Path
    faults: dict[str, Behaviour] = field(default_factory=dict)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, path, Range


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send_file(self, head: bool) -> None:
        state = self.server.state
        state.requests.append((self.command, self.path, self.headers.get("Range")))
        path = self.path.split("?", 1)[0]
        fault = state.faults.get(path)
        if fault and fault.status:
            self.send_response(fault.status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        file = (state.root / path.lstrip("/")).resolve()
        if file.is_dir():  # a package index's /simple/<name>/ page
            file = file / "index.html"
        if not file.is_file() or state.root.resolve() not in file.parents:
            self.send_response(HTTPStatus.NOT_FOUND)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = file.read_bytes()
        start, end = 0, len(data) - 1
        status = HTTPStatus.OK
        match = _RANGE.match(self.headers.get("Range", ""))
        if match:
            first, last = match.groups()
            if first:
                start = int(first)
                end = min(int(last), end) if last else end
            else:  # suffix range: the last N bytes
                start = max(0, len(data) - int(last))
            if start >= len(data):
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = HTTPStatus.PARTIAL_CONTENT
        body = data[start : end + 1]
        self.send_response(status)
        self.send_header("Accept-Ranges", "bytes")
        if file.suffix == ".html":  # pip reads an index page only when it says it is HTML
            self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        if status == HTTPStatus.PARTIAL_CONTENT:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.end_headers()
        if head:
            return
        if fault and fault.truncate_at is not None:
            self.wfile.write(body[: fault.truncate_at])
            self.wfile.flush()
            if fault.stall:
                time.sleep(fault.stall)
            self.close_connection = True
            return
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send_file(head=False)

    def do_HEAD(self) -> None:
        self._send_file(head=True)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: ServerState, host: str) -> None:
        self.state = state
        super().__init__((host, 0), _Handler)


@dataclass
class RunningServer:
    state: ServerState
    port: int
    host: str

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}/{path.lstrip('/')}"


@contextmanager
def serve(root: Path, host: str = "127.0.0.1") -> Iterator[RunningServer]:
    state = ServerState(root=root)
    server = _Server(state, host)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield RunningServer(state=state, port=server.server_address[1], host=host)
    finally:
        server.shutdown()
        server.server_close()
