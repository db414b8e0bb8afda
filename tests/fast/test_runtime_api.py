"""The local Lambda Runtime API endpoint of `invoke run --image`, driven over real HTTP the way a
runtime interface client drives it (the real awslambdaric drives it in tests/image)."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from gdal_lambda.runtime_api import RuntimeApi

BASE = "/2018-06-01/runtime"


def test_the_event_with_its_headers_then_the_response() -> None:
    with RuntimeApi({"x": 1}, function_name="fn", timeout_s=30) as api:
        url = f"http://{api.address}{BASE}"
        started = time.time()
        got = requests.get(f"{url}/invocation/next", timeout=5)
        assert got.status_code == 200 and got.json() == {"x": 1}
        request_id = got.headers["Lambda-Runtime-Aws-Request-Id"]
        assert request_id == api.request_id
        deadline = int(got.headers["Lambda-Runtime-Deadline-Ms"]) / 1000
        assert started + 29 < deadline < time.time() + 31
        assert got.headers["Lambda-Runtime-Invoked-Function-Arn"] == (
            "arn:aws:lambda:us-east-1:000000000000:function:fn"
        )
        assert got.headers["Lambda-Runtime-Trace-Id"].startswith("Root=1-")
        assert api.wait(0.1) is None
        posted = requests.post(f"{url}/invocation/{request_id}/response", json={"ok": True})
        assert posted.status_code == 202
        outcome = api.wait(5)
        assert outcome is not None and (outcome.kind, outcome.payload) == ("response", {"ok": True})


@pytest.mark.parametrize(
    ("path", "kind"), [("invocation/{id}/error", "error"), ("init/error", "init-error")]
)
def test_errors_are_recorded_with_their_kind(path: str, kind: str) -> None:
    error = {"errorType": "ValueError", "errorMessage": "no", "stackTrace": []}
    with RuntimeApi({}, function_name="fn") as api:
        url = f"http://{api.address}{BASE}/{path.format(id=api.request_id)}"
        # curl streams a body of unknown size chunked: the endpoint reads both forms.
        chunks = iter([json.dumps(error).encode()])
        assert requests.post(url, data=chunks, timeout=5).status_code == 202
        outcome = api.wait(5)
        assert outcome is not None and (outcome.kind, outcome.payload) == (kind, error)


def test_another_request_id_or_path_is_not_found() -> None:
    with RuntimeApi({}, function_name="fn") as api:
        url = f"http://{api.address}{BASE}"
        assert requests.post(f"{url}/invocation/other/response", json={}).status_code == 404
        assert requests.get(f"{url}/invocation/other", timeout=5).status_code == 404
        assert api.wait(0.1) is None


def test_the_second_next_waits_until_the_endpoint_stops() -> None:
    """There is one event: the client's next `next` is held, as Lambda freezes the sandbox."""
    answers: list[int] = []
    with RuntimeApi({}, function_name="fn") as api:
        url = f"http://{api.address}{BASE}/invocation/next"
        requests.get(url, timeout=5)
        waiting = threading.Thread(target=lambda: answers.append(requests.get(url).status_code))
        waiting.start()
        time.sleep(0.3)
        assert answers == []
    waiting.join(5)
    assert answers in ([503], [])
