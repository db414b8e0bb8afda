"""Listing and pruning published layer versions, region by region.

    list_layers(Scope.of(prefix="gdal313"), regions)          # region -> latest version
    prune(Scope.of(), regions, keep=3, yes=True)              # older versions; dry run unless yes

The newest version is never pruned, nor one the manifest records (the ARNs the README hands out).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.exceptions
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .. import naming
from ..errors import GdalLambdaError
from ..variant import DEFAULT_RECIPE
from ..versions import DEFAULT_ARCH
from .aws import Settings, layer_versions, paginate, reason, sha_of
from .manifest import Manifest
from .regions import connect, for_each_region
from .report import console
from .spec import NAME

OUR_LAYERS = re.compile(r"^gdal\d+-py\d+-[A-Za-z0-9_-]+$")  # naming.layer_name's scheme


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
        recipe: str = DEFAULT_RECIPE,
        arch: str = DEFAULT_ARCH,
        prefix: str | None = None,
    ) -> Scope:
        if line and python:
            name = naming.layer_name(line, python, recipe, arch)
            if prefix:
                raise GdalLambdaError("give --gdal/--python or --name, not both")
            return cls(names=(name,))
        if line or python:
            raise GdalLambdaError("--gdal and --python go together (or use --name PREFIX)")
        if prefix is not None and not NAME.match(prefix):
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
    layers = paginate(lam, "list_layers", "Layers")
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
    settings = settings or Settings.from_env(os.environ)
    link = connect(settings, regions, out)

    def one(region: str) -> list[ListedLayer]:
        lam = link.aws.client("lambda", region)
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

    found = for_each_region(
        link.regions,
        settings.jobs,
        one,
        lambda r, e: [ListedLayer(r, "", error=e)],
        what="listing",
        out=out,
    )
    rows = [row for region_rows in found for row in region_rows]
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
            f"listing failed in {len(failed)} of {len(link.regions)} regions "
            f"({failed[0].region}: {failed[0].error})"
        )
    return rows


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
    settings = settings or Settings.from_env(os.environ)
    book = manifest if isinstance(manifest, Manifest) else Manifest(manifest)
    recorded = book.load()
    link = connect(settings, regions, out)
    out.print(
        f"{'pruning' if yes else 'would prune (dry run; --yes deletes)'} {scope.describe()}: "
        f"keeping the newest {keep} version(s) in {len(link.regions)} region(s)"
    )

    def one(region: str) -> list[PruneRow]:
        lam = link.aws.client("lambda", region)
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

    found = for_each_region(
        link.regions,
        settings.jobs,
        one,
        lambda r, e: [PruneRow(r, "", action="failed", error=e)],
        what="pruning",
        out=out,
    )
    rows = [row for region_rows in found for row in region_rows]
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
