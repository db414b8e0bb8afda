"""The library imports from any folder: the checkout is found when it is needed, not on import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

IMPORT_ALL = """
import importlib, pkgutil
import gdal_lambda
names = [m.name for m in pkgutil.walk_packages(gdal_lambda.__path__, "gdal_lambda.")]
for name in names:
    importlib.import_module(name)
print(len(names))
"""


def test_every_module_imports_outside_a_checkout(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GDAL_LAMBDA_")}
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 20
