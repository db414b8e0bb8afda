"""`invoke image`, `invoke run --image` and `invoke push --image`: bad input is one line, before
any build, container or push (the images themselves are built and run in tests/image)."""

from __future__ import annotations

import shutil

import pytest
from helpers import invoke, one_error_line

from gdal_lambda import function_image
from gdal_lambda.errors import GdalLambdaError

needs_docker = pytest.mark.skipif(shutil.which("docker") is None, reason="no docker client")


@needs_docker
def test_running_an_image_that_does_not_exist() -> None:
    result = invoke(
        "run", "--image", "gdal-lambda-fn:nowhere-1", "--event", "examples/package/event.json"
    )
    assert one_error_line(result) == (
        "error: image gdal-lambda-fn:nowhere-1 does not exist: build it with "
        "`invoke image --src <folder> --gdal <line>`"
    )


@needs_docker
def test_pushing_an_image_that_does_not_exist() -> None:
    result = invoke("push", "--image", "gdal-lambda-fn:nowhere-1", "--registry", "127.0.0.1:9/acme")
    assert one_error_line(result).startswith("error: image gdal-lambda-fn:nowhere-1 does not")


def test_package_and_image_together_are_refused() -> None:
    result = invoke(
        "run", "--image", "x:1", "--package", "dist/p.zip", "--event", "examples/package/event.json"
    )
    assert one_error_line(result) == "error: give --package or --image, not both"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("--src", "examples/nowhere"), "error: source folder examples/nowhere does not exist"),
        (
            ("--src", "examples/package", "--handler", "handler"),
            "error: handler 'handler' is not of the form module.function",
        ),
    ],
)
def test_bad_source_or_handler(args: tuple[str, ...], line: str) -> None:
    assert one_error_line(invoke("image", "--gdal", "3.13", *args)) == line


def test_the_ten_gigabyte_limit() -> None:
    function_image.check_size(10 * 1024**3, "image x")
    with pytest.raises(GdalLambdaError, match=r"^image x is 10240\.0 MiB uncompressed, over"):
        function_image.check_size(10 * 1024**3 + 1, "image x")
