"""Targets: real AWS base images are pinned, stand-ins are local."""

from __future__ import annotations

import re

from gdal_lambda import versions

DATED = re.compile(r":(al2023|\d+\.\d+)\.\d{4}\.\d{2}\.\d{2}\.\d{2}$")


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
