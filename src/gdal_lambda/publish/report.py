"""What a publish run did, region by region: the results, the one-line failure, the table."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import GdalLambdaError

PUBLISHED, UNCHANGED, FAILED = "published", "unchanged", "failed"
WOULD_PUBLISH = "would publish"
SAME_ZIP = "the latest version has this zip"

# Piped output (CI logs, files) gets room for ARNs instead of rich's 80-column default.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)


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


def progress_line(result: RegionResult) -> str:
    """``✓ eu-west-1: published v3`` as a region finishes."""
    mark = "[red]✗[/red]" if not result.ok else "[green]✓[/green]"
    version = f" v{result.version}" if result.version else ""
    return f"{mark} {result.region}: {result.status}{version}"


def results_table(report: Report, dry_run: bool) -> Table:
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
