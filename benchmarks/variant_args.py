"""The options every benchmark takes (--gdal, --target, --python, --arch), resolved once into a
Variant the way the tasks resolve theirs: an option, then the environment, then the matrix."""

from __future__ import annotations

import argparse
import os
import sys

from gdal_lambda import versions
from gdal_lambda.variant import Variant


def parse(parser: argparse.ArgumentParser | None = None) -> tuple[argparse.Namespace, Variant]:
    """Parse the command line (``parser`` may add options of its own) and resolve the variant;
    figures are printed line by line, as they are measured."""
    parser = parser or argparse.ArgumentParser()
    parser.add_argument("--gdal", default="3.13")
    parser.add_argument("--target", default=None)
    parser.add_argument("--python", default=None)
    parser.add_argument("--arch", default=None)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    variant = Variant.resolve(
        versions.load_matrix(env=os.environ),
        line=args.gdal,
        target=args.target,
        python=args.python,
        arch=args.arch,
        env=os.environ,
    )
    return args, variant
