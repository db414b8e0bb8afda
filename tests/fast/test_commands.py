"""The library raises MissingImage / MissingZip; tasks.command_for spells the command to run."""

from __future__ import annotations

import dataclasses
import importlib.util
from types import ModuleType

import docker.errors
import pytest
from helpers import ROOT, make_variant

from gdal_lambda import images, runtime
from gdal_lambda.errors import Kind, MissingImage, MissingZip
from gdal_lambda.variant import Variant


@pytest.fixture(scope="module")
def tasks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gdal_lambda_tasks", ROOT / "tasks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DEFAULT = make_variant()
STANDIN = make_variant(target="debian13", repository="mine")
OLDER = make_variant(python="3.12", recipe="tiny")
ARM = make_variant(arch="arm64", target="al2023")
ARM_FLOOR = make_variant(arch="arm64", python="3.13")
CHECKED = make_variant(target="al2023", python="3.12")


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


@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_has_its_command(tasks: ModuleType, kind: Kind) -> None:
    for variant in (DEFAULT, STANDIN, CHECKED, ARM):
        command = tasks.command_for(MissingImage(variant, kind, "x"))
        assert command.startswith(("invoke ", "docker pull ")), command


class _NoImages:
    """A docker client that has no image at all (containers.create does not pull)."""

    class images:  # the docker SDK's attribute names
        @staticmethod
        def get(ref: str) -> None:
            raise docker.errors.ImageNotFound(f"No such image: {ref}")

    class containers:
        @staticmethod
        def create(ref: str, *args: object, **kwargs: object) -> None:
            raise docker.errors.ImageNotFound(f"No such image: {ref}")


def test_a_missing_runtime_image_names_the_step_that_makes_it(tasks: ModuleType) -> None:
    from invoke.exceptions import Exit

    @tasks.clean_errors
    def body() -> None:
        runtime.run_clean(_NoImages(), CHECKED, ["true"])  # type: ignore[arg-type]

    with pytest.raises(Exit) as raised:
        body()
    assert raised.value.message == (
        f"error: image {CHECKED.runtime_image} does not exist: run `docker pull --platform "
        f"linux/amd64 {CHECKED.runtime_image}` first"
    )


class _Offline(_NoImages):
    """No image here, and no route to any registry (what the engine says then)."""

    class images:
        @staticmethod
        def get(ref: str) -> None:
            raise docker.errors.ImageNotFound(f"No such image: {ref}")

        @staticmethod
        def pull(repository: str, tag: str | None = None, **kwargs: object) -> None:
            raise docker.errors.APIError(
                "500 Server Error",
                explanation='Get "https://public.ecr.aws/v2/": dial tcp: lookup public.ecr.aws '
                "on 127.0.0.53:53: no such host\nmore",
            )


@pytest.mark.parametrize(
    ("variant", "step", "command"),
    [
        (make_variant(target="al2023"), Kind.GDAL, "invoke build.gdal --version 3.13"),
        (CHECKED, Kind.PYTHON, "invoke build.python --gdal 3.13 --python 3.12"),
    ],
)
def test_an_al2023_base_out_of_reach_is_one_line_naming_the_floor(
    tasks: ModuleType, variant: Variant, step: Kind, command: str
) -> None:
    """Once Step 4 of the docker build failed with the engine's `no such host`."""
    from invoke.exceptions import Exit

    base = variant.gdal_base if step is Kind.GDAL else variant.python_base

    @tasks.clean_errors
    def body() -> None:
        images._ensure_base(_Offline(), variant, base, step)  # type: ignore[arg-type]

    with pytest.raises(Exit) as raised:
        body()
    assert raised.value.message == (
        f"error: the al2023 base image {base} cannot be pulled (Get "
        '"https://public.ecr.aws/v2/": dial tcp: lookup public.ecr.aws on 127.0.0.53:53: no such '
        f"host); build on the floor (debian11, the default target) instead: `{command}`"
    )
