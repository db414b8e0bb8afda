"""Vector layers against PyPI's wheels, measured in one run (not a test): run after
`nox -s test-<line>` built every recipe's zip for the target.

    python benchmarks/vector.py --gdal 3.13 [--before dist-old/gdal3.13-py3.13-geo.zip]

Prints, for every recipe (geo, geopandas):
  * zipped / unzipped MiB and the headroom left under Lambda's 250 MiB; goals on the floor:
    geo <= 110 MiB unzipped and <= 42 MiB zipped, geopandas <= 150 MiB unzipped;
  * with --before (an older zip of the same recipe), the same figures for it and the ratio;
  * what numpy takes in the layer (numpy/ and numpy.libs/);
then cold `import geopandas` and `import rasterio` (median of --runs fresh containers) with the
geopandas layer in the target's runtime, against PyPI's wheels (rasterio, pyogrio, geopandas,
each wheel with its own libgdal) installed into /var/task of the debian13 runtime (where those
wheels import), and the layer in that runtime too (the same interpreter as the wheels), with the
count of libgdal copies mapped in each process.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
from pathlib import Path

import variant_args

from gdal_lambda import assembly, containers, limits, local, runtime
from gdal_lambda.variant import Variant

RECIPES = ("geo", "geopandas")
GOALS = {"geo": (110, 42), "geopandas": (150, None)}  # MiB unzipped, zipped
WHEELS = ("rasterio", "pyogrio", "geopandas")
WHEEL_RUNTIME = "debian13"

PROBE = """
import json, re, time
t = time.perf_counter()
{imports}
took = time.perf_counter() - t
maps = {{line.split()[-1] for line in open("/proc/self/maps") if len(line.split()) >= 6}}
gdal = [p for p in maps if re.search(r"/libgdal[-.][^/]*so", p)]
print(json.dumps({{"s": took, "libgdal": len(gdal)}}))
"""


def sizes(zip_path: Path) -> tuple[assembly.SizeReport, int]:
    """The tree's report (unzipped, largest files) and what numpy takes in it."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "opt"
        local.extract_zip(zip_path, tree)
        report = assembly.measure_tree(tree)
        report.zipped = zip_path.stat().st_size
        numpy = sum(
            p.stat().st_size
            for folder in ("python/numpy", "python/numpy.libs")
            for p in (tree / folder).rglob("*")
            if p.is_file() and not p.is_symlink()
        )
    return report, numpy


def mib(size: int) -> str:
    return limits.fmt_mib(size)


def probe(cli, variant: Variant, imports: str, runs: int, **where: Path) -> tuple[float, int]:
    """Median seconds of ``imports`` in fresh containers, and the libgdal copies mapped."""
    samples, copies = [], 0
    env = runtime.data_env() if "opt" in where else {}
    for _ in range(runs):
        status, out = runtime.run_clean(
            cli, variant, ["python3", "-c", PROBE.format(imports=imports)], env=env, **where
        )
        if status != 0:
            raise SystemExit(f"{imports!r} failed in {variant.runtime_image}:\n{out[-2000:]}")
        facts = json.loads(out.strip().splitlines()[-1])
        samples.append(facts["s"])
        copies = facts["libgdal"]
    return statistics.median(samples), copies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--before", type=Path, help="an older zip of a recipe, to compare")
    args, variant = variant_args.parse(parser)
    cli = containers.client()

    for recipe in RECIPES:
        zip_path = dataclasses.replace(variant, recipe=recipe).layer_zip()
        if not zip_path.is_file():
            raise SystemExit(f"{zip_path} missing: run `nox -s test-{variant.line.name}` first")
        report, numpy = sizes(zip_path)
        unzipped_goal, zipped_goal = GOALS[recipe]
        zipped = report.zipped or 0
        print(
            f"{zip_path.name}: {mib(zipped)} zipped, {mib(report.unzipped)} unzipped, headroom "
            f"{mib(assembly.headroom(report))} of {mib(limits.LAMBDA_UNZIPPED_LIMIT)}; numpy "
            f"{mib(numpy)}; goals: unzipped {report.unzipped / limits.MIB / unzipped_goal:.2f}x of "
            f"{unzipped_goal} MiB"
            + (
                f", zipped {zipped / limits.MIB / zipped_goal:.2f}x of {zipped_goal} MiB"
                if zipped_goal
                else ""
            )
        )
        for name, size in report.largest[:5]:
            print(f"    {mib(size):>10}  {name}")
        if args.before and args.before.is_file() and f"-{recipe}" in args.before.name:
            old, old_numpy = sizes(args.before)
            print(
                f"  before ({args.before.name}): {mib(old.zipped or 0)} zipped, "
                f"{mib(old.unzipped)} unzipped, numpy {mib(old_numpy)} -> unzipped ratio "
                f"{report.unzipped / old.unzipped:.2f}, zipped {zipped / (old.zipped or 1):.2f}, "
                f"numpy {numpy / old_numpy:.2f}"
            )

    gp = dataclasses.replace(variant, recipe="geopandas")
    wheels = Variant.resolve(
        variant.matrix, line=variant.line.name, env={}, target=WHEEL_RUNTIME, arch=variant.arch
    )
    with tempfile.TemporaryDirectory() as tmp:
        opt = Path(tmp) / "opt"
        local.extract_zip(gp.layer_zip(), opt)
        task = Path(tmp) / "task"
        task.mkdir()
        ran = containers.run(
            cli,
            wheels.runtime_image,
            ["python3", "-m", "pip", "install", "-q", "--target", "/out", *WHEELS],
            volumes={str(task): {"bind": "/out", "mode": "rw"}},
        )
        if ran.status != 0:
            raise SystemExit(f"pip install {' '.join(WHEELS)} failed:\n{ran.output[-2000:]}")
        # the same bytecode both ways: compile the wheels' modules once, as the layer ships them
        containers.run(
            cli,
            wheels.runtime_image,
            ["python3", "-m", "compileall", "-q", "-j0", "/out"],
            volumes={str(task): {"bind": "/out", "mode": "rw"}},
        )
        # The layer also in the wheels' runtime: the same interpreter both ways, so the ratio
        # there is the packages' alone (the floor's /var/lang CPython is another build).
        there = dataclasses.replace(wheels, recipe="geopandas")
        for module in ("geopandas", "rasterio"):
            ours, _ = probe(cli, gp, f"import {module}", args.runs, opt=opt)
            ours_there, _ = probe(cli, there, f"import {module}", args.runs, opt=opt)
            theirs, _ = probe(cli, wheels, f"import {module}", args.runs, task=task)
            print(
                f"cold import {module} (median of {args.runs}): layer {ours * 1000:.0f} ms in "
                f"{gp.target.name}, {ours_there * 1000:.0f} ms in {WHEEL_RUNTIME}; PyPI wheels "
                f"{theirs * 1000:.0f} ms in {WHEEL_RUNTIME} -> ratio {ours / theirs:.2f} "
                f"(same runtime: {ours_there / theirs:.2f})"
            )
        both = "import rasterio, pyogrio, geopandas"
        _, ours_copies = probe(cli, gp, both, 1, opt=opt)
        _, their_copies = probe(cli, wheels, both, 1, task=task)
        print(
            f"libgdal copies mapped after `{both}`: layer {ours_copies}, PyPI wheels {their_copies}"
        )


if __name__ == "__main__":
    main()
