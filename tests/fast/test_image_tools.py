"""The image tests run nothing inside an image that Lambda's AL2023 images lack.

Lambda's provided:al2023 and python:3.x images are minimal: no find, which or file
(aws/aws-lambda-base-images #196 and #173; amazon-linux-2023 #355; scripts/packages/dnf-build.txt).
A check that runs one of them in a GDAL or layer image built FROM them fails on al2023 alone:
checks list files from the host (pyelftools, the engine's archive API) or in Python instead.
"""

from __future__ import annotations

import re

import pytest
from helpers import ROOT

MISSING = ("find", "which", "file")
# A command word at the start of a shell line or after a pipe, && or ;, or in an argv list.
_COMMAND = r"(?:^|[|;&(`\"']|\$\()\s*{tool}\s|\[\s*[\"']{tool}[\"']\s*,"


def offenders(text: str) -> list[str]:
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0] if line.lstrip().startswith("#") else line
        for tool in MISSING:
            if re.search(_COMMAND.format(tool=tool), code):
                found.append(f"{number}: {tool}: {line.strip()}")
    return found


@pytest.mark.parametrize(
    "path",
    sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").glob("*/*.py")),
)
def test_no_image_check_uses_a_tool_lambda_images_lack(path: str) -> None:
    if not path.startswith(("tests/image/", "tests/portability/")):
        pytest.skip("runs nothing inside an image")
    assert offenders((ROOT / path).read_text()) == []


def test_the_check_finds_each_tool() -> None:
    assert offenders('script = "find /opt -type f | wc -l"') != []
    assert offenders("ldd x | which gdalinfo") != []
    assert offenders('sh(cli, image, ["file", "/opt/lib/libgdal.so"])') != []
    assert offenders("out = sh(cli, image, 'gdalinfo --version')") == []
    assert offenders("# the find below is on the host") == []
