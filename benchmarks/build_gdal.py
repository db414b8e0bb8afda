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
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from gdal_lambda import images, layer, sources, versions
from gdal_lambda.versions import LIBRARIES, ROOT

DOCKERFILE = ROOT / "docker" / "gdal" / "Dockerfile"


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--version", default="3.13")
    parser.add_argument("--target", default="debian13")
    args = parser.parse_args()
    matrix = versions.load_matrix()
    line, target = matrix.line(args.version), matrix.target(args.target)
    cli = images.client()
    fetched = sources.fetch_all([line.sources[n] for n in LIBRARIES])
    quiet = lambda _text: None  # noqa: E731

    # 1. the real thing, cold
    with tempfile.TemporaryDirectory() as tmp:
        extra = images._source_files(fetched, Path(tmp))
        with images.build_context(DOCKERFILE, extra) as ctx:
            args_ = {"BASE_IMAGE": target.gdal_base}
            t0 = time.perf_counter()
            for _ in cli.api.build(
                path=str(ctx),
                tag="gdal-lambda-bench:cold",
                buildargs=args_,
                nocache=True,
                rm=True,
                forcerm=True,
                decode=True,
            ):
                pass
            cold = time.perf_counter() - t0

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
            runs = stage_runs(DOCKERFILE.read_text())
            container = cli.containers.run(
                "gdal-lambda-bench:toolchain",
                ["sleep", "infinity"],
                entrypoint=["sleep"],
                detach=True,
                command=["infinity"],
            )
            try:
                for name in ("proj", "geos", "gdal"):
                    files = {f"src/{p.name}": p for p in (ctx / "sources").glob(f"{name}.*")}
                    container.put_archive("/tmp", layer.tar_of(files))
                    for command in runs[name]:
                        code, out = container.exec_run(
                            ["bash", "-c", command], workdir="/tmp/build"
                        )
                        if code != 0:
                            raise SystemExit(f"direct {name} failed:\n{out.decode()[-2000:]}")
            finally:
                container.remove(force=True)
            direct = time.perf_counter() - t0

    # 3. no-change rebuild through the tool (cache warm from step 1)
    images.build_gdal(matrix, line, target, echo=quiet, show_progress=False)
    t0 = time.perf_counter()
    images.build_gdal(matrix, line, target, echo=quiet, show_progress=False)
    rebuild = time.perf_counter() - t0

    print(
        f"cold build {cold / 60:.1f} min, direct compile {direct / 60:.1f} min -> ratio "
        f"{cold / direct:.2f} (goal <= 1.25)"
    )
    print(f"no-change rebuild {rebuild:.1f} s (goal <= 30 s)")


if __name__ == "__main__":
    main()
