"""Package benchmarks, measured in one run (not a test): run after `nox -s test-<line>`.

    python benchmarks/package.py --gdal 3.13 --target debian13

Prints:
  * the companion package of examples/layer (only what the geo layer lacks) against a full
    package of the same handler and requirements (runs with no layer);
  * the time of a no-change rebuild of that full package (goal <= 20 s: nothing recompiled).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import variant_args

from gdal_lambda import package
from gdal_lambda.project import project_root


def main() -> None:
    _, variant = variant_args.parse()
    matrix = variant.matrix
    # A package whose pin needs its own build toolchain (a matrix overlay's build_constraints)
    # cannot be compiled in the full package's shared build: it comes as its wheel, and is said.
    isolated = set(matrix.build_constraints)
    no_binary = ",".join(p for p in matrix.compiled_against_opt if p not in isolated)
    if isolated:
        print(f"note: {', '.join(sorted(isolated))} taken as PyPI wheels in the full package")

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "layer"
        shutil.copytree(project_root() / "examples" / "layer", src)
        mb = 1e6
        companion = package.build_package(variant, src, with_layer=True, out=Path(tmp) / "c.zip")
        c_zip = companion.report.zipped or 0
        print(
            f"examples/layer companion: {c_zip / mb:.2f} MB zipped, "
            f"{companion.report.unzipped / mb:.2f} MB unzipped",
            flush=True,
        )
        t0 = time.perf_counter()
        full = package.build_package(variant, src, out=Path(tmp) / "f.zip", no_binary=no_binary)
        first_s = time.perf_counter() - t0
        f_zip = full.report.zipped or 0
        print(f"full package: first build {first_s:.1f} s", flush=True)
        t0 = time.perf_counter()
        again = package.build_package(variant, src, out=Path(tmp) / "f.zip", no_binary=no_binary)
        again_s = time.perf_counter() - t0
        assert again.unchanged, "a no-change rebuild rewrote the zip"

    print(
        f"same handler as a full package: {f_zip / mb:.1f} MB zipped, "
        f"{full.report.unzipped / mb:.1f} MB unzipped -> companion/full "
        f"{c_zip / f_zip:.4f} zipped, "
        f"{companion.report.unzipped / full.report.unzipped:.4f} unzipped"
    )
    print(f"full package: no-change rebuild {again_s:.1f} s (goal <= 20 s)")


if __name__ == "__main__":
    main()
