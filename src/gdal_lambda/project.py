"""Where the checkout is: the folder holding ``matrix.toml`` and ``pyproject.toml``.

The package reads its data (the matrix, Dockerfiles, scripts, layer recipes) from a checkout,
not from its own install location: ``$GDAL_LAMBDA_ROOT`` names it, else the current directory or
the nearest parent that holds both files is the checkout.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .errors import GdalLambdaError

ENV_ROOT = "GDAL_LAMBDA_ROOT"
MARKERS = ("matrix.toml", "pyproject.toml")


def _is_checkout(folder: Path) -> bool:
    return all((folder / name).is_file() for name in MARKERS)


def project_root(env: Mapping[str, str] | None = None, start: Path | None = None) -> Path:
    """The checkout's root folder, or one GdalLambdaError saying how to name it."""
    env = os.environ if env is None else env
    explicit = env.get(ENV_ROOT)
    if explicit:
        folder = Path(explicit).resolve()
        if not _is_checkout(folder):
            raise GdalLambdaError(
                f"{ENV_ROOT}={explicit} is not a gdal-lambda checkout (it lacks "
                f"{' or '.join(MARKERS)}): point it at the folder that holds matrix.toml"
            )
        return folder
    here = (start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if _is_checkout(folder):
            return folder
    raise GdalLambdaError(
        f"not in a gdal-lambda checkout: neither {here} nor any parent holds "
        f"{' and '.join(MARKERS)}; run from the checkout or set {ENV_ROOT}"
    )
