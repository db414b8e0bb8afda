"""How the suite itself runs: a bare `pytest` is the fast suite; the portability tests name the
line they check or fail saying how to run them."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from helpers import ROOT


def test_a_bare_pytest_collects_no_image_test() -> None:
    """It once collected tests/image too, and stopped on two modules of the same base name."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    collected = [line for line in result.stdout.splitlines() if "::" in line]
    assert collected and all(line.startswith("tests/fast/") for line in collected)


def test_the_portability_tests_fail_loudly_without_a_line() -> None:
    """They once resolved line 3.13 when $GDAL_LAMBDA_LINE was not set."""
    path = ROOT / "tests" / "portability" / "test_portability.py"
    spec = importlib.util.spec_from_file_location("portability_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(pytest.fail.Exception, match="GDAL_LAMBDA_LINE is not set"):
        module.built_variant({})
    assert module.built_variant({"GDAL_LAMBDA_LINE": "3.10"}).line.name == "3.10"
