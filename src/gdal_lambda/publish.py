"""Publishing layer zips to AWS Lambda: every region, idempotent, parallel, resumable.

    layer = layer_spec("3.13", "3.12")                  # names, limits, zip: checked, no call yet
    regions = resolve_regions("all")                    # botocore's region list, checked offline
    report = publish(layer, regions, access=Access(public=True))
    list_layers(...)                                    # region -> latest version
    prune(..., keep=3, yes=True)                        # older versions; dry run unless yes

Everything that can be checked without AWS is checked before the first request. Every AWS call
goes through boto3's credential chain and botocore's retry modes (no hand-written retry loops).
Regions run in a bounded thread pool; one failing region does not stop the others. The manifest
(layers.json + layers.md) is re-read and rewritten atomically after each region, so a failed or
interrupted run never loses an ARN that was recorded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import hashlib
import json
import os
import re
import sys
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import boto3
import botocore.exceptions
from botocore.config import Config
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import naming
from .errors import GdalLambdaError
from .fsutil import atomic_write_text
from .versions import ROOT, load_matrix

MIB = 1024 * 1024
UNZIPPED_LIMIT = 250 * MIB  # Lambda: function + layers, unzipped
DIRECT_UPLOAD_LIMIT = 50 * MIB  # larger zips go through S3
MAX_NAME = 140
MAX_DESCRIPTION = 256
MAX_LICENSE = 512
MAX_RUNTIMES = 15
ARCHITECTURES = ("x86_64", "arm64")
RETRY_MODES = ("standard", "adaptive")
DEFAULT_ATTEMPTS = 5
DEFAULT_JOBS = 16
DEFAULT_LICENSE = "MIT"
DEFAULT_BUCKET = "gdal-lambda-layers-{account}-{region}"
DEFAULT_MANIFEST = ROOT / "layers.json"
DEFAULT_PARTITION = "aws"
STATEMENT_PREFIX = "gdal-lambda"

ENV_ENDPOINT = "GDAL_LAMBDA_ENDPOINT_URL"
ENV_DIRECT_LIMIT = "GDAL_LAMBDA_DIRECT_UPLOAD_LIMIT"
ENV_ATTEMPTS = "GDAL_LAMBDA_MAX_ATTEMPTS"
ENV_RETRY_MODE = "GDAL_LAMBDA_RETRY_MODE"
ENV_MANIFEST = "GDAL_LAMBDA_MANIFEST"

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_SHA = re.compile(r"sha256:([0-9a-f]{64})")
_ORG = re.compile(r"^o-[a-z0-9]{10,32}$")
_ACCOUNT = re.compile(r"^\d{12}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
OUR_LAYERS = re.compile(r"^gdal\d+-py\d+-[A-Za-z0-9_-]+$")  # naming.layer_name's scheme

# Piped output (CI logs, files) gets room for ARNs instead of rich's 80-column default.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
_T = TypeVar("_T")


# ------------------------------------------------------------------------------------------------
# What to publish, checked offline


@dataclass(frozen=True)
class ZipFacts:
    sha256: str
    size: int  # zipped bytes
    unzipped: int  # sum of ZipInfo.file_size


@dataclass(frozen=True)
class Layer:
    name: str
    zip_path: Path
    description: str  # without the sha256 marker: fingerprint() appends it
    license: str
    runtimes: tuple[str, ...]
    architectures: tuple[str, ...]
    build_hint: str = ""  # the task that makes zip_path, for the "missing zip" message

    def full_description(self, sha256: str) -> str:
        return f"{self.description} sha256:{sha256}".strip()


@functools.cache
def _runtimes_known() -> frozenset[str]:
    model = new_session()._session.get_service_model("lambda")
    return frozenset(model.shape_for("Runtime").enum)


def layer_spec(
    line: str,
    python: str | None,
    recipe: str = "geo",
    *,
    target: str | None = None,
    arch: str = "x86_64",
    zip_path: Path | str | None = None,
    description: str | None = None,
    license: str = DEFAULT_LICENSE,
    runtimes: Sequence[str] = (),
    name: str | None = None,
    dist: Path | None = None,
) -> Layer:
    """The layer to publish for (line, python, recipe, target, arch), every field checked.

    ``line`` and ``target`` must be in the matrix, ``python`` one of the target's (None: its
    newest); the zip is naming.layer_zip(...) unless
    ``zip_path`` overrides it. Raises GdalLambdaError on the first problem; calls nothing.
    """
    matrix = load_matrix()
    matrix.line(line)
    tgt = matrix.target(target)
    python = tgt.check_python(python)
    layer_name = name or naming.layer_name(line, python, recipe, arch)
    hint = f"invoke layer --gdal {line} --python {python}"
    if recipe != "geo":
        hint += f" --recipe {recipe}"
    if tgt.name != naming.DEFAULT_TARGET:
        hint += f" --target {tgt.name}"
    path = Path(zip_path) if zip_path else naming.layer_zip(line, python, recipe, tgt.name, dist)
    layer = Layer(
        name=layer_name,
        zip_path=path,
        description=description
        if description is not None
        else f"GDAL {line} for Python {python} ({recipe}, {arch}), gdal-lambda",
        license=license,
        runtimes=tuple(runtimes) or (f"python{python}",),
        architectures=(arch,),
        build_hint="" if zip_path else hint,
    )
    check_layer(layer)
    return layer


def check_layer(layer: Layer) -> ZipFacts:
    """Lambda's limits, enforced here because moto (and a typo) would accept them."""
    if not _NAME.match(layer.name):
        raise GdalLambdaError(
            f"layer name {layer.name!r} is not valid: use only letters, digits, '-' and '_'"
        )
    if len(layer.name) > MAX_NAME:
        raise GdalLambdaError(
            f"layer name {layer.name[:40]}... is {len(layer.name)} characters; "
            f"Lambda allows at most {MAX_NAME}"
        )
    described = layer.full_description("0" * 64)
    if len(described) > MAX_DESCRIPTION:
        room = MAX_DESCRIPTION - len(layer.full_description("0" * 64)) + len(layer.description)
        raise GdalLambdaError(
            f"layer description is {len(described)} characters with its sha256 marker; Lambda "
            f"allows {MAX_DESCRIPTION}: shorten --description to at most {max(room, 0)}"
        )
    if len(layer.license) > MAX_LICENSE:
        raise GdalLambdaError(
            f"licence text is {len(layer.license)} characters; Lambda allows at most {MAX_LICENSE}"
        )
    if len(layer.runtimes) > MAX_RUNTIMES:
        raise GdalLambdaError(
            f"{len(layer.runtimes)} compatible runtimes given; Lambda allows at most {MAX_RUNTIMES}"
        )
    known = _runtimes_known()
    for runtime in layer.runtimes:
        if runtime not in known:
            close = difflib.get_close_matches(runtime, sorted(known), n=3)
            also = f" (did you mean {', '.join(close)}?)" if close else ""
            raise GdalLambdaError(f"unknown Lambda runtime {runtime!r}{also}")
    for arch in layer.architectures:
        if arch not in ARCHITECTURES:
            raise GdalLambdaError(
                f"unknown architecture {arch!r}: Lambda layers are {' or '.join(ARCHITECTURES)}"
            )
    return zip_facts(layer)


def zip_facts(layer: Layer) -> ZipFacts:
    path = layer.zip_path
    if not path.is_file():
        how = f": run `{layer.build_hint}` first" if layer.build_hint else ""
        raise GdalLambdaError(f"layer zip {path} does not exist{how}")
    try:
        with zipfile.ZipFile(path) as archive:
            unzipped = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise GdalLambdaError(f"{path} is not a readable zip file ({exc})") from None
    if unzipped > UNZIPPED_LIMIT:
        raise GdalLambdaError(
            f"{path} unzips to {unzipped / MIB:.1f} MiB; Lambda allows at most "
            f"{UNZIPPED_LIMIT // MIB} MiB for a function and its layers together"
        )
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(MIB), b""):
            digest.update(chunk)
    return ZipFacts(sha256=digest.hexdigest(), size=path.stat().st_size, unzipped=unzipped)


# ------------------------------------------------------------------------------------------------
# Who may use it


@dataclass(frozen=True)
class Statement:
    sid: str
    principal: str
    organization: str | None = None

    def kwargs(self) -> dict[str, str]:
        out = {
            "StatementId": self.sid,
            "Action": "lambda:GetLayerVersion",
            "Principal": self.principal,
        }
        if self.organization:
            out["OrganizationId"] = self.organization
        return out


@dataclass(frozen=True)
class Access:
    """Private unless asked: ``public`` (every account), ``org_id`` (one organisation), accounts."""

    public: bool = False
    org_id: str | None = None
    accounts: tuple[str, ...] = ()

    @classmethod
    def parse(
        cls, public: bool = False, org_id: str | None = None, accounts: Iterable[str] = ()
    ) -> Access:
        ids: list[str] = []
        for item in accounts:
            for account in re.split(r"[,\s]+", item.strip()):
                if account and account not in ids:
                    ids.append(account)
        access = cls(public=public, org_id=org_id or None, accounts=tuple(ids))
        access.check()
        return access

    def check(self) -> None:
        if self.public and (self.org_id or self.accounts):
            raise GdalLambdaError(
                "--public grants every AWS account already: drop --org-id/--account, or --public"
            )
        if self.org_id and not _ORG.match(self.org_id):
            raise GdalLambdaError(
                f"organisation id {self.org_id!r} is not valid: it looks like o-a1b2c3d4e5"
            )
        for account in self.accounts:
            if not _ACCOUNT.match(account):
                raise GdalLambdaError(f"account id {account!r} is not valid: it is 12 digits")

    def statements(self) -> list[Statement]:
        out: list[Statement] = []
        if self.public:
            out.append(Statement(f"{STATEMENT_PREFIX}-public", "*"))
        if self.org_id:
            out.append(Statement(f"{STATEMENT_PREFIX}-org-{self.org_id}", "*", self.org_id))
        out.extend(Statement(f"{STATEMENT_PREFIX}-account-{a}", a) for a in self.accounts)
        return out


def describe_policy(policy: dict[str, Any] | None) -> str:
    """Who a layer version is shared with: ``private``, ``public``, ``org o-…``, ``account …``."""
    if not policy:
        return "private"
    parts: list[str] = []
    for statement in policy.get("Statement", []):
        principal = statement.get("Principal")
        if isinstance(principal, dict):
            principal = principal.get("AWS")
        condition = statement.get("Condition") or {}
        org = statement.get("OrganizationId")  # moto's rendering; AWS uses a condition
        for test in condition.values():
            if isinstance(test, dict) and "aws:PrincipalOrgID" in test:
                org = test["aws:PrincipalOrgID"]
        if org:
            parts.append(f"org {org}")
        elif principal == "*":
            parts.append("public")
        elif principal:
            account = str(principal).split(":")[4] if ":" in str(principal) else str(principal)
            parts.append(f"account {account}")
    return ", ".join(dict.fromkeys(parts)) or "private"


# ------------------------------------------------------------------------------------------------
# Regions


@functools.cache
def _regions() -> tuple[tuple[str, str], ...]:
    session = new_session()
    out: dict[str, str] = {}
    for partition in session.get_available_partitions():
        for region in session.get_available_regions("lambda", partition_name=partition):
            out.setdefault(region, partition)
    return tuple(out.items())


def known_regions() -> dict[str, str]:
    """Every region botocore knows for Lambda (its data files, no call), mapped to its partition."""
    return dict(_regions())


class RegionList(list[str]):
    """Region names; ``everything`` when ``all`` was asked (then regions the account has not
    enabled are dropped at run time rather than reported as failures)."""

    everything: bool = False


def resolve_regions(spec: str | Sequence[str] | None) -> RegionList:
    """``all`` (every commercial-partition region botocore knows) or a comma-separated list."""
    items = [spec] if isinstance(spec, str) or spec is None else list(spec)
    tokens: list[str] = []
    for item in items:
        tokens.extend(t for t in re.split(r"[,\s]+", (item or "").strip()) if t)
    if not tokens:
        raise GdalLambdaError("no region given: use --regions all, or e.g. --regions us-east-1")
    known = known_regions()
    out = RegionList()
    for token in tokens:
        if token == "all":
            out.everything = True
            picked = sorted(r for r, p in known.items() if p == DEFAULT_PARTITION)
        elif token in known:
            picked = [token]
        else:
            close = difflib.get_close_matches(token, sorted(known), n=3)
            hint = (
                f"did you mean {', '.join(close)}?" if close else "see `aws ec2 describe-regions`"
            )
            raise GdalLambdaError(f"unknown region {token!r} for Lambda: {hint}")
        out.extend(r for r in picked if r not in out)
    partitions = sorted({known[r] for r in out})
    if len(partitions) > 1:
        raise GdalLambdaError(
            f"regions span partitions {', '.join(partitions)}, which need separate credentials: "
            "publish to each partition in its own run"
        )
    return out


# ------------------------------------------------------------------------------------------------
# AWS: one session, clients shared by the threads, botocore retry modes


@dataclass(frozen=True)
class Settings:
    """How to reach AWS. ``endpoint_url`` None: boto3's chain (AWS_ENDPOINT_URL or AWS itself)."""

    endpoint_url: str | None = None
    retry_mode: str = "standard"
    max_attempts: int = DEFAULT_ATTEMPTS
    jobs: int = DEFAULT_JOBS
    connect_timeout: float = 10.0
    read_timeout: float = 300.0

    @classmethod
    def from_env(
        cls,
        endpoint_url: str | None = None,
        retry_mode: str | None = None,
        max_attempts: int | None = None,
        jobs: int | None = None,
    ) -> Settings:
        endpoint = endpoint_url or os.environ.get(ENV_ENDPOINT) or None
        mode = retry_mode or os.environ.get(ENV_RETRY_MODE) or "standard"
        attempts = max_attempts or _int_env(ENV_ATTEMPTS) or DEFAULT_ATTEMPTS
        settings = cls(
            endpoint_url=endpoint, retry_mode=mode, max_attempts=attempts, jobs=jobs or DEFAULT_JOBS
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
            raise GdalLambdaError("max attempts must be at least 1")
        if self.jobs < 1:
            raise GdalLambdaError("--jobs must be at least 1")

    @property
    def where(self) -> str:
        return self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or "AWS"


def _int_env(name: str) -> int | None:
    raw = os.environ.get(name)
    if not raw:
        return None
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

    def home_region(self, regions: Sequence[str]) -> str:
        """Where to ask STS who we are: the configured region if it is in the same partition."""
        known = known_regions()
        configured = self.session.region_name
        if configured and known.get(configured) == known.get(regions[0]):
            return configured
        return regions[0]

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


def _paginate(client: Any, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        out.extend(page.get(key, []))
    return out


def layer_versions(lam: Any, name: str) -> list[dict[str, Any]]:
    """Every version of a layer in a region, newest first (empty when the layer does not exist)."""
    try:
        versions = _paginate(lam, "list_layer_versions", "LayerVersions", LayerName=name)
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
    match = _SHA.search(version.get("Description") or "")
    return match.group(1) if match else ""


# ------------------------------------------------------------------------------------------------
# The manifest: layers.json ({layer: {region: entry}}) and layers.md


MD_START = "<!-- layers:start (generated by `invoke publish` from layers.json) -->"
MD_END = "<!-- layers:end -->"


class Manifest:
    """layers.json and the Markdown table beside it. Each record() re-reads the file and writes
    both atomically, under a lock: entries only ever get added or replaced by newer ones."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path or os.environ.get(ENV_MANIFEST) or DEFAULT_MANIFEST)
        self.markdown = self.path.with_suffix(".md")
        self._lock = threading.Lock()

    def load(self) -> dict[str, dict[str, dict[str, Any]]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise GdalLambdaError(f"cannot read manifest {self.path}: {exc.strerror}") from None
        try:
            data = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as exc:
            raise GdalLambdaError(
                f"manifest {self.path} is not valid JSON ({exc.msg}, line {exc.lineno}): "
                "fix or move it; nothing was changed"
            ) from None
        ok = isinstance(data, dict) and all(
            isinstance(regions, dict) and all(isinstance(e, dict) for e in regions.values())
            for regions in data.values()
        )
        if not ok:
            raise GdalLambdaError(
                f"manifest {self.path} is not {{layer: {{region: entry}}}}: fix or move it; "
                "nothing was changed"
            )
        return data

    def record(self, layer: str, region: str, entry: dict[str, Any]) -> None:
        with self._lock:
            data = self.load()
            data.setdefault(layer, {})[region] = entry
            self._write(data)

    def _write(self, data: dict[str, dict[str, dict[str, Any]]]) -> None:
        ordered = {
            name: {region: data[name][region] for region in sorted(data[name])}
            for name in sorted(data)
        }
        atomic_write_text(self.path, json.dumps(ordered, indent=2) + "\n")
        atomic_write_text(self.markdown, markdown_table(ordered))


def markdown_table(data: dict[str, dict[str, dict[str, Any]]]) -> str:
    lines = [MD_START, "| layer | region | version | ARN |", "| --- | --- | --: | --- |"]
    for name in sorted(data):
        for region in sorted(data[name]):
            entry = data[name][region]
            lines.append(
                f"| {name} | {region} | {entry.get('version', '')} | `{entry.get('arn', '')}` |"
            )
    lines.append(MD_END)
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------
# Publishing


PUBLISHED, UNCHANGED, FAILED = "published", "unchanged", "failed"
WOULD_PUBLISH = "would publish"
SAME_ZIP = "the latest version has this zip"


@dataclass
class RegionResult:
    region: str
    status: str
    version: int | None = None
    arn: str = ""
    date: str = ""
    access: str = ""
    detail: str = ""  # how it was uploaded, what was granted, or why it failed

    @property
    def ok(self) -> bool:
        return self.status != FAILED


@dataclass
class Report:
    layer: str
    sha256: str
    results: list[RegionResult] = field(default_factory=list)
    note: str = ""

    @property
    def failed(self) -> list[RegionResult]:
        return [r for r in self.results if not r.ok]

    def by_region(self) -> dict[str, RegionResult]:
        return {r.region: r for r in self.results}

    def raise_for_failures(self, what: str = "publishing") -> None:
        failed = self.failed
        if failed:
            first = failed[0]
            raise GdalLambdaError(
                f"{what} failed in {len(failed)} of {len(self.results)} regions "
                f"({first.region}: {first.detail}); re-run to finish them, regions already done "
                "are skipped"
            )


def direct_upload_limit(explicit: int | None = None) -> int:
    if explicit is not None:
        return explicit
    return _int_env(ENV_DIRECT_LIMIT) or DIRECT_UPLOAD_LIMIT


def check_bucket_template(template: str, regions: Sequence[str]) -> None:
    for region in regions:
        try:
            name = template.format(account="123456789012", region=region)
        except (KeyError, IndexError, ValueError) as exc:
            raise GdalLambdaError(
                f"bucket template {template!r} is not valid ({exc}): use {{account}}, {{region}}"
            ) from None
        if not _BUCKET.match(name) or ".." in name:
            raise GdalLambdaError(
                f"bucket name {name!r} (from {template!r}) is not a valid S3 bucket name: "
                "3-63 lower-case letters, digits, '.' and '-'"
            )


@dataclass
class _Run:
    """Everything a region's worker needs: the same for every region."""

    aws: Aws
    layer: Layer
    facts: ZipFacts
    access: Access
    manifest: Manifest | None
    dry_run: bool
    keep_upload: bool
    bucket_template: str
    direct_limit: int
    account: str
    _zip_bytes: bytes | None = None
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def zip_bytes(self) -> bytes:
        with self._lock:
            if self._zip_bytes is None:
                self._zip_bytes = self.layer.zip_path.read_bytes()
            return self._zip_bytes

    @property
    def direct(self) -> bool:
        return self.facts.size <= self.direct_limit


def publish(
    layer: Layer,
    regions: Sequence[str],
    *,
    access: Access | None = None,
    manifest: Manifest | Path | str | None = None,
    settings: Settings | None = None,
    dry_run: bool = False,
    keep_upload: bool = False,
    bucket: str = DEFAULT_BUCKET,
    direct_limit: int | None = None,
    out: Console | None = None,
    check: bool = True,
) -> Report:
    """Publish ``layer`` to every region that lacks this zip; grant ``access``; record ARNs.

    All checks happen before the first request. ``check`` raises GdalLambdaError (after the table)
    when a region failed; the regions that worked are in the manifest either way.
    """
    out = out or console
    access = access or Access()
    access.check()
    settings = settings or Settings.from_env()
    settings.check()
    facts = check_layer(layer)
    if not regions:
        raise GdalLambdaError("no region to publish to")
    check_bucket_template(bucket, regions)
    limit = direct_upload_limit(direct_limit)
    book = manifest if isinstance(manifest, Manifest) else Manifest(manifest)
    book.load()  # a broken manifest stops the run before anything is published

    aws = Aws(settings)
    home = aws.home_region(regions)
    account = aws.account(home)
    regions, note = _enabled(aws, home, regions)
    if note:
        out.print(f"[yellow]{escape(note)}[/yellow]")
    report = Report(layer=layer.name, sha256=facts.sha256, note=note)
    run = _Run(
        aws=aws,
        layer=layer,
        facts=facts,
        access=access,
        manifest=None if dry_run else book,
        dry_run=dry_run,
        keep_upload=keep_upload,
        bucket_template=bucket,
        direct_limit=limit,
        account=account,
    )
    how = "directly" if run.direct else "through S3"
    verb = "would publish" if dry_run else "publishing"
    out.print(
        f"{verb} {layer.name} ({facts.size / MIB:.1f} MiB zipped, {facts.unzipped / MIB:.1f} MiB "
        f"unzipped, sha256 {facts.sha256[:12]}, uploaded {how}) to {len(regions)} region(s) "
        f"as account {account}{' (dry run: nothing is written)' if dry_run else ''}"
    )
    report.results = _in_parallel(regions, settings.jobs, lambda r: _publish_region(run, r), out)
    out.print(_results_table(report, dry_run))
    if not dry_run:
        out.print(escape(f"manifest: {book.path} and {book.markdown}"))
    if check:
        report.raise_for_failures()
    return report


def _enabled(aws: Aws, home: str, regions: Sequence[str]) -> tuple[list[str], str]:
    if getattr(regions, "everything", False):
        return aws.enabled_regions(home, list(regions))
    return list(regions), ""


def _in_parallel(
    regions: Sequence[str],
    jobs: int,
    work: Callable[[str], RegionResult],
    out: Console,
) -> list[RegionResult]:
    results: dict[str, RegionResult] = {}

    def guarded(region: str) -> RegionResult:
        try:
            return work(region)
        except Exception as exc:  # one region's failure must not stop the others
            return RegionResult(region=region, status=FAILED, detail=reason(exc))

    pool = ThreadPoolExecutor(max_workers=min(jobs, len(regions)), thread_name_prefix="region")
    try:
        futures: dict[Future[RegionResult], str] = {pool.submit(guarded, r): r for r in regions}
        for future in as_completed(futures):
            result = future.result()
            results[result.region] = result
            mark = "[red]✗[/red]" if not result.ok else "[green]✓[/green]"
            version = f" v{result.version}" if result.version else ""
            out.print(f"{mark} {result.region}: {result.status}{version}", soft_wrap=True)
    finally:  # on Ctrl-C: start nothing new; what finished is in the manifest already
        pool.shutdown(wait=True, cancel_futures=True)
    return [results[r] for r in regions]


def _entry(layer: Layer, version: dict[str, Any], sha256: str) -> dict[str, Any]:
    return {
        "name": layer.name,
        "version": int(version["Version"]),
        "arn": version["LayerVersionArn"],
        "sha256": sha256,
        "date": version.get("CreatedDate", ""),
    }


def _matches(layer: Layer, sha256: str, version: dict[str, Any]) -> bool:
    """Is this version our zip, with the same runtimes and architectures?"""
    return (
        sha_of(version) == sha256
        and set(version.get("CompatibleRuntimes") or ()) == set(layer.runtimes)
        and set(version.get("CompatibleArchitectures") or ()) == set(layer.architectures)
    )


def _publish_region(run: _Run, region: str) -> RegionResult:
    lam = run.aws.client("lambda", region)
    layer, sha = run.layer, run.facts.sha256
    versions = layer_versions(lam, layer.name)
    latest = versions[0] if versions else None
    if latest and _matches(layer, sha, latest):
        version = int(latest["Version"])
        policy = version_policy(lam, layer.name, version)
        granted = _grant(run, lam, version, policy)
        if run.manifest:
            run.manifest.record(layer.name, region, _entry(layer, latest, sha))
        return RegionResult(
            region=region,
            status=UNCHANGED,
            version=version,
            arn=latest["LayerVersionArn"],
            date=latest.get("CreatedDate", ""),
            access=_access_after(policy, granted),
            detail=_granted_text(granted, run.dry_run) or SAME_ZIP,
        )
    if run.dry_run:
        where = "directly" if run.direct else f"via s3://{_bucket(run, region)}"
        after = f" after v{latest['Version']}" if latest else " as the first version"
        sids = [s.sid for s in run.access.statements()]
        grants = f"; {_granted_text(sids, True)}" if sids else ""
        return RegionResult(
            region=region,
            status=WOULD_PUBLISH,
            access=_access_after(None, sids),
            detail=f"upload {where}{after}{grants}",
        )
    new, upload = _publish_version(run, lam, region)
    version = int(new["Version"])
    if run.manifest:  # recorded before granting: a failed grant must not lose the ARN
        run.manifest.record(layer.name, region, _entry(layer, new, sha))
    granted = _grant(run, lam, version, None)
    return RegionResult(
        region=region,
        status=PUBLISHED,
        version=version,
        arn=new["LayerVersionArn"],
        date=new.get("CreatedDate", ""),
        access=_access_after(None, granted),
        detail=f"uploaded {upload}" + (f"; {_granted_text(granted, False)}" if granted else ""),
    )


def _bucket(run: _Run, region: str) -> str:
    return run.bucket_template.format(account=run.account, region=region)


def _publish_version(run: _Run, lam: Any, region: str) -> tuple[dict[str, Any], str]:
    layer, sha = run.layer, run.facts.sha256
    common: dict[str, Any] = {
        "LayerName": layer.name,
        "Description": layer.full_description(sha),
        "LicenseInfo": layer.license,
        "CompatibleRuntimes": list(layer.runtimes),
        "CompatibleArchitectures": list(layer.architectures),
    }
    if run.direct:
        return lam.publish_layer_version(Content={"ZipFile": run.zip_bytes()}, **common), "directly"
    s3 = run.aws.client("s3", region)
    bucket = _bucket(run, region)
    _ensure_bucket(s3, bucket, region, run.account)
    key = f"{layer.name}/{sha}.zip"
    with layer.zip_path.open("rb") as body:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ExpectedBucketOwner=run.account)
    try:
        new = lam.publish_layer_version(Content={"S3Bucket": bucket, "S3Key": key}, **common)
    finally:
        if not run.keep_upload:
            with contextlib.suppress(
                botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError
            ):
                s3.delete_object(Bucket=bucket, Key=key, ExpectedBucketOwner=run.account)
    kept = "kept" if run.keep_upload else "removed"
    return new, f"via s3://{bucket} (object {kept})"


def _ensure_bucket(s3: Any, bucket: str, region: str, account: str) -> None:
    """Create the private upload bucket, or accept it if we own it already; anyone else's: fail."""
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**kwargs)
    except botocore.exceptions.ClientError as exc:
        code = error_code(exc)
        if code == "BucketAlreadyExists" or (code in {"AccessDenied", "403"}):
            raise GdalLambdaError(
                f"S3 bucket {bucket} belongs to another account (or is not ours to use: "
                f"{error_code(exc)}); pass --bucket with another name"
            ) from None
        if code != "BucketAlreadyOwnedByYou":
            raise
    s3.put_public_access_block(
        Bucket=bucket,
        ExpectedBucketOwner=account,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )


def _grant(run: _Run, lam: Any, version: int, policy: dict[str, Any] | None) -> list[str]:
    """Add the statements the version lacks (stable ids); an existing one is not an error."""
    have = {s.get("Sid") for s in (policy or {}).get("Statement", [])}
    added: list[str] = []
    for statement in run.access.statements():
        if statement.sid in have:
            continue
        added.append(statement.sid)
        if run.dry_run:
            continue
        try:
            lam.add_layer_version_permission(
                LayerName=run.layer.name, VersionNumber=version, **statement.kwargs()
            )
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "ResourceConflictException":  # granted by a concurrent run
                raise
    return added


def _access_after(policy: dict[str, Any] | None, added: list[str]) -> str:
    statements = list((policy or {}).get("Statement", []))
    for sid in added:
        rest = sid.removeprefix(f"{STATEMENT_PREFIX}-")
        if rest == "public":
            statements.append({"Principal": "*"})
        elif rest.startswith("org-"):
            org = rest.removeprefix("org-")
            statements.append(
                {"Principal": "*", "Condition": {"StringEquals": {"aws:PrincipalOrgID": org}}}
            )
        elif rest.startswith("account-"):
            statements.append({"Principal": rest.removeprefix("account-")})
    return describe_policy({"Statement": statements} if statements else None)


def _granted_text(sids: list[str], dry_run: bool) -> str:
    if not sids:
        return ""
    return f"{'would grant' if dry_run else 'granted'} {', '.join(sids)}"


def _results_table(report: Report, dry_run: bool) -> Table:
    title = f"{report.layer} (sha256 {report.sha256[:12]}){' — dry run' if dry_run else ''}"
    table = Table(title=title, title_justify="left")
    table.add_column("region", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("version", justify="right")
    table.add_column("access")
    table.add_column("ARN / reason", overflow="fold")
    colours = {PUBLISHED: "green", UNCHANGED: "cyan", FAILED: "red", WOULD_PUBLISH: "yellow"}
    for result in report.results:
        colour = colours.get(result.status, "")
        lines = [result.arn] if result.ok and result.arn else []
        if result.detail and result.detail != SAME_ZIP:
            lines.append(result.detail)
        table.add_row(
            result.region,
            f"[{colour}]{result.status}[/{colour}]" if colour else result.status,
            str(result.version or ""),
            result.access,
            escape("\n".join(lines)),
        )
    return table


# ------------------------------------------------------------------------------------------------
# Listing and pruning


@dataclass(frozen=True)
class Scope:
    """Which layers list and prune look at: exact names, or a name prefix (ours by default)."""

    names: tuple[str, ...] = ()
    prefix: str | None = None

    @classmethod
    def of(
        cls,
        line: str | None = None,
        python: str | None = None,
        recipe: str = "geo",
        arch: str = "x86_64",
        prefix: str | None = None,
    ) -> Scope:
        if line and python:
            name = naming.layer_name(line, python, recipe, arch)
            if prefix:
                raise GdalLambdaError("give --gdal/--python or --name, not both")
            return cls(names=(name,))
        if line or python:
            raise GdalLambdaError("--gdal and --python go together (or use --name PREFIX)")
        if prefix is not None and not _NAME.match(prefix):
            raise GdalLambdaError(
                f"layer name prefix {prefix!r} is not valid: letters, digits, '-' and '_'"
            )
        return cls(prefix=prefix)

    def wants(self, name: str) -> bool:
        if self.names:
            return name in self.names
        if self.prefix:
            return name.startswith(self.prefix)
        return bool(OUR_LAYERS.match(name))

    def describe(self) -> str:
        if self.names:
            return ", ".join(self.names)
        return (
            f"layers named {self.prefix}*" if self.prefix else "gdal-lambda's layers (gdal*-py*-*)"
        )


def _layer_names(lam: Any, scope: Scope) -> list[str]:
    if scope.names:
        return list(scope.names)
    layers = _paginate(lam, "list_layers", "Layers")
    return sorted(x["LayerName"] for x in layers if scope.wants(x["LayerName"]))


@dataclass
class ListedLayer:
    region: str
    name: str
    version: int | None = None
    arn: str = ""
    sha256: str = ""
    date: str = ""
    versions: int = 0
    error: str = ""


def list_layers(
    scope: Scope,
    regions: Sequence[str],
    *,
    settings: Settings | None = None,
    out: Console | None = None,
    check: bool = True,
) -> list[ListedLayer]:
    """Region -> latest version of each layer in scope, as a table. Reads only."""
    out = out or console
    settings = settings or Settings.from_env()
    aws = Aws(settings)
    home = aws.home_region(regions)
    aws.account(home)
    regions, note = _enabled(aws, home, regions)
    if note:
        out.print(f"[yellow]{escape(note)}[/yellow]")

    def one(region: str) -> list[ListedLayer]:
        lam = aws.client("lambda", region)
        rows: list[ListedLayer] = []
        names = _layer_names(lam, scope)
        if not names:
            return [ListedLayer(region=region, name="")]
        for name in names:
            versions = layer_versions(lam, name)
            if not versions:
                rows.append(ListedLayer(region=region, name=name))
                continue
            latest = versions[0]
            rows.append(
                ListedLayer(
                    region=region,
                    name=name,
                    version=int(latest["Version"]),
                    arn=latest["LayerVersionArn"],
                    sha256=sha_of(latest),
                    date=latest.get("CreatedDate", ""),
                    versions=len(versions),
                )
            )
        return rows

    rows = _gather(regions, settings.jobs, one, lambda r, e: [ListedLayer(r, "", error=e)])
    table = Table(title=f"latest versions of {scope.describe()}", title_justify="left")
    for column in ("region", "layer", "version", "versions", "sha256", "created"):
        table.add_column(column, no_wrap=True)
    table.add_column("ARN / reason", overflow="fold")
    for row in rows:
        if row.error:
            table.add_row(row.region, "", "", "", "", "", f"[red]failed: {escape(row.error)}[/red]")
        elif row.version is None:
            what = "not published" if row.name else f"no {scope.describe()}"
            table.add_row(row.region, row.name, "", "0", "", "", f"[dim]{what}[/dim]")
        else:
            table.add_row(
                row.region,
                row.name,
                str(row.version),
                str(row.versions),
                row.sha256[:12],
                row.date[:19],
                row.arn,
            )
    out.print(table)
    failed = [r for r in rows if r.error]
    if check and failed:
        raise GdalLambdaError(
            f"listing failed in {len(failed)} of {len(regions)} regions "
            f"({failed[0].region}: {failed[0].error})"
        )
    return rows


def _gather(
    regions: Sequence[str],
    jobs: int,
    work: Callable[[str], list[_T]],
    on_error: Callable[[str, str], list[_T]],
) -> list[_T]:
    """Run ``work`` per region in a bounded pool; region order kept; failures become rows."""
    found: dict[str, list[_T]] = {}
    with ThreadPoolExecutor(max_workers=min(jobs, len(regions)) or 1) as pool:
        futures = {pool.submit(work, region): region for region in regions}
        for future in as_completed(futures):
            region = futures[future]
            try:
                found[region] = future.result()
            except Exception as exc:
                found[region] = on_error(region, reason(exc))
    return [row for region in regions for row in found[region]]


@dataclass
class PruneRow:
    region: str
    name: str
    version: int | None = None
    arn: str = ""
    action: str = ""  # deleted / would delete / kept (in manifest) / failed: …
    error: str = ""


def prune(
    scope: Scope,
    regions: Sequence[str],
    *,
    keep: int = 3,
    yes: bool = False,
    manifest: Manifest | Path | str | None = None,
    settings: Settings | None = None,
    out: Console | None = None,
    check: bool = True,
) -> list[PruneRow]:
    """Delete versions older than the newest ``keep`` of each layer in scope; dry run unless yes.

    The newest version is never deleted (``keep`` >= 1), nor a version the manifest records:
    those are the ARNs the README hands out.
    """
    out = out or console
    if keep < 1:
        raise GdalLambdaError("--keep must be at least 1: the newest version is never deleted")
    settings = settings or Settings.from_env()
    book = manifest if isinstance(manifest, Manifest) else Manifest(manifest)
    recorded = book.load()
    aws = Aws(settings)
    home = aws.home_region(regions)
    aws.account(home)
    regions, note = _enabled(aws, home, regions)
    if note:
        out.print(f"[yellow]{escape(note)}[/yellow]")
    out.print(
        f"{'pruning' if yes else 'would prune (dry run; --yes deletes)'} {scope.describe()}: "
        f"keeping the newest {keep} version(s) in {len(regions)} region(s)"
    )

    def one(region: str) -> list[PruneRow]:
        lam = aws.client("lambda", region)
        rows: list[PruneRow] = []
        for name in _layer_names(lam, scope):
            versions = layer_versions(lam, name)
            protected = recorded.get(name, {}).get(region, {}).get("version")
            for item in versions[keep:]:
                number = int(item["Version"])
                row = PruneRow(region, name, number, item["LayerVersionArn"])
                if number == protected:
                    row.action = f"kept (recorded in {book.path.name})"
                elif not yes:
                    row.action = "would delete"
                else:
                    try:
                        lam.delete_layer_version(LayerName=name, VersionNumber=number)
                        row.action = "deleted"
                    except (
                        botocore.exceptions.ClientError,
                        botocore.exceptions.BotoCoreError,
                    ) as exc:
                        row.action, row.error = "failed", reason(exc)
                out.print(escape(f"{region} {name}:{number}: {row.action} {row.error}".rstrip()))
                rows.append(row)
        return rows

    rows = _gather(
        regions, settings.jobs, one, lambda r, e: [PruneRow(r, "", action="failed", error=e)]
    )
    table = Table(title=f"prune {scope.describe()} (keep {keep})", title_justify="left")
    for column in ("region", "layer", "version", "action"):
        table.add_column(column, no_wrap=True)
    table.add_column("ARN / reason", overflow="fold")
    for row in rows:
        colour = "red" if row.error else ("green" if row.action == "deleted" else "yellow")
        table.add_row(
            row.region,
            row.name,
            str(row.version or ""),
            f"[{colour}]{escape(row.action)}[/{colour}]",
            escape(row.error or row.arn),
        )
    if not rows:
        table.add_row("", "", "", "nothing to prune", "")
    out.print(table)
    failed = [r for r in rows if r.error]
    if check and failed:
        raise GdalLambdaError(
            f"pruning failed for {len(failed)} version(s) ({failed[0].region}: {failed[0].error})"
        )
    return rows
