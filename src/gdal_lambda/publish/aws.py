"""Reaching AWS: settings from an explicit mapping, one session, shared clients, error wording.

Every AWS call goes through boto3's credential chain and botocore's retry modes (no
hand-written retry loops). Errors that would fail every region the same way become one
GdalLambdaError line (:func:`fatal_errors`); the others become a region's one-line reason
(:func:`reason`).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from .. import limits
from ..errors import GdalLambdaError

RETRY_MODES = ("standard", "adaptive")
DEFAULT_RETRY_MODE = "standard"
DEFAULT_ATTEMPTS = 5
DEFAULT_JOBS = 16

ENV_ENDPOINT = "GDAL_LAMBDA_ENDPOINT_URL"
ENV_ATTEMPTS = "GDAL_LAMBDA_MAX_ATTEMPTS"
ENV_RETRY_MODE = "GDAL_LAMBDA_RETRY_MODE"
ENV_DIRECT_LIMIT = limits.ENV_DIRECT_LIMIT
ENV_BOTO_ENDPOINT = "AWS_ENDPOINT_URL"  # boto3's own; read for messages only

_SHA = re.compile(r"sha256:([0-9a-f]{64})")


@dataclass(frozen=True)
class Settings:
    """How to reach AWS. ``endpoint_url`` None: boto3's chain (AWS_ENDPOINT_URL or AWS itself)."""

    endpoint_url: str | None = None
    retry_mode: str = DEFAULT_RETRY_MODE
    max_attempts: int = DEFAULT_ATTEMPTS
    jobs: int = DEFAULT_JOBS
    direct_upload_limit: int = limits.DIRECT_UPLOAD_LIMIT  # bytes; larger zips go through S3
    connect_timeout: float = 10.0
    read_timeout: float = 300.0
    boto_endpoint_url: str | None = None  # $AWS_ENDPOINT_URL as seen, for messages

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str],
        *,
        endpoint_url: str | None = None,
        jobs: int | None = None,
        max_attempts: int | None = None,
        retry_mode: str | None = None,
    ) -> Settings:
        """An explicit option wins, then ``env``, then the default. 0 is a value, not "unset"."""
        settings = cls(
            endpoint_url=endpoint_url
            if endpoint_url is not None
            else env.get(ENV_ENDPOINT) or None,
            retry_mode=retry_mode
            if retry_mode is not None
            else env.get(ENV_RETRY_MODE) or DEFAULT_RETRY_MODE,
            max_attempts=max_attempts
            if max_attempts is not None
            else _int_env(env, ENV_ATTEMPTS, DEFAULT_ATTEMPTS),
            jobs=jobs if jobs is not None else DEFAULT_JOBS,
            direct_upload_limit=limits.direct_upload_limit(env),
            boto_endpoint_url=env.get(ENV_BOTO_ENDPOINT) or None,
        )
        settings.check()
        return settings

    def check(self) -> None:
        if self.endpoint_url and not re.match(r"^https?://[^/\s]+", self.endpoint_url):
            raise GdalLambdaError(
                f"endpoint URL {self.endpoint_url!r} is not valid: use http(s)://host[:port]"
            )
        if self.retry_mode not in RETRY_MODES:
            raise GdalLambdaError(
                f"retry mode {self.retry_mode!r} is not one of {', '.join(RETRY_MODES)}"
            )
        if self.max_attempts < 1:
            raise GdalLambdaError(
                f"max attempts is {self.max_attempts}: --max-attempts (or {ENV_ATTEMPTS}) "
                "must be at least 1"
            )
        if self.jobs < 1:
            raise GdalLambdaError(f"--jobs is {self.jobs}: it must be at least 1")
        if self.direct_upload_limit < 0:
            raise GdalLambdaError("the direct-upload limit must be 0 or more bytes")

    @property
    def where(self) -> str:
        return self.endpoint_url or self.boto_endpoint_url or "AWS"


def _int_env(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name) or ""
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise GdalLambdaError(f"{name}={raw!r} is not an integer") from None


class Aws:
    """A boto3 session and its clients. Sessions are not thread-safe: clients are made under a
    lock, then used freely (botocore clients are)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.session = new_session()
        self.config = Config(
            retries={"mode": settings.retry_mode, "total_max_attempts": settings.max_attempts},
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            user_agent_extra="gdal-lambda",
        )
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str], Any] = {}

    def client(self, service: str, region: str) -> Any:
        with self._lock:
            key = (service, region)
            if key not in self._clients:
                kwargs: dict[str, Any] = {"region_name": region, "config": self.config}
                if self.settings.endpoint_url:
                    kwargs["endpoint_url"] = self.settings.endpoint_url
                self._clients[key] = self.session.client(service, **kwargs)
            return self._clients[key]

    def account(self, region: str) -> str:
        """The caller's account id. The first request: fatal errors become one line here."""
        with fatal_errors(self.settings):
            return str(self.client("sts", region).get_caller_identity()["Account"])

    def enabled_regions(self, region: str, wanted: list[str]) -> tuple[list[str], str]:
        """``wanted`` less the opt-in regions the account has not enabled (ec2:DescribeRegions).

        Without that permission every wanted region is kept, with a note saying so."""
        with fatal_errors(self.settings):
            try:
                answer = self.client("ec2", region).describe_regions(AllRegions=False)
            except botocore.exceptions.ClientError as exc:
                if error_code(exc) in _CREDENTIALS_REJECTED:
                    raise
                note = f"could not list enabled regions ({reason(exc)}); trying all of them"
                return wanted, note
        enabled = {r["RegionName"] for r in answer.get("Regions", [])}
        kept = [r for r in wanted if r in enabled]
        skipped = [r for r in wanted if r not in enabled]
        note = (
            f"skipping regions not enabled for this account: {', '.join(skipped)}"
            if skipped
            else ""
        )
        return kept, note


@contextlib.contextmanager
def fatal_errors(settings: Settings) -> Iterator[None]:
    """Errors that would fail every region the same way: one GdalLambdaError line."""
    try:
        yield
    except botocore.exceptions.NoCredentialsError:
        raise GdalLambdaError(
            "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or run `aws configure`"
        ) from None
    except (
        botocore.exceptions.EndpointConnectionError,
        botocore.exceptions.ConnectTimeoutError,
    ) as exc:
        where = exc.kwargs.get("endpoint_url") or settings.where
        raise GdalLambdaError(
            f"cannot reach the AWS endpoint {where} ({exc.__class__.__name__}); check the "
            f"network, --endpoint-url, {ENV_ENDPOINT} or AWS_ENDPOINT_URL"
        ) from None
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) in _CREDENTIALS_REJECTED:
            raise GdalLambdaError(f"AWS rejected the credentials: {reason(exc)}") from None
        raise GdalLambdaError(f"AWS refused {exc.operation_name}: {reason(exc)}") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise GdalLambdaError(f"AWS call failed: {reason(exc)}") from None


_CREDENTIALS_REJECTED = {
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "AuthFailure",
}


def new_session() -> boto3.session.Session:
    """boto3's session (its credential chain, its config); a missing profile is one line."""
    try:
        return boto3.session.Session()
    except botocore.exceptions.ProfileNotFound as exc:
        raise GdalLambdaError(f"{exc}: check AWS_PROFILE and your AWS config file") from None


def error_code(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def reason(exc: BaseException) -> str:
    """One line for a failure: the AWS error code and message, attempts when retried."""
    if isinstance(exc, GdalLambdaError):
        text = str(exc)
    elif isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        text = f"{code}: {error.get('Message') or exc.operation_name}"
        attempts = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
        if attempts:
            text += f" (after {attempts + 1} attempts)"
    elif isinstance(exc, botocore.exceptions.NoCredentialsError):
        text = "no AWS credentials found"
    elif isinstance(exc, botocore.exceptions.EndpointConnectionError):
        text = f"cannot reach {exc.kwargs.get('endpoint_url', 'the endpoint')}"
    elif isinstance(exc, botocore.exceptions.BotoCoreError):
        text = str(exc)
    else:
        text = f"{exc.__class__.__name__}: {exc}"
    return " ".join(text.split())


def paginate(client: Any, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        out.extend(page.get(key, []))
    return out


def layer_versions(lam: Any, name: str) -> list[dict[str, Any]]:
    """Every version of a layer in a region, newest first (empty when the layer does not exist)."""
    try:
        versions = paginate(lam, "list_layer_versions", "LayerVersions", LayerName=name)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return []
        raise
    return sorted(versions, key=lambda v: int(v["Version"]), reverse=True)


def version_policy(lam: Any, name: str, version: int) -> dict[str, Any] | None:
    try:
        answer = lam.get_layer_version_policy(LayerName=name, VersionNumber=version)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise
    return json.loads(answer["Policy"]) if answer.get("Policy") else None


def sha_of(version: dict[str, Any]) -> str:
    """The zip's sha256 recorded in a layer version's description (empty if none)."""
    match = _SHA.search(version.get("Description") or "")
    return match.group(1) if match else ""
