"""A local Lambda Runtime API endpoint for one invocation, so a function image runs the way
Lambda runs it: its runtime interface client (AWS's ``awslambdaric``) asks for the next event and
posts the result back.

The routes and headers are the documented ones (Lambda developer guide, "Using the Lambda
runtime API for custom runtimes"):

- ``GET /2018-06-01/runtime/invocation/next``: the event, with ``Lambda-Runtime-Aws-Request-Id``,
  ``Lambda-Runtime-Deadline-Ms``, ``Lambda-Runtime-Invoked-Function-Arn`` and
  ``Lambda-Runtime-Trace-Id``. The one event is served once; a second ``next`` (the client's
  loop after its response) waits until the endpoint stops.
- ``POST /2018-06-01/runtime/invocation/<request id>/response``: the handler's result.
- ``POST /2018-06-01/runtime/invocation/<request id>/error``: the handler's error
  (``errorType``, ``errorMessage``, ``stackTrace``).
- ``POST /2018-06-01/runtime/init/error``: the function could not start (its module does not
  import, the handler is not there).

    with RuntimeApi(event, function_name="fn", timeout_s=30) as api:
        ...  # start the container with AWS_LAMBDA_RUNTIME_API=api.address
        outcome = api.wait(timeout_s=60)
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

PREFIX = "/2018-06-01/runtime"


@dataclass
class Outcome:
    """What the function posted: ``kind`` is response, error or init-error; ``payload`` the
    JSON it sent (the result, or the error document)."""

    kind: str
    payload: Any


class RuntimeApi:
    """The endpoint, on 127.0.0.1 and a free port, in a thread of its own."""

    def __init__(
        self,
        event: object,
        *,
        function_name: str,
        timeout_s: float = 30.0,
        region: str = "us-east-1",
        host: str = "127.0.0.1",
    ) -> None:
        self.event = event
        self.request_id = str(uuid.uuid4())
        self.function_arn = f"arn:aws:lambda:{region}:000000000000:function:{function_name}"
        self.timeout_s = timeout_s
        self.served = False
        self.outcome: Outcome | None = None
        self._done = threading.Event()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer((host, 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        """``host:port``, the value of AWS_LAMBDA_RUNTIME_API."""
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def __enter__(self) -> RuntimeApi:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def wait(self, timeout_s: float) -> Outcome | None:
        """The outcome once the function posted it, or None after ``timeout_s``."""
        self._done.wait(timeout_s)
        return self.outcome

    def finished(self) -> bool:
        return self._done.is_set()

    # -- what the routes do ---------------------------------------------------------------------

    def next_invocation(self) -> tuple[int, dict[str, str], bytes]:
        if self.served:
            # The client asks again after its response: there is no second event. Hold the
            # request until the endpoint stops (Lambda would freeze the environment here).
            self._stopping.wait()
            return 503, {}, b""
        self.served = True
        deadline = int((time.time() + self.timeout_s) * 1000)
        headers = {
            "Lambda-Runtime-Aws-Request-Id": self.request_id,
            "Lambda-Runtime-Deadline-Ms": str(deadline),
            "Lambda-Runtime-Invoked-Function-Arn": self.function_arn,
            "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}",
            "Content-Type": "application/json",
        }
        return 200, headers, json.dumps(self.event).encode()

    def post(self, path: str, body: bytes) -> int:
        invocation = f"{PREFIX}/invocation/{self.request_id}/"
        if path == f"{PREFIX}/init/error":
            kind = "init-error"
        elif path == invocation + "response":
            kind = "response"
        elif path == invocation + "error":
            kind = "error"
        else:
            return 404
        try:
            payload = json.loads(body or b"null")
        except json.JSONDecodeError:
            payload = body.decode(errors="replace")
        if self.outcome is None:
            self.outcome = Outcome(kind, payload)
            self._done.set()
        return 202


def _handler_for(api: RuntimeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the function's own log is what matters."""

        def _reply(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the function's container is gone (removed once it had posted)

        def do_GET(self) -> None:
            if self.path != f"{PREFIX}/invocation/next":
                self._reply(404, {})
                return
            status, headers, body = api.next_invocation()
            self._reply(status, headers, body)

        def _body(self) -> bytes:
            """The request body, sized or chunked (curl streams a body of unknown size)."""
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def do_POST(self) -> None:
            body = self._body()
            self._reply(api.post(self.path, body), {"Content-Type": "application/json"}, b"{}")

    return Handler
