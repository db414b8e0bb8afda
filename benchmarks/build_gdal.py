"""GDAL image build benchmark, measured in one run (not a test). Heavy: two full compiles.

    python benchmarks/build_gdal.py --version 3.13 --target debian13

Prints, as ratios of times measured in this run on this machine:
  * a cold `invoke build.gdal` (no Docker cache at all) against compiling the same three
    tarballs directly with the same commands: the toolchain stage, then the proj/geos/gdal RUN
    steps of docker/gdal/Dockerfile run one after the other in one container (goal <= 1.25);
  * a no-change rebuild (everything cached), in seconds (goal <= 30 s).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import docker

from gdal_lambda import containers, images, sources, versions
from gdal_lambda.project import project_root
from gdal_lambda.variant import Variant
from gdal_lambda.versions import LIBRARIES

TOOLS = "/usr/local/lib/gdal-lambda"


def stage_runs(text: str) -> dict[str, list[str]]:
    """The RUN commands of each stage (continuation lines joined), by stage name."""
    runs: dict[str, list[str]] = {}
    stage = ""
    joined = re.sub(r"\\\n", " ", text)
    for raw in joined.splitlines():
        line = raw.strip()
        match = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.I)
        if match:
            stage = match.group(1)
        elif line.startswith("RUN ") and stage:
            runs.setdefault(stage, []).append(line[4:])
    return runs


def direct_files(ctx: Path, name: str) -> dict[str, bytes | Path]:
    """What the stage ``name`` COPYs in, for the toolchain container: its source tarball (and
    .missing list) under /tmp/src, and the scripts its RUN steps call (the gdal stage's
    runtime-packages.sh, which the toolchain stage does not have)."""
    files: dict[str, bytes | Path] = {
        f"tmp/src/{p.name}": p for p in (ctx / "sources").glob(f"{name}.*")
    }
    for script in (ctx / "scripts").glob("*.sh"):
        files[f"{TOOLS.lstrip('/')}/{script.name}"] = script
    return files


def run_direct(cli: docker.DockerClient, image: str, ctx: Path, runs: dict[str, list[str]]) -> None:
    """The proj, geos and gdal RUN steps, one after the other, in one toolchain container."""
    container = cli.containers.run(image, entrypoint=["sleep"], command=["infinity"], detach=True)
    try:
        for name in ("proj", "geos", "gdal"):
            container.put_archive("/", containers.tar_of(direct_files(ctx, name)))
            for command in runs[name]:
                code, out = container.exec_run(["bash", "-c", command], workdir="/tmp/build")
                if code != 0:
                    raise SystemExit(f"direct {name} failed:\n{out.decode()[-2000:]}")
    finally:
        container.remove(force=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--version", default="3.13")
    parser.add_argument("--target", default="debian13")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # figures as measured
    variant = Variant.resolve(
        versions.load_matrix(), line=args.version, target=args.target, env=os.environ
    )
    line, target = variant.line, variant.target
    dockerfile = project_root() / "docker" / "gdal" / "Dockerfile"
    cli = images.client()
    fetched = sources.fetch_all([line.sources[n] for n in LIBRARIES])
    quiet = lambda _text: None  # noqa: E731

    # 1. the real thing, cold
    with tempfile.TemporaryDirectory() as tmp:
        extra = images._source_files(fetched, Path(tmp))
        with images.build_context(dockerfile, extra) as ctx:
            args_ = {"BASE_IMAGE": target.gdal_base}
            t0 = time.perf_counter()
            for event in cli.api.build(
                path=str(ctx),
                tag="gdal-lambda-bench:cold",
                buildargs=args_,
                nocache=True,
                rm=True,
                forcerm=True,
                decode=True,
            ):
                if "error" in event:
                    raise SystemExit(f"cold build failed: {event['error']}")
            cold = time.perf_counter() - t0
            print(f"cold build {cold / 60:.1f} min")

            # 2. direct: the toolchain stage, then the same RUN steps in one container
            t0 = time.perf_counter()
            images.stream_build(
                cli,
                context=ctx,
                tag="gdal-lambda-bench:toolchain",
                buildargs=args_,
                target="toolchain",
                echo=quiet,
            )
            run_direct(cli, "gdal-lambda-bench:toolchain", ctx, stage_runs(dockerfile.read_text()))
            direct = time.perf_counter() - t0
            print(
                f"direct compile {direct / 60:.1f} min -> ratio {cold / direct:.2f} (goal <= 1.25)"
            )

    # 3. no-change rebuild through the tool (cache warm from step 1)
    images.build_gdal(variant, echo=quiet, show_progress=False)
    t0 = time.perf_counter()
    images.build_gdal(variant, echo=quiet, show_progress=False)
    rebuild = time.perf_counter() - t0
    print(f"no-change rebuild {rebuild:.1f} s (goal <= 30 s)")


if __name__ == "__main__":
    main()
