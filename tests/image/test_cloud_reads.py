"""Reading COGs the way a function on Lambda does, with the layer in the floor runtime: S3 with
the credentials Lambda gives a function (its key, secret and session token variables; the
container-credentials endpoint), HTTP/2 over TLS, and what a function sees when the server
refuses, drops or stalls (GDAL's error, one line, no secret, no hang past GDAL_HTTP_TIMEOUT)."""

from __future__ import annotations

import datetime
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nginx
import pytest
import requests
from httpserver import Behaviour, serve
from image_helpers import READ_TILES, moto_s3, s3_env, tiles_to_read
from packaging.version import Version

from gdal_lambda import runtime

pytestmark = pytest.mark.image

# GDAL reads AWS_CONTAINER_CREDENTIALS_FULL_URI since 3.8.2 (#8858) and sends
# AWS_CONTAINER_AUTHORIZATION_TOKEN with it since 3.9.1 (#9881), GDAL's NEWS.md: a line older
# than that cannot authenticate the container way, and its test records it.
CONTAINER_CREDENTIALS_FROM = Version("3.9.1")

# Opens a file and reads a pixel; prints {"value": ...}, or "error: <type>: <message>" and exits 1.
READ_ONE = r"""
import json, sys
import rasterio
from rasterio.windows import Window
try:
    with rasterio.open(sys.argv[1]) as src:
        print(json.dumps({"value": int(src.read(1, window=Window(300, 300, 1, 1))[0, 0])}))
except Exception as exc:
    print(f"error: {type(exc).__name__}: {exc}")
    sys.exit(1)
"""


def _read(cli, variant, opt: Path, name: str, env: dict[str, str]) -> tuple[int, str]:
    status, out = runtime.run_clean(
        cli, variant, ["python3", "-c", READ_ONE, name], opt=opt, env=env
    )
    return status, out.strip()


def _one_error_line(status: int, out: str) -> str:
    """The function got one line of GDAL's error, not a traceback."""
    assert status == 1, out
    lines = [line for line in out.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in out, out
    return errors[0]


@pytest.fixture
def s3_with_iam(cog_dir: Path) -> Iterator[dict]:
    """moto's S3 with IAM enforced: cogs/a/cog.tif, a role allowed to read it, and that role's
    temporary credentials (key, secret, session token), as Lambda gives a function. Requests
    signed with anything else are refused, so a read that works proves the credentials used."""
    with moto_s3() as (endpoint, s3):
        s3.upload_file(str(cog_dir / "cog.tif"), "cogs", "a/cog.tif")
        url = f"http://{endpoint}"
        import boto3

        session = {
            "endpoint_url": url,
            "region_name": "us-east-1",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        iam, sts = boto3.client("iam", **session), boto3.client("sts", **session)
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument=json.dumps(trust))
        read = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}
            ],
        }
        iam.put_role_policy(RoleName="fn", PolicyName="read", PolicyDocument=json.dumps(read))
        creds = sts.assume_role(RoleArn=role["Role"]["Arn"], RoleSessionName="fn")["Credentials"]
        # From here on moto checks every request's signature and the role's policy.
        requests.post(f"{url}/moto-api/reset-auth", data=b"0", timeout=10).raise_for_status()
        try:
            yield {"endpoint": endpoint, "creds": creds}
        finally:  # moto's setting is its process's: the next server starts open again
            requests.post(f"{url}/moto-api/reset-auth", data=b"inf", timeout=10)


@contextmanager
def credentials_endpoint(token: str, creds: dict) -> Iterator[dict]:
    """The container-credentials endpoint Lambda runs for SnapStart and container runtimes: it
    answers GET with the credentials JSON when the Authorization header is the token, 403
    otherwise. Yields {"url": ..., "calls": [Authorization headers seen]}."""
    state: dict = {"calls": []}
    expiration = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    body = json.dumps(
        {
            "AccessKeyId": creds["AccessKeyId"],
            "SecretAccessKey": creds["SecretAccessKey"],
            "Token": creds["SessionToken"],
            "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            state["calls"].append(self.headers.get("Authorization"))
            ok = self.headers.get("Authorization") == token
            self.send_response(200 if ok else 403)
            payload = body if ok else b'{"message":"invalid token"}'
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        state["url"] = f"http://127.0.0.1:{server.server_address[1]}/2023-01-01/credentials"
        yield state
    finally:
        server.shutdown()
        server.server_close()


def test_s3_with_the_functions_key_secret_and_session_token(cli, variant, opt, s3_with_iam) -> None:
    creds = s3_with_iam["creds"]
    env = {
        **s3_env(s3_with_iam["endpoint"]),
        "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
        "AWS_SESSION_TOKEN": creds["SessionToken"],
    }
    status, out = _read(cli, variant, opt, "/vsis3/cogs/a/cog.tif", env)
    assert status == 0, out
    assert json.loads(out.splitlines()[-1]) == {"value": 1234}
    # The same key with another session token is refused: the token is what was checked.
    status, out = _read(
        cli, variant, opt, "/vsis3/cogs/a/cog.tif", {**env, "AWS_SESSION_TOKEN": "x"}
    )
    line = _one_error_line(status, out)
    assert creds["SecretAccessKey"] not in line


def test_s3_with_the_container_credentials_endpoint(cli, variant, opt, line, s3_with_iam) -> None:
    """AWS_CONTAINER_CREDENTIALS_FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN, no key in the
    environment: GDAL fetches the role's credentials from the endpoint, sending the token."""
    token = "token-for-the-test"
    with credentials_endpoint(token, s3_with_iam["creds"]) as endpoint:
        env = {
            **s3_env(s3_with_iam["endpoint"]),
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoint["url"],
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": token,
        }
        status, out = _read(cli, variant, opt, "/vsis3/cogs/a/cog.tif", env)
    if Version(line.version("gdal")) < CONTAINER_CREDENTIALS_FROM:
        _one_error_line(status, out)  # recorded: this line's GDAL cannot (README "S3")
        return
    assert status == 0, out
    assert json.loads(out.splitlines()[-1]) == {"value": 1234}
    assert endpoint["calls"] and set(endpoint["calls"]) == {token}


def test_a_credentials_endpoint_that_refuses_the_token(cli, variant, opt, s3_with_iam) -> None:
    """Bad input: the endpoint answers 403 to the token; the function gets GDAL's error on one
    line, naming neither the token nor a secret."""
    with credentials_endpoint("the-right-token", s3_with_iam["creds"]) as endpoint:
        env = {
            **s3_env(s3_with_iam["endpoint"]),
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoint["url"],
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": "a-wrong-token-1234",
        }
        status, out = _read(cli, variant, opt, "/vsis3/cogs/a/cog.tif", env)
    _one_error_line(status, out)
    assert endpoint["calls"] == ["a-wrong-token-1234"] * len(endpoint["calls"]) != []
    for secret in (
        "a-wrong-token-1234",
        "the-right-token",
        s3_with_iam["creds"]["SecretAccessKey"],
    ):
        assert secret not in out, out


def test_tile_reads_arrive_as_http2(cli, variant, opt, tiles_cog: Path, tmp_path: Path) -> None:
    """nginx over TLS with HTTP/2 and a test CA: with GDAL_HTTP_MULTIPLEX=YES
    every request of a tile read is HTTP/2 in nginx's log; asked for HTTP/1.1, the same reads are
    logged as HTTP/1.1 (the log tells them apart)."""
    tls = nginx.make_tls(tmp_path / "tls")
    tiles = tiles_to_read(1)
    # GDAL_CURL_CA_BUNDLE, not CURL_CA_BUNDLE: rasterio sets the former to certifi's bundle
    # (which GDAL prefers) unless it is set (README "Lambda settings").
    env = {"GDAL_CURL_CA_BUNDLE": "/certs/ca.pem", "GDAL_HTTP_MULTIPLEX": "YES"}
    seen = {}
    with nginx.serve(tiles_cog.parent, tls=tls) as server:
        for base, (version, extra) in enumerate(
            (("default", {}), ("1.1", {"GDAL_HTTP_VERSION": "1.1"}))
        ):
            server.clear()
            args = [
                [f"/vsicurl/{server.url(f'copy-{10 * base + i}/tiles.tif')}", t.z, t.x, t.y]
                for i, t in enumerate(tiles)
            ]
            status, out = runtime.run_clean(
                cli,
                variant,
                ["python3", "-c", READ_TILES, json.dumps(args)],
                opt=opt,
                env={**env, **extra},
                mounts={"/certs": tls.ca.parent},
            )
            assert status == 0, out[-3000:]
            seen[version] = {e.protocol for e in server.entries()}
    assert seen == {"default": {"HTTP/2.0"}, "1.1": {"HTTP/1.1"}}


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        (Behaviour(status=403), "403"),
        (Behaviour(truncate_at=100), ""),
        (Behaviour(truncate_at=100, stall=20), ""),
    ],
    ids=["403", "dropped", "stalled"],
)
def test_a_cog_url_that_fails_mid_read(cli, variant, opt, cog_dir, fault, says) -> None:
    """Bad input: the server refuses, drops the connection mid-body, or stalls: the function
    gets GDAL's error on one line within GDAL_HTTP_TIMEOUT (the gdalrc's retries turned off by
    a variable, which wins), never a hang."""
    timeout = 3
    env = {"GDAL_HTTP_TIMEOUT": str(timeout), "GDAL_HTTP_MAX_RETRY": "0"}
    with serve(cog_dir) as server:
        server.state.faults["/cog.tif"] = fault
        started = time.monotonic()
        status, out = _read(cli, variant, opt, f"/vsicurl/{server.url('cog.tif')}", env)
        elapsed = time.monotonic() - started
    line = _one_error_line(status, out)
    assert says in line, line
    # container start and interpreter included: well under the 20 s the stalled server hangs,
    # and the stalled read did wait for GDAL_HTTP_TIMEOUT (it is what ended it)
    assert elapsed < timeout + 6, (elapsed, line)
    if fault.stall:
        assert elapsed >= timeout, (elapsed, line)
