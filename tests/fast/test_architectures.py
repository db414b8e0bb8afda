"""--arch: one value threaded through names, images, library paths, build plans and emulation."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from helpers import ROOT, invoke, make_variant, one_error_line, shipped_matrix

from gdal_lambda import emulation, images
from gdal_lambda.errors import GdalLambdaError
from gdal_lambda.variant import Variant

MATRIX = shipped_matrix()


def test_arm64_names_carry_the_suffix_and_x86_64_names_do_not() -> None:
    arm, x86 = make_variant(arch="arm64"), make_variant()
    assert arm.gdal_tag == "gdal-lambda:gdal3.13-arm64"
    assert arm.layer_tag == "gdal-lambda:gdal3.13-py3.14-geo-arm64"
    assert arm.layer_zip().name == "gdal3.13-py3.14-geo-arm64.zip"
    assert arm.layer_name == "gdal313-py314-geo-arm64"
    assert (x86.gdal_tag, x86.layer_zip().name) == (
        "gdal-lambda:gdal3.13",
        "gdal3.13-py3.14-geo.zip",
    )
    # The default target is the floor: al2023's names carry its name.
    checked = make_variant(arch="arm64", target="al2023")
    assert checked.layer_zip().name == "gdal3.13-py3.14-geo-al2023-arm64.zip"
    assert checked.gdal_tag == "gdal-lambda:gdal3.13-al2023-arm64"


def test_registry_bases_keep_their_name_and_stand_ins_get_one_per_architecture() -> None:
    arm, x86 = make_variant(arch="arm64", target="al2023"), make_variant(target="al2023")
    assert arm.gdal_base == x86.gdal_base  # one multi-architecture name, pulled per platform
    assert (arm.platform, x86.platform) == ("linux/arm64", "linux/amd64")
    floor = make_variant(arch="arm64", python="3.13")
    assert floor.gdal_base == "gdal-lambda-standin:debian11-arm64"
    assert floor.runtime_image == floor.python_base == "gdal-lambda-standin:debian11-py3.13-arm64"
    assert make_variant().gdal_base == "gdal-lambda-standin:debian11"
    assert make_variant(python="3.12").python_base == "gdal-lambda-standin:debian11-py3.12"


def test_no_library_path_names_another_architecture() -> None:
    for target in MATRIX.targets:
        for arch, other in (("x86_64", "aarch64"), ("arm64", "x86_64")):
            path = make_variant(target=target, arch=arch).ld_library_path
            assert not [d for d in path if other in d or "{" in d], (target, arch, path)
            assert path[-1] == "/opt/lib"
    assert "/lib/aarch64-linux-gnu" in make_variant(target="debian11", arch="arm64").ld_library_path


def test_the_environment_picks_the_architecture_and_an_option_beats_it() -> None:
    env = {"GDAL_LAMBDA_ARCH": "arm64", "GDAL_LAMBDA_PYTHON": "3.12"}
    picked = Variant.resolve(MATRIX, line="3.13", env=env)
    assert (picked.arch, picked.python) == ("arm64", "3.12")
    assert Variant.resolve(MATRIX, line="3.13", env=env, arch="x86_64").arch == "x86_64"


def test_build_plans() -> None:
    floor_arm = make_variant(target="debian11", arch="arm64")
    cross = images.build_plan(floor_arm, host="x86_64")
    assert (cross.cross, cross.build_image, cross.build_platform, cross.emulated) == (
        "aarch64-linux-gnu",
        "gdal-lambda-standin:debian11",
        "linux/amd64",
        False,
    )
    native = images.build_plan(floor_arm, host="arm64")
    assert (native.cross, native.build_image, native.emulated) == (
        "",
        "gdal-lambda-standin:debian11-arm64",
        False,
    )
    # al2023 has no cross toolchain: its arm64 image compiles under emulation on x86_64
    emulated = images.build_plan(make_variant(arch="arm64", target="al2023"), host="x86_64")
    assert (emulated.cross, emulated.build_platform, emulated.emulated) == ("", "linux/arm64", True)
    assert not images.build_plan(make_variant(), host="x86_64").emulated


def test_emulation_check(tmp_path: Path) -> None:
    arm64 = MATRIX.architecture("arm64")
    emulation.check_runnable(arm64, host="arm64", binfmt=tmp_path)  # native: nothing needed
    with pytest.raises(GdalLambdaError) as err:
        emulation.check_runnable(arm64, host="x86_64", binfmt=tmp_path)
    message = str(err.value)
    assert "no qemu-aarch64 is registered" in message
    assert "mount -t binfmt_misc binfmt_misc" in message
    assert "apt-get install qemu-user-static" in message
    (tmp_path / "qemu-aarch64").write_text("disabled\n")
    with pytest.raises(GdalLambdaError):
        emulation.check_runnable(arm64, host="x86_64", binfmt=tmp_path)
    (tmp_path / "qemu-aarch64").write_text("enabled\ninterpreter /usr/libexec/qemu-binfmt/x\n")
    emulation.check_runnable(arm64, host="x86_64", binfmt=tmp_path)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    "task",
    [
        ["build.gdal", "--version", "3.13"],
        ["build.python", "--gdal", "3.13"],
        ["layer", "--gdal", "3.13"],
        ["publish", "--gdal", "3.13", "--dry-run"],
        ["build.standin", "--target", "debian11"],
        # these once asked AWS for credentials first, and never checked --arch
        ["layers.list"],
        ["layers.prune"],
    ],
)
def test_an_unknown_architecture_is_one_line_naming_the_known_ones(task: list[str]) -> None:
    # never AWS itself: a closed local port, whatever a task asks
    result = invoke(
        *task, "--arch", "s390x", env={"GDAL_LAMBDA_ENDPOINT_URL": "http://127.0.0.1:9"}
    )
    assert (
        one_error_line(result)
        == "error: unknown architecture 's390x': known ones are x86_64, arm64"
    )


@pytest.mark.skipif(
    os.uname().machine != "x86_64" or not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists(),
    reason="needs an x86_64 host with arm64 emulation registered (.ci/run registers it)",
)
def test_enable_emulation_is_idempotent() -> None:
    result = _run("bash", "scripts/enable-emulation.sh", MATRIX.architecture("arm64").qemu)
    assert result.returncode == 0, result
    assert "already registered" in result.stdout


def test_arm64_work_without_emulation_stops_before_any_container(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No qemu-aarch64 and an x86_64 host: layer, package and run each say the fix in one line."""
    from gdal_lambda import layer, package, runtime

    monkeypatch.setattr(emulation, "BINFMT", tmp_path)
    monkeypatch.setattr(emulation, "host_architecture", lambda: "x86_64")
    arm = make_variant(target="debian11", arch="arm64")
    calls = [
        lambda: layer.build_layer_zip(arm, dist=tmp_path),
        lambda: package.build_package(arm, ROOT / "examples" / "package", out=tmp_path / "p.zip"),
        lambda: runtime.run_clean(None, arm, ["true"]),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(GdalLambdaError, match="arm64 containers cannot run on this x86_64"):
            call()
    assert list(tmp_path.iterdir()) == []
