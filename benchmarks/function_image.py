"""Function image benchmark, measured in one run (not a test): run after `nox -s test-<line>`.

    python benchmarks/function_image.py --gdal 3.13

Prints, side by side with the zip route the same handler takes (layer zip + companion package,
run by `invoke run`):
  * the image's size uncompressed (what Lambda's 10 GB counts) against the layer zip plus the
    companion package, zipped and unzipped;
  * its build time with nothing built yet for it, and again with only the handler changed;
  * the time from `docker run` to the first response (the image's cold start, through the
    Runtime API and the real awslambdaric) against `invoke run` of the zips, median of 5 each.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

import variant_args

from gdal_lambda import containers, function_image, local, package, runtime
from gdal_lambda.project import project_root

RUNS = 5
EVENT = {"points": [[3, 7]], "zoom": 6}


def _median(samples: list[float]) -> float:
    return statistics.median(samples)


def main() -> None:
    _, variant = variant_args.parse()
    cli = containers.client()
    mib = 2**20
    with tempfile.TemporaryDirectory() as tmp:
        # The handler of examples/layer (no network needed: it reads nothing remote for an
        # event without a URL), copied so the benchmark can change it.
        src = Path(tmp) / "bench"
        shutil.copytree(project_root() / "examples" / "layer", src)
        (src / "handler.py").write_text(
            "def handler(event, context):\n"
            "    from osgeo import gdal\n"
            "    import rasterio\n"
            "    return {'gdal': gdal.__version__, 'rasterio': rasterio.__version__}\n"
        )
        t0 = time.perf_counter()
        built = function_image.build_image(variant, src, echo=lambda _: None)
        first = time.perf_counter() - t0
        (src / "handler.py").write_text(
            (src / "handler.py").read_text() + "# changed\n", encoding="utf-8"
        )
        t0 = time.perf_counter()
        rebuilt = function_image.build_image(variant, src, echo=lambda _: None)
        second = time.perf_counter() - t0
        companion = package.build_package(
            variant, src, with_layer=True, out=Path(tmp) / "c.zip", force=True
        )
        layer_zip = variant.layer_zip()
        with zipfile.ZipFile(layer_zip) as archive:
            layer_unzipped = sum(i.file_size for i in archive.infolist())
        print(
            f"image {rebuilt.tag}: {rebuilt.size / mib:.1f} MiB uncompressed "
            f"(Lambda's limit 10240 MiB); layer zip {layer_zip.stat().st_size / mib:.1f} MiB "
            f"zipped / {layer_unzipped / mib:.1f} MiB unzipped + companion "
            f"{(companion.report.zipped or 0) / mib:.2f} / "
            f"{companion.report.unzipped / mib:.2f} MiB"
        )
        print(f"image build: {first:.1f} s first, {second:.1f} s with only the handler changed")
        image_s: list[float] = []
        for _ in range(RUNS):
            t0 = time.perf_counter()
            outcome, _log = function_image.invoke_image(cli, variant, built.tag, EVENT)
            image_s.append(time.perf_counter() - t0)
            assert outcome.kind == "response", outcome
        event = Path(tmp) / "event.json"
        event.write_text(json.dumps(EVENT))
        zip_s: list[float] = []
        for _ in range(RUNS):
            t0 = time.perf_counter()
            result = local.invoke_local(
                cli,
                variant,
                companion.zip_path,
                event,
                layer_zip=layer_zip,
                env=runtime.RECOMMENDED_GDAL_ENV,
            )
            zip_s.append(time.perf_counter() - t0)
            assert result.ok, result.error
        print(
            f"first response, median of {RUNS}: image {_median(image_s):.2f} s (docker run -> "
            f"awslambdaric -> Runtime API), zips {_median(zip_s):.2f} s (invoke run: unzip both, "
            f"run the handler); ratio image/zips {_median(image_s) / _median(zip_s):.2f}"
        )
        for tag in {built.tag, rebuilt.tag}:
            cli.images.remove(tag, force=True)


if __name__ == "__main__":
    main()
