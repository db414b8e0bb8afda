"""`invoke publish`, `invoke layers.*` as a user runs them: exit codes, one-line errors, output."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import ROOT, one_error_line
from helpers import invoke as run_invoke
from publish_support import AWS_UNSET, Fault, FaultProxy, free_port, make_zip

NAME = "gdal313-py312-geo"


def invoke(
    *args: str, env: dict[str, str], drop: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in AWS_UNSET}
    # never the real AWS, whatever a test forgets: a closed port unless the test says otherwise
    base["GDAL_LAMBDA_ENDPOINT_URL"] = f"http://127.0.0.1:{free_port()}"
    return run_invoke(*args, env=env, drop=drop, base=base)


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


def publish_args(
    layer_zip: Path, manifest: Path, *extra: str, regions: str = "us-east-1"
) -> list[str]:
    return [
        "publish",
        "--gdal",
        "3.13",
        "--python",
        "3.12",
        "--regions",
        regions,
        "--zip",
        str(layer_zip),
        "--manifest",
        str(manifest),
        *extra,
    ]


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (("--jobs", "0"), "error: --jobs is 0: it must be at least 1"),
        (("--max-attempts", "0"), "error: max attempts is 0: --max-attempts"),
        (("--max-attempts", "many"), "error: --max-attempts 'many' is not a whole number"),
    ],
)
def test_zero_jobs_or_attempts_is_one_error_not_the_default(
    aws: dict[str, str],
    proxy: FaultProxy,
    layer_zip: Path,
    tmp_path: Path,
    option: tuple[str, str],
    expected: str,
) -> None:
    """`--jobs 0` once ran 16 jobs and `--max-attempts 0` 5 attempts, silently."""
    env = {**aws, "GDAL_LAMBDA_ENDPOINT_URL": proxy.url}

    result = invoke(*publish_args(layer_zip, tmp_path / "layers.json", *option), env=env)

    assert one_error_line(result).startswith(expected)
    assert proxy.seen == []
    assert not (tmp_path / "layers.json").exists()


def short_flags(task: str) -> dict[str, str]:
    """``{"r": "regions", ...}`` from `invoke --help <task>`; fails if the help has no options."""
    result = invoke("--help", task, env={})
    assert result.returncode == 0, result.stderr
    longs = re.findall(r"^\s+(?:-\w(?: \S+)?, )?--([\w-]+)", result.stdout, re.M)
    assert "regions" in longs, result.stdout
    return dict(re.findall(r"^\s+-(\w)(?: \S+)?, --([\w-]+)", result.stdout, re.M))


def test_no_short_flag_means_two_things_across_the_publishing_tasks() -> None:
    """`-r` was --regions in publish and --recipe in layers.list."""
    seen: dict[str, tuple[str, str]] = {}
    for task in ("publish", "layers.list", "layers.prune"):
        for short, long in short_flags(task).items():
            first = seen.setdefault(short, (task, long))
            assert first[1] == long, f"-{short} is --{first[1]} in {first[0]}, --{long} in {task}"


def test_a_repeatable_option_shows_its_value_in_help() -> None:
    result = invoke("--help", "publish", env={})
    assert re.search(r"^\s+--account\s+ID\b", result.stdout, re.M), result.stdout


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_says_what_was_in_flight_and_a_rerun_finishes(
    aws: dict[str, str], proxy: FaultProxy, layer_zip: Path, tmp_path: Path
) -> None:
    """SIGINT while a region publishes: it finishes and is recorded (atomically), the others
    never start, the user is told which is which and that the same command finishes the job."""
    regions = ["us-east-1", "eu-west-1", "ap-southeast-2", "sa-east-1"]
    out = tmp_path / "out"
    out.mkdir()
    manifest = out / "layers.json"
    args = publish_args(layer_zip, manifest, "--jobs", "1", regions=",".join(regions))
    env = {**aws, "GDAL_LAMBDA_ENDPOINT_URL": proxy.url}
    proxy.state.latency = 0.4  # a region takes a few requests: >1 s in flight

    base = {k: v for k, v in os.environ.items() if k not in AWS_UNSET}
    child = subprocess.Popen(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        env={**base, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell that starts a job in the background leaves SIGINT ignored, and a child
        # inherits that: Python then installs no KeyboardInterrupt handler and the publish
        # runs to its end. The child gets default SIGINT handling, as at a terminal.
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(s.service == "lambda" for s in proxy.seen):
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "publish never reached Lambda"
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    assert child.returncode == 130, (stdout, stderr)
    message = " ".join(stderr.split())
    assert "interrupted: publishing stopped" in message, stderr
    assert "in flight, let finish: us-east-1" in message
    assert "not started: eu-west-1, ap-southeast-2, sa-east-1" in message
    assert "re-run the same command to finish them" in message
    assert "Traceback" not in stderr
    assert "us-east-1" in stdout and "published" in stdout  # the table of what finished
    recorded = json.loads(manifest.read_text())[NAME]
    assert sorted(recorded) == ["us-east-1"]
    assert sorted(p.name for p in out.iterdir()) == ["layers.json", "layers.md"]
    lambda_regions = {s.region for s in proxy.seen if s.service == "lambda"}
    assert lambda_regions == {"us-east-1"}  # nothing started after the interrupt

    proxy.state.latency = 0.0
    again = invoke(*args, env=env)

    assert again.returncode == 0, again.stderr
    assert sorted(json.loads(manifest.read_text())[NAME]) == sorted(regions)
    assert recorded["us-east-1"] == json.loads(manifest.read_text())[NAME]["us-east-1"]


def test_layers_list_takes_the_architecture_from_the_environment(
    aws: dict[str, str], moto: str
) -> None:
    """layers.list and layers.prune once named the x86_64 layer whatever $GDAL_LAMBDA_ARCH said."""
    env = {**aws, "GDAL_LAMBDA_ENDPOINT_URL": moto, "GDAL_LAMBDA_ARCH": "arm64"}
    scope = ("--gdal", "3.13", "--python", "3.12", "--regions", "us-east-1")

    listed = invoke("layers.list", *scope, env=env)
    pruned = invoke("layers.prune", *scope, env=env)

    assert listed.returncode == 0, listed.stderr
    assert f"latest versions of {NAME}-arm64" in listed.stdout
    assert pruned.returncode == 0, pruned.stderr
    assert f"prune {NAME}-arm64" in pruned.stdout


def test_the_manifest_location_comes_from_the_environment(
    aws: dict[str, str], moto: str, layer_zip: Path, tmp_path: Path
) -> None:
    manifest = tmp_path / "out" / "arns.json"
    env = {**aws, "GDAL_LAMBDA_ENDPOINT_URL": moto, "GDAL_LAMBDA_MANIFEST": str(manifest)}
    args = publish_args(layer_zip, manifest)
    at = args.index("--manifest")

    done = invoke(*args[:at], *args[at + 2 :], env=env)

    assert done.returncode == 0, done.stderr
    assert NAME in json.loads(manifest.read_text())
    assert manifest.with_suffix(".md").is_file()
