"""Regions: which ones (checked offline), connecting once, and running work in each in parallel.

    regions = resolve_regions("all")            # botocore's region list, no call
    link = connect(settings, regions, out)      # session, account id, enabled regions: once
    rows = for_each_region(link.regions, settings.jobs, work, on_error, what="publishing")

Regions run in a bounded thread pool; one failing region does not stop the others. On Ctrl-C
nothing new starts, the regions in flight finish (a region's work is written atomically as it
ends), and :class:`Interrupted` says which were in flight and which never started.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TypeVar

from rich.console import Console
from rich.markup import escape

from ..errors import GdalLambdaError
from ..options import comma_list
from .aws import Aws, Settings, new_session, reason

DEFAULT_PARTITION = "aws"
INTERRUPTED_EXIT = 130  # what a shell reports for SIGINT

_T = TypeVar("_T")


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
    tokens = comma_list(*([spec] if isinstance(spec, str) or spec is None else spec))
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
# Connecting: the preamble every command shares


@dataclass(frozen=True)
class Link:
    """A checked connection: the clients, who we are, and the regions to work in."""

    aws: Aws
    account: str
    regions: list[str]
    note: str  # regions skipped (not enabled), or why they could not be listed


def connect(settings: Settings, regions: Sequence[str], out: Console) -> Link:
    """One session; the caller's account (the first request: fatal errors are one line); with
    ``all``, the regions the account has not enabled dropped, said on ``out``."""
    aws = Aws(settings)
    known = known_regions()
    configured = aws.session.region_name
    # STS is asked in the configured region if it is in the same partition as the work
    home = configured if configured and known.get(configured) == known.get(regions[0]) else None
    home = home or regions[0]
    account = aws.account(home)
    picked, note = list(regions), ""
    if getattr(regions, "everything", False):
        picked, note = aws.enabled_regions(home, picked)
    if note:
        out.print(f"[yellow]{escape(note)}[/yellow]")
    return Link(aws=aws, account=account, regions=picked, note=note)


# ------------------------------------------------------------------------------------------------
# Running work in every region


class Interrupted(GdalLambdaError):
    """Ctrl-C: what finished (in region order), what was in flight, what never started."""

    exit_code = INTERRUPTED_EXIT

    def __init__(
        self,
        what: str,
        finished: dict[str, object],
        in_flight: Sequence[str],
        not_started: Sequence[str],
    ) -> None:
        self.finished = finished
        self.in_flight = list(in_flight)
        self.not_started = list(not_started)
        parts = [f"interrupted: {what} stopped with {len(finished)} region(s) done"]
        if self.in_flight:
            parts.append(f"in flight, let finish: {', '.join(self.in_flight)}")
        parts.append(
            f"not started: {', '.join(self.not_started)}" if self.not_started else "none left"
        )
        parts.append(
            "re-run the same command to finish them (it is idempotent: regions already done "
            "are skipped)"
            if self.not_started
            else "nothing is left to do"
        )
        super().__init__("; ".join(parts))


def for_each_region(
    regions: Sequence[str],
    jobs: int,
    work: Callable[[str], _T],
    on_error: Callable[[str, str], _T],
    *,
    what: str,
    out: Console,
    on_done: Callable[[_T], None] | None = None,
) -> list[_T]:
    """``work(region)`` for every region, at most ``jobs`` at a time; results in region order.

    A region whose work raises gets ``on_error(region, one-line reason)`` instead; ``on_done``
    sees each result as it arrives. Ctrl-C: nothing new starts, the regions in flight finish,
    then :class:`Interrupted` is raised with the results so far.
    """
    results: dict[str, _T] = {}

    def guarded(region: str) -> _T:
        try:
            return work(region)
        except Exception as exc:  # one region's failure must not stop the others
            return on_error(region, reason(exc))

    pool = ThreadPoolExecutor(
        max_workers=max(1, min(jobs, len(regions))), thread_name_prefix="region"
    )
    futures: dict[Future[_T], str] = {}
    try:
        for region in regions:
            futures[pool.submit(guarded, region)] = region
        for future in as_completed(futures):
            result = future.result()
            results[futures[future]] = result
            if on_done:
                on_done(result)
    except KeyboardInterrupt:
        cancelled = {region for future, region in futures.items() if future.cancel()}
        in_flight = [r for f, r in futures.items() if not f.done() and r not in cancelled]
        if in_flight:
            out.print(
                f"[yellow]interrupted: letting {', '.join(in_flight)} finish (nothing new "
                "starts)…[/yellow]"
            )
        _wait_out(pool)
        for future, region in futures.items():
            if region not in results and not future.cancelled():
                results[region] = future.result()
        submitted = set(futures.values())
        not_started = [r for r in regions if r in cancelled or r not in submitted]
        raise Interrupted(
            what, {r: results[r] for r in regions if r in results}, in_flight, not_started
        ) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return [results[r] for r in regions]


def _wait_out(pool: ThreadPoolExecutor) -> None:
    """Wait for the threads in flight; another Ctrl-C does not abandon them half-way."""
    while True:
        try:
            pool.shutdown(wait=True, cancel_futures=True)
            return
        except KeyboardInterrupt:
            continue
