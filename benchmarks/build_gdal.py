"""GDAL image build benchmark, measured in one run (not a test). Heavy: two full compiles.

    python benchmarks/build_gdal.py --version 3.13 --target debian13

Prints, each as soon as it is measured, on this machine:
  * a cold `invoke build.gdal` (no Docker cache at all), with the time of every stage: the
    native stack's libraries, then PROJ, GEOS and GDAL;
  * the same recipes run directly, one after the other in one toolchain container (no image
    layers, no cache): the ratio cold / direct is what the staged Dockerfile costs (goal <= 1.25);
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

TOOLS = "/usr/local/lib/gdal-lambda/stack"


def stage_names(text: str) -> list[str]:
    """The stages that build a library (every stage but the toolchain and the final image)."""
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)\s*$", text, re.M | re.I)
    return [s for s in stages if s not in ("toolchain", "final")]


def direct_files(ctx: Path, name: str) -> dict[str, bytes | Path]:
    """What the stage ``name`` COPYs in: its tarball, .missing list and recipe, under /tmp/src."""
    files: dict[str, bytes | Path] = {
        f"tmp/src/{p.name}": p for p in (ctx / "sources").glob(f"{name}.*")
    }
    files[f"tmp/src/{name}.sh"] = ctx / "scripts" / "stack" / f"{name}.sh"
    return files


def run_direct(cli: docker.DockerClient, image: str, ctx: Path, names: list[str]) -> None:
    """Every library's recipe, one after the other, in one toolchain container."""
    container = cli.containers.run(image, entrypoint=["sleep"], command=["infinity"], detach=True)
    try:
        for name in names:
            t0 = time.perf_counter()
            container.put_archive("/", containers.tar_of(direct_files(ctx, name)))
            code, out = container.exec_run([f"{TOOLS}/build.sh", name], workdir="/tmp")
            if code != 0:
                raise SystemExit(f"direct {name} failed:\n{out.decode()[-2000:]}")
            print(f"  direct {name}: {time.perf_counter() - t0:.0f} s")
    finally:
        container.remove(force=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--version", default="3.13")
    parser.add_argument("--target", default="debian13")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # figures as measured
    matrix = versions.load_matrix(env=os.environ)
    variant = Variant.resolve(matrix, line=args.version, target=args.target, env=os.environ)
    dockerfile = project_root() / "docker" / "gdal" / "Dockerfile"
    names = stage_names(dockerfile.read_text())
    cli = images.client()
    fetched = sources.fetch_all(list(matrix.components(variant.line).values()))
    quiet = lambda _text: None  # noqa: E731

    with tempfile.TemporaryDirectory() as tmp:
        extra = images._source_files(fetched, Path(tmp))
        with images.build_context(dockerfile, extra) as ctx:
            buildargs = {"BASE_IMAGE": variant.gdal_base}
            # 1. the real thing, cold: a stage ends when the next FROM line is printed
            t0 = last = time.perf_counter()
            stage = "toolchain"
            for event in cli.api.build(
                path=str(ctx),
                tag="gdal-lambda-bench:cold",
                buildargs=buildargs,
                nocache=True,
                rm=True,
                forcerm=True,
                decode=True,
            ):
                if "error" in event:
                    raise SystemExit(f"cold build failed: {event['error']}")
                match = re.search(r"Step \d+/\d+ : FROM \S+ AS (\S+)", event.get("stream", ""))
                if match:
                    now = time.perf_counter()
                    print(f"  cold {stage}: {now - last:.0f} s")
                    stage, last = match.group(1), now
            cold = time.perf_counter() - t0
            print(f"  cold {stage}: {time.perf_counter() - last:.0f} s")
            print(f"cold build {cold / 60:.1f} min")

            # 2. direct: the toolchain stage, then the same recipes in one container
            t0 = time.perf_counter()
            images.stream_build(
                cli,
                context=ctx,
                tag="gdal-lambda-bench:toolchain",
                buildargs=buildargs,
                target="toolchain",
                echo=quiet,
            )
            run_direct(cli, "gdal-lambda-bench:toolchain", ctx, names)
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
