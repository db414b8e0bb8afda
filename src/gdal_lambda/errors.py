"""The exception types users see: a message that says what was wrong and what to do.

The library never spells a command line: an artifact that is missing is raised as
:class:`MissingImage` or :class:`MissingZip`, carrying the variant and the kind of artifact, and
``tasks.py`` (the one place that knows how commands are spelled) turns it into the command to run.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .variant import Variant


class GdalLambdaError(Exception):
    """A failure caused by input or environment, reported as one clear line (no traceback)."""


class Kind(enum.StrEnum):
    """What is missing, by the step that makes it: ``tasks.command_for`` has a command for each."""

    STANDIN = "standin"  # a stand-in base image (invoke build.standin)
    GDAL = "gdal"  # the GDAL image
    PYTHON = "python"  # the Python image
    LAYER = "layer"  # the layer image
    LAYER_ZIP = "layer-zip"  # a layer zip in dist/
    PACKAGE = "package"  # a function package zip
    RUNTIME = "runtime"  # the clean runtime image (a stand-in, or pulled)


class MissingArtifact(GdalLambdaError):
    """Something a step needs has not been built yet.

    ``kind`` says which step makes it (:class:`Kind`). ``what`` is the image reference or file
    path.
    """

    def __init__(self, variant: Variant, kind: Kind, what: str) -> None:
        self.variant = variant
        self.kind = kind
        self.what = what
        super().__init__(f"{what} does not exist")


class UnpullableBase(GdalLambdaError):
    """A registry target's base image is not here and cannot be pulled (no route to its
    registry): ``kind`` is the step that needed it, ``image`` the reference, ``reason`` the
    engine's first line."""

    def __init__(self, variant: Variant, kind: Kind, image: str, reason: str) -> None:
        self.variant = variant
        self.kind = kind
        self.image = image
        self.reason = reason
        target = variant.target.name
        super().__init__(f"the {target} base image {image} cannot be pulled ({reason})")


class MissingImage(MissingArtifact):
    """A local Docker image a step needs does not exist."""


class MissingZip(MissingArtifact):
    """A zip a step needs does not exist."""
