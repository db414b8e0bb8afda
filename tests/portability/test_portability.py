"""The native part of a layer built on an older stand-in runs in a newer runtime.

Run by `nox -s portability-<line>`: it builds the line's layer on debian12 (glibc 2.36) and
runs its gdalinfo, ogr2ogr and PROJ tools in the debian13 runtime with Lambda's environment.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gdal_lambda import images, naming, runtime, versions


def test_debian12_layer_tools_run_in_the_debian13_runtime(tmp_path: Path) -> None:
    matrix = versions.load_matrix()
    line = matrix.line(os.environ.get("GDAL_LAMBDA_LINE", "3.13"))
    built_on = matrix.target(os.environ.get("GDAL_LAMBDA_BUILT_ON", "debian12"))
    run_on = matrix.target(os.environ.get("GDAL_LAMBDA_RUN_ON", "debian13"))
    zip_path = naming.layer_zip(line.name, built_on.check_python(None), "geo", built_on.name)
    if not zip_path.is_file():
        pytest.fail(f"{zip_path} missing: run `nox -s portability-{line.name}`")
    opt = tmp_path / "opt"
    subprocess.run(["unzip", "-q", str(zip_path), "-d", str(opt)], check=True)
    script = (
        "set -e; gdalinfo --version; projinfo EPSG:3857 -o PROJ | tail -1; "
        "echo '49 2' | cs2cs -f '%.2f' EPSG:4326 EPSG:3857; "
        'echo \'{"type":"Point","coordinates":[1,2]}\' > /tmp/p.geojson; '
        "ogr2ogr -f GPKG /tmp/p.gpkg /tmp/p.geojson; ogrinfo -ro -so -al /tmp/p.gpkg | grep 'Feature Count'"
    )
    code, out = runtime.run_clean(
        images.client(),
        run_on,
        run_on.check_python(None),
        ["sh", "-c", script],
        opt=opt,
        env=runtime.data_env(),
    )
    assert code == 0, out
    assert f"GDAL {line.version('gdal')}" in out
    assert "+proj=merc" in out
    assert "222638.98\t6274861.39" in out
    assert "Feature Count: 1" in out
