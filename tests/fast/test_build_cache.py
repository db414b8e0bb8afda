"""Docker layers across machines: GDAL_LAMBDA_CACHE_FROM, the tagged compile stage, and what a
release job saves (the restore-and-reuse itself runs on a real engine: tests/image)."""

from __future__ import annotations

import pytest
from helpers import make_variant

from gdal_lambda import images
from gdal_lambda.errors import GdalLambdaError
from gdal_lambda.variant import Variant


def _variant(env: dict[str, str] | None = None, **options: str) -> Variant:
    return make_variant(env=env, **options)


def test_off_by_default_so_local_builds_keep_dockers_whole_cache() -> None:
    variant = _variant()
    assert variant.cache_from is False
    assert images.cache_sources(variant, variant.gdal_tag) == ()


@pytest.mark.parametrize("value", ["", "0"])
def test_zero_or_empty_is_off(value: str) -> None:
    assert _variant({"GDAL_LAMBDA_CACHE_FROM": value}).cache_from is False


def test_on_each_build_names_its_own_tags() -> None:
    variant = _variant({"GDAL_LAMBDA_CACHE_FROM": "1"}, arch="arm64", target="debian11")
    assert variant.cache_from is True
    assert images.cache_sources(variant, variant.stages_tag, variant.gdal_tag) == (
        "gdal-lambda:gdal3.13-arm64-stages",
        "gdal-lambda:gdal3.13-arm64",
    )


def test_the_compile_stage_is_named_after_the_gdal_image() -> None:
    assert _variant().stages_tag == "gdal-lambda:gdal3.13-stages"
    assert _variant(repository="me/gl").stages_tag == "me/gl:gdal3.13-stages"


def test_stand_in_bases_are_saved_and_registry_bases_are_not() -> None:
    assert _variant(target="al2023").standin_bases == ()
    assert _variant(target="al2023").standin_python_bases == ()
    assert _variant(target="debian11").standin_bases == ("gdal-lambda-standin:debian11",)
    assert _variant(target="debian11", arch="arm64").standin_bases == (
        "gdal-lambda-standin:debian11-arm64",
    )
    # The floor's Python stand-ins go with their Python's images, not with the line's GDAL.
    assert _variant(target="debian11", python="3.12").standin_python_bases == (
        "gdal-lambda-standin:debian11-py3.12",
    )
    # A stand-in whose Python is Debian's is its own GDAL base.
    assert _variant(target="debian13").standin_python_bases == ()


def test_any_other_value_is_one_line() -> None:
    with pytest.raises(GdalLambdaError, match=r"GDAL_LAMBDA_CACHE_FROM='yes'.*1.*0"):
        _variant({"GDAL_LAMBDA_CACHE_FROM": "yes"})
