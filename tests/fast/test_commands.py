"""The library raises MissingImage / MissingZip; tasks.command_for spells the command to run."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from shipped import shipped_matrix

from gdal_lambda.errors import MissingImage, MissingZip
from gdal_lambda.variant import Variant

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tasks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gdal_lambda_tasks", ROOT / "tasks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _variant(**options: str) -> Variant:
    return Variant.resolve(shipped_matrix(), line="3.13", env={}, **options)


DEFAULT = _variant()
STANDIN = _variant(target="debian13", repository="mine")
OLDER = _variant(python="3.12", recipe="tiny")
ARM = _variant(arch="arm64", target="al2023")
ARM_FLOOR = _variant(arch="arm64", python="3.13")
CHECKED = _variant(target="al2023", python="3.12")


@pytest.mark.parametrize(
    ("variant", "kind", "command"),
    [
        (DEFAULT, "gdal", "invoke build.gdal --version 3.13"),
        (STANDIN, "gdal", "invoke build.gdal --version 3.13 --target debian13 --repository mine"),
        (DEFAULT, "python", "invoke build.python --gdal 3.13"),
        (OLDER, "python", "invoke build.python --gdal 3.13 --python 3.12"),
        (DEFAULT, "layer", "invoke build.layer --gdal 3.13"),
        (OLDER, "layer", "invoke build.layer --gdal 3.13 --python 3.12 --recipe tiny"),
        (
            STANDIN,
            "layer",
            "invoke build.layer --gdal 3.13 --target debian13 --repository mine",
        ),
        (STANDIN, "standin", "invoke build.standin --target debian13"),
        (STANDIN, "runtime", "invoke build.standin --target debian13"),
        (
            CHECKED,
            "runtime",
            "docker pull --platform linux/amd64 public.ecr.aws/lambda/python:3.12.2025.04.28.11",
        ),
        # The floor's runtime is the stand-in of its Python: build.standin names it.
        (OLDER, "runtime", "invoke build.standin --target debian11 --python 3.12"),
        (ARM, "gdal", "invoke build.gdal --version 3.13 --target al2023 --arch arm64"),
        (ARM, "layer-zip", "invoke layer --gdal 3.13 --target al2023 --arch arm64"),
        (
            ARM,
            "runtime",
            "docker pull --platform linux/arm64 public.ecr.aws/lambda/python:3.14.2025.12.11.15",
        ),
        (
            ARM_FLOOR,
            "standin",
            "invoke build.standin --target debian11 --python 3.13 --arch arm64",
        ),
        (ARM_FLOOR, "python", "invoke build.python --gdal 3.13 --python 3.13 --arch arm64"),
        (OLDER, "layer-zip", "invoke layer --gdal 3.13 --python 3.12 --recipe tiny"),
        (STANDIN, "layer-zip", "invoke layer --gdal 3.13 --target debian13 --repository mine"),
        (STANDIN, "package", "invoke package --src <folder> --gdal 3.13 --target debian13"),
    ],
)
def test_each_kind_yields_its_command(
    tasks: ModuleType, variant: Variant, kind: str, command: str
) -> None:
    error = (MissingZip if kind in {"layer-zip", "package"} else MissingImage)(variant, kind, "x")
    assert tasks.command_for(error) == command


def test_the_error_wrapper_spells_the_command(tasks: ModuleType) -> None:
    from invoke.exceptions import Exit

    @tasks.clean_errors
    def body() -> None:
        raise MissingImage(STANDIN, "python", "image mine:gdal3.13-py3.13-debian13")

    with pytest.raises(Exit) as raised:
        body()
    assert raised.value.message == (
        "error: image mine:gdal3.13-py3.13-debian13 does not exist: run `invoke build.python "
        "--gdal 3.13 --target debian13 --repository mine` first"
    )


def test_an_unknown_kind_is_a_bug_not_a_wrong_command(tasks: ModuleType) -> None:
    with pytest.raises(ValueError, match="no command makes a 'wheel'"):
        tasks.command_for(MissingImage(dataclasses.replace(DEFAULT), "wheel", "x"))
