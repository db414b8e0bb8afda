"""Publishing a layer zip to every region that lacks it: idempotent, parallel, resumable.

    report = publish(layer, resolve_regions("all"), access=Access(public=True))

All checks happen before the first request. A region already holding this zip (same sha256,
runtimes and architectures) is left alone, its grants completed; the others get a new version,
uploaded directly or, above the direct-upload limit, through a private S3 bucket of ours.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import botocore.exceptions
from rich.console import Console
from rich.markup import escape

from ..errors import GdalLambdaError
from ..limits import fmt_mib
from .access import Access, access_after, granted_text
from .aws import Aws, Settings, error_code, layer_versions, sha_of, version_policy
from .manifest import Manifest
from .regions import Interrupted, connect, for_each_region
from .report import (
    FAILED,
    PUBLISHED,
    SAME_ZIP,
    UNCHANGED,
    WOULD_PUBLISH,
    RegionResult,
    Report,
    console,
    progress_line,
    results_table,
)
from .spec import Layer, ZipFacts, check_layer

DEFAULT_BUCKET = "gdal-lambda-layers-{account}-{region}"

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


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

    def bucket(self, region: str) -> str:
        return self.bucket_template.format(account=self.account, region=region)


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
    when a region failed; the regions that worked are in the manifest either way. Ctrl-C raises
    :class:`Interrupted` (after the table of what finished) naming what was left.
    ``direct_limit`` None: ``settings.direct_upload_limit``.
    """
    out = out or console
    access = access or Access()
    access.check()
    settings = settings or Settings.from_env(os.environ)
    settings.check()
    facts = check_layer(layer)
    if not regions:
        raise GdalLambdaError("no region to publish to")
    check_bucket_template(bucket, regions)
    limit = settings.direct_upload_limit if direct_limit is None else direct_limit
    book = manifest if isinstance(manifest, Manifest) else Manifest(manifest)
    book.load()  # a broken manifest stops the run before anything is published

    try:
        link = connect(settings, regions, out)
    except KeyboardInterrupt:
        raise Interrupted("publishing", {}, [], list(regions)) from None
    report = Report(layer=layer.name, sha256=facts.sha256, note=link.note)
    run = _Run(
        aws=link.aws,
        layer=layer,
        facts=facts,
        access=access,
        manifest=None if dry_run else book,
        dry_run=dry_run,
        keep_upload=keep_upload,
        bucket_template=bucket,
        direct_limit=limit,
        account=link.account,
    )
    how = "directly" if run.direct else "through S3"
    verb = "would publish" if dry_run else "publishing"
    out.print(
        f"{verb} {layer.name} ({fmt_mib(facts.size)} zipped, {fmt_mib(facts.unzipped)} "
        f"unzipped, sha256 {facts.sha256[:12]}, uploaded {how}) to {len(link.regions)} region(s) "
        f"as account {link.account}{' (dry run: nothing is written)' if dry_run else ''}"
    )
    try:
        report.results = for_each_region(
            link.regions,
            settings.jobs,
            lambda region: _publish_region(run, region),
            lambda region, why: RegionResult(region=region, status=FAILED, detail=why),
            what="publishing",
            out=out,
            on_done=lambda result: out.print(progress_line(result), soft_wrap=True),
        )
    except Interrupted as stop:
        report.results = [cast(RegionResult, r) for r in stop.finished.values()]
        _summary(out, report, book, dry_run)
        raise
    _summary(out, report, book, dry_run)
    if check:
        report.raise_for_failures()
    return report


def _summary(out: Console, report: Report, book: Manifest, dry_run: bool) -> None:
    out.print(results_table(report, dry_run))
    if not dry_run:
        out.print(escape(f"manifest: {book.path} and {book.markdown}"))


def _entry(layer: Layer, version: dict[str, Any], sha256: str) -> dict[str, Any]:
    return {
        "name": layer.name,
        "version": int(version["Version"]),
        "arn": version["LayerVersionArn"],
        "sha256": sha256,
        "date": version.get("CreatedDate", ""),
        "license": version.get("LicenseInfo", layer.license),
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
            access=access_after(policy, granted),
            detail=granted_text(granted, run.dry_run) or SAME_ZIP,
        )
    if run.dry_run:
        where = "directly" if run.direct else f"via s3://{run.bucket(region)}"
        after = f" after v{latest['Version']}" if latest else " as the first version"
        sids = [s.sid for s in run.access.statements()]
        grants = f"; {granted_text(sids, True)}" if sids else ""
        return RegionResult(
            region=region,
            status=WOULD_PUBLISH,
            access=access_after(None, sids),
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
        access=access_after(None, granted),
        detail=f"uploaded {upload}" + (f"; {granted_text(granted, False)}" if granted else ""),
    )


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
    bucket = run.bucket(region)
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
