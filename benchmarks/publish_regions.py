"""Publishing to 16 regions against publishing to 1, with the same per-request latency.

    python benchmarks/publish_regions.py [--latency 0.2] [--regions 16] [--repeat 3] [--jobs 16]

moto in server mode is the AWS endpoint; the test suite's fault proxy sits in front of it and
delays every request by --latency seconds (what a far-away region costs). Both run in a child
process, so that their work does not compete with the publisher for this process's GIL. Each run
publishes a new layer (a fresh name), so every region does the same work: list versions,
publish. Prints the median wall time of each and their ratio; exits 1 when the ratio is above
the goal (2.0).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "fast"))

from publish_support import (  # noqa: E402
    AWS_UNSET,
    FaultProxy,
    aws_env,
    make_zip,
    moto_server,
    variant,
)
from rich.console import Console  # noqa: E402

from gdal_lambda import publish as pub  # noqa: E402

GOAL = 2.0


def one_run(url: str, zip_path: Path, regions: list[str], jobs: int, n: int) -> float:
    layer = pub.layer_spec(variant(), zip_path=zip_path, name=f"bench{n}-{len(regions)}")
    started = time.perf_counter()
    report = pub.publish(
        layer,
        regions,
        settings=pub.Settings(endpoint_url=url, jobs=jobs),
        manifest=zip_path.parent / f"layers-{n}.json",
        out=Console(file=io.StringIO()),
    )
    elapsed = time.perf_counter() - started
    assert all(r.status == "published" for r in report.results), report.failed
    return elapsed


def serve(latency: float) -> None:
    """The child: moto and the proxy until stdin closes; the proxy's URL on stdout."""
    with moto_server() as endpoint, FaultProxy(endpoint, latency=latency) as proxy:
        print(proxy.url, flush=True)
        sys.stdin.read()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="seconds added per request")
    parser.add_argument("--regions", type=int, default=16, help="regions in the wide run")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; medians compared")
    parser.add_argument("--jobs", type=int, default=pub.DEFAULT_JOBS, help="regions at a time")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gdal-lambda-bench.") as tmp:
        for name in AWS_UNSET:
            os.environ.pop(name, None)
        os.environ.update(aws_env(Path(tmp)))  # fake credentials: never the real AWS
        if args.serve:
            serve(args.latency)
            return 0
        zip_path = make_zip(Path(tmp) / "layer.zip", b"x" * 4096, files=8)
        wide = list(pub.resolve_regions("all"))[: args.regions]
        narrow = wide[:1]
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", "--latency", str(args.latency)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            url = child.stdout.readline().strip()
            one_run(url, zip_path, narrow, args.jobs, -1)  # warm-up: imports, models, moto
            times: dict[int, list[float]] = {1: [], len(wide): []}
            for n in range(args.repeat):
                times[1].append(one_run(url, zip_path, narrow, args.jobs, n))
                times[len(wide)].append(one_run(url, zip_path, wide, args.jobs, n))
        finally:
            if child.stdin:
                child.stdin.close()
            child.wait(timeout=30)

    one, many = statistics.median(times[1]), statistics.median(times[len(wide)])
    ratio = many / one
    print(f"latency per request: {args.latency * 1000:.0f} ms, jobs {args.jobs}")
    print(f"1 region:   median {one:.2f} s  ({', '.join(f'{t:.2f}' for t in times[1])})")
    print(
        f"{len(wide)} regions: median {many:.2f} s  "
        f"({', '.join(f'{t:.2f}' for t in times[len(wide)])})"
    )
    print(f"ratio {len(wide)}/1: {ratio:.2f} (goal <= {GOAL})")
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
