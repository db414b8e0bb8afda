"""Print the requirements a layer companion's install left unmet (run by stage-package.sh).

usage: python3 unmet-requirements.py REQUIREMENTS USER_SITE LAYER_SITE

pip resolves a companion against the layer on PYTHONPATH, but it also counts what the build
image's own interpreter has in its site-packages (the build tools: packaging, setuptools...),
none of which the function sees on Lambda. Printed: each requirement of the function's
requirements file, and of every distribution installed in USER_SITE, that names a distribution
neither USER_SITE nor LAYER_SITE holds (a version the layer's copy misses is the conflict check's
business, not this one's). Markers are evaluated by this interpreter, the target's own.
"""

import importlib.metadata
import sys
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name


def main(requirements: str, user_site: str, layer_site: str) -> None:
    have = {
        canonicalize_name(d.metadata["Name"])
        for d in importlib.metadata.distributions(path=[user_site, layer_site])
    }
    asked = [line.split("#", 1)[0].strip() for line in Path(requirements).read_text().splitlines()]
    asked = [text for text in asked if text and not text.startswith("-")]
    for dist in importlib.metadata.distributions(path=[user_site]):
        asked += dist.requires or []
    printed = set()
    for text in asked:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if req.url or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        name = canonicalize_name(req.name)
        if name not in have and name not in printed:
            printed.add(name)
            req.marker = None
            print(req)


if __name__ == "__main__":
    main(*sys.argv[1:4])
