"""Targets: real AWS base images are pinned, stand-ins are local."""

from __future__ import annotations

import re

from gdal_lambda import versions

DATED = re.compile(r":(al2023|\d+\.\d+)\.\d{4}\.\d{2}\.\d{2}\.\d{2}(@sha256:[0-9a-f]{64})?$")


def test_aws_base_images_are_pinned_to_dated_tags() -> None:
    matrix = versions.load_matrix()
    for target in matrix.targets.values():
        if target.is_standin:
            continue
        images = [target.gdal_base]
        for python in target.pythons:
            images += [target.python_image(python), target.runtime_image(python)]
        for image in images:
            assert DATED.search(image), f"{target.name}: {image} is a moving tag"
        for python in target.pythons:
            assert f":{python}." in target.python_image(python)


def test_a_tag_pinned_by_its_digest_is_pulled_by_the_digest() -> None:
    from gdal_lambda.images import pull_reference

    digest = "sha256:" + "7" * 64
    assert pull_reference(f"public.ecr.aws/lambda/provided:al2023.2025.12.08.23@{digest}") == (
        "public.ecr.aws/lambda/provided",
        digest,
    )
    assert pull_reference(f"127.0.0.1:5000/debian@{digest}") == ("127.0.0.1:5000/debian", digest)
    assert pull_reference("public.ecr.aws/lambda/python:3.12.2025.04.28.11") == (
        "public.ecr.aws/lambda/python",
        "3.12.2025.04.28.11",
    )
