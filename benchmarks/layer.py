"""Layer benchmarks, measured in one run (not a test): run after `nox -s test-<line>`.

    python benchmarks/layer.py --gdal 3.13 --target debian13

Prints:
  * the geo layer's zipped/unzipped size against the original project's GDAL 3.0 geo layer
    (46.4 MB zipped, 136.9 MB unzipped); goals: <= 45 MB and <= 120 MB;
  * cold `python -c "import rasterio"` in the clean runtime with our layer, against the same
    import from PyPI's rasterio wheel (which bundles its own GDAL) in the same runtime; goal <= 1.0;
  * our deterministic zip against `zip -r9q --symlinks` of the same tree: time (goal <= 1.0)
    and size (goal <= 1.02).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import variant_args

from gdal_lambda import assembly, containers, local, runtime

ORIGINAL_ZIPPED_MB = 46.4
ORIGINAL_UNZIPPED_MB = 136.9


def _import_time(
    cli, variant, opt: Path | None, task: Path | None, runs: int, module: str = "rasterio"
) -> float:
    """Median wall time of a fresh interpreter importing ``module`` (a new container each run).

    Raises RuntimeError with the interpreter's last line when the import fails."""
    code = f"import time; t = time.perf_counter(); {module}; print(time.perf_counter() - t)"
    env = runtime.data_env() if opt else {}
    samples = []
    for _ in range(runs):
        status, out = runtime.run_clean(
            cli, variant, ["python3", "-c", code], opt=opt, task=task, env=env
        )
        if status != 0:
            raise RuntimeError(out.strip().splitlines()[-1] if out.strip() else f"exit {status}")
        samples.append(float(out.strip().splitlines()[-1]))
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args, variant = variant_args.parse(parser)
    target, python = variant.target, variant.python
    zip_path = variant.layer_zip()
    if not zip_path.is_file():
        raise SystemExit(
            f"{zip_path} missing: run `invoke layer --gdal {variant.line.name} "
            f"--python {python} --target {target.name} --arch {variant.arch}`"
        )
    cli = containers.client()

    with tempfile.TemporaryDirectory() as tmp:
        opt = Path(tmp) / "opt"
        local.extract_zip(zip_path, opt)
        report = assembly.measure_tree(opt)
        zipped = zip_path.stat().st_size / 1e6
        unzipped = report.unzipped / 1e6
        print(f"layer {zip_path.name}: {zipped:.1f} MB zipped, {unzipped:.1f} MB unzipped")
        print(
            f"  vs original GDAL 3.0 geo layer: zipped {zipped / ORIGINAL_ZIPPED_MB:.2f}x "
            f"(goal <= 45 MB), unzipped {unzipped / ORIGINAL_UNZIPPED_MB:.2f}x (goal <= 120 MB)"
        )

        # The deterministic zip against Info-ZIP on the same tree.
        t0 = time.perf_counter()
        ours = Path(tmp) / "ours.zip"
        assembly.write_zip(opt, ours)
        ours_s = time.perf_counter() - t0
        theirs = Path(tmp) / "theirs.zip"
        t0 = time.perf_counter()
        subprocess.run(["zip", "-r9q", "--symlinks", str(theirs), "."], cwd=opt, check=True)
        theirs_s = time.perf_counter() - t0
        print(
            f"zip: ours {ours_s:.1f} s / {ours.stat().st_size / 1e6:.2f} MB, zip -r9q "
            f"{theirs_s:.1f} s / {theirs.stat().st_size / 1e6:.2f} MB -> time ratio "
            f"{ours_s / theirs_s:.2f} (goal <= 1.0), size ratio "
            f"{ours.stat().st_size / theirs.stat().st_size:.3f} (goal <= 1.02)"
        )

        # Cold import: our layer vs PyPI's rasterio wheel, same runtime image.
        wheel_task = Path(tmp) / "wheel"
        ran = containers.run(
            cli,
            variant.python_base,
            ["python3", "-m", "pip", "install", "-q", "--target", "/out", "rasterio"],
            volumes={str(wheel_task): {"bind": "/out", "mode": "rw"}},
        )
        if ran.status != 0:
            raise SystemExit(f"pip install rasterio failed:\n{ran.output[-2000:]}")
        ours_import = _import_time(cli, variant, opt, None, args.runs, "import rasterio")
        print(f"cold import rasterio (median of {args.runs}): layer {ours_import * 1000:.0f} ms")
        ours_gdal = _import_time(cli, variant, opt, None, args.runs, "from osgeo import gdal")
        print(
            f"cold from osgeo import gdal (median of {args.runs}): layer {ours_gdal * 1000:.0f} ms"
        )
        try:
            wheel_import = _import_time(
                cli, variant, None, wheel_task, args.runs, "import rasterio"
            )
        except RuntimeError as exc:
            # A manylinux wheel takes libexpat from the system; Lambda's execution environment
            # and the floor stand-in have none (README "Lambda policies").
            print(f"PyPI rasterio wheel cannot be imported in the {target.name} runtime: {exc}")
            return
        print(
            f"PyPI wheel {wheel_import * 1000:.0f} ms -> ratio {ours_import / wheel_import:.2f} "
            "(goal <= 1.0)"
        )


if __name__ == "__main__":
    main()
