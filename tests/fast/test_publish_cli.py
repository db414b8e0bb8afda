"""`invoke publish`, `invoke layers.*` as a user runs them: exit codes, one-line errors, output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from publish_support import AWS_UNSET, Fault, FaultProxy, free_port, make_zip

ROOT = Path(__file__).resolve().parents[2]
NAME = "gdal313-py312-geo"


def invoke(
    *args: str, env: dict[str, str], drop: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in AWS_UNSET}
    # never the real AWS, whatever a test forgets: a closed port unless the test says otherwise
    base["GDAL_LAMBDA_ENDPOINT_URL"] = f"http://127.0.0.1:{free_port()}"
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        env={k: v for k, v in {**base, **env}.items() if k not in drop},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture
def layer_zip(tmp_path: Path) -> Path:
    return make_zip(tmp_path / "layer.zip")


def test_publish_list_and_prune_through_invoke(
    aws: dict[str, str], moto: str, layer_zip: Path, tmp_path: Path
) -> None:
    env = {**aws, "GDAL_LAMBDA_ENDPOINT_URL": moto}
    manifest = tmp_path / "layers.json"

    done = invoke(
        "publish",
        "--gdal",
        "3.13",
        "--python",
        "3.12",
        "--regions",
        "us-east-1,eu-west-1",
        "--zip",
        str(layer_zip),
        "--manifest",
        str(manifest),
        "--public",
        env=env,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.count("published") >= 2 and "public" in done.stdout
    recorded = json.loads(manifest.read_text())[NAME]
    assert sorted(recorded) == ["eu-west-1", "us-east-1"]

    listed = invoke(
        "layers.list",
        "--gdal",
        "3.13",
        "--python",
        "3.12",
        "--regions",
        "us-east-1,eu-west-1,sa-east-1",
        env=env,
    )

    assert listed.returncode == 0, listed.stderr
    assert recorded["eu-west-1"]["arn"] in listed.stdout
    assert "not published" in listed.stdout  # sa-east-1

    pruned = invoke("layers.prune", "--keep", "1", "--regions", "us-east-1", env=env)

    assert pruned.returncode == 0, pruned.stderr
    assert "dry run" in pruned.stdout and "nothing to prune" in pruned.stdout


def test_one_failed_region_is_exit_1_with_one_line(
    aws: dict[str, str], proxy: FaultProxy, layer_zip: Path, tmp_path: Path
) -> None:
    proxy.add(Fault(status=500, code="ServiceException", region="eu-west-1", service="lambda"))
    env = {**aws, "GDAL_LAMBDA_ENDPOINT_URL": proxy.url, "GDAL_LAMBDA_MAX_ATTEMPTS": "2"}

    result = invoke(
        "publish",
        "--gdal",
        "3.13",
        "--python",
        "3.12",
        "--regions",
        "us-east-1,eu-west-1",
        "--zip",
        str(layer_zip),
        "--manifest",
        str(tmp_path / "layers.json"),
        env=env,
    )

    line = one_error_line(result)
    assert "publishing failed in 1 of 2 regions (eu-west-1: ServiceException" in line
    assert "failed" in result.stdout and "published" in result.stdout  # the table
    assert sorted(json.loads((tmp_path / "layers.json").read_text())[NAME]) == ["us-east-1"]


def test_an_unknown_region_is_exit_1_with_one_line(aws: dict[str, str], layer_zip: Path) -> None:
    line = one_error_line(
        invoke(
            "publish",
            "--gdal",
            "3.13",
            "--python",
            "3.12",
            "--regions",
            "eu-west-9",
            "--zip",
            str(layer_zip),
            env=aws,
        )
    )
    assert line.startswith("error: unknown region 'eu-west-9' for Lambda")


def test_no_credentials_is_exit_1_with_one_line(
    aws: dict[str, str], moto: str, layer_zip: Path, tmp_path: Path
) -> None:
    result = invoke(
        "publish",
        "--gdal",
        "3.13",
        "--python",
        "3.12",
        "--regions",
        "us-east-1",
        "--zip",
        str(layer_zip),
        "--manifest",
        str(tmp_path / "m.json"),
        env={**aws, "GDAL_LAMBDA_ENDPOINT_URL": moto},
        drop=("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
    )

    assert one_error_line(result).startswith("error: no AWS credentials found")
    assert not (tmp_path / "m.json").exists()
