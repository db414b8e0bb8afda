"""Layer zips: the layer image's /opt, assembled and checked (gdal_lambda.assembly), zipped.

result = build_layer_zip(variant)      # dist/gdal3.13-py3.13-geo.zip, size-reported
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import containers, locks, recipes, sbom
from .assembly import (
    Assembled,
    SizeReport,
    assemble,
    installed_distributions,
    print_report,
    write_manifest,
    zip_tree,
)
from .emulation import check_runnable
from .errors import Kind
from .fsutil import atomic_write_text
from .images import require
from .provenance import gdal_provenance
from .runtime import LAYER_ROOT
from .variant import Variant
from .versions import Target


@dataclass
class LayerResult:
    zip_path: Path
    report: SizeReport
    assembled: Assembled
    seconds: float


def build_layer_zip(
    variant: Variant,
    *,
    dist: Path | None = None,
    also_runs_on: Sequence[Target] = (),
) -> LayerResult:
    """Turn the layer image into dist/<stem>.zip, proven against the target's runtime.

    ``also_runs_on``: other targets whose Lambda policies the layer must meet too (each with
    its newest Python); the target's own always must."""
    start = time.monotonic()
    check_runnable(variant.architecture)
    cli = containers.client()
    ref = variant.layer_tag
    require(cli, variant, Kind.LAYER, ref)
    dest = variant.layer_zip(dist)
    others = [
        dataclasses.replace(variant, target=other, python=other.check_python(None))
        for other in also_runs_on
    ]
    with tempfile.TemporaryDirectory(prefix="gdal-lambda-layer.") as tmp:
        tree = Path(tmp) / "opt"
        # the pins of the recipe and of every recipe it extends (its `-r` lines name them)
        requirements = "".join(
            r.requirements.read_text(encoding="utf-8") for r in recipes.load(variant.recipe).chain()
        )
        assembled = assemble(
            cli,
            ref,
            LAYER_ROOT,
            tree,
            mount=LAYER_ROOT,
            runs_on=[variant, *others],
            requirements=requirements,
        )
        manifest = {
            "layer": variant.stem(),
            "recipe": variant.recipe,
            "target": variant.target.name,
            "arch": variant.arch,
            "also_runs_on": [other.name for other in also_runs_on],
            "python": variant.python,
            "line": variant.line.name,
            "components": gdal_provenance(containers.labels(cli, ref)),
            # version, file and sha256 of each (pip's --report, see gdal_lambda.locks)
            "python_packages": locks.python_packages(
                installed_distributions(tree / "python"), locks.image_reports(cli, ref)
            ),
            "bundled_libraries": assembled.bundled,
            # left to Lambda's python runtime (/var/runtime): name -> the version it carries
            "runtime_provided": assembled.runtime_provided,
            "runtime_symbol_versions": assembled.highest,
            "satisfies_policies": assembled.satisfies,
        }
        write_manifest(tree, manifest)
        # The bill of materials, from the same facts as the manifest, inside the zip and beside it.
        bill = sbom.sbom_json(
            tree,
            manifest,
            variant.matrix,
            name=variant.stem(),
            created=containers.created(cli, ref),
        )
        sbom.write_sbom(tree, bill)
        report = zip_tree(tree, dest, f"layer {dest.name}")
        atomic_write_text(sbom.beside(dest), bill)
    print_report(report, f"{dest.name}")
    return LayerResult(dest, report, assembled, time.monotonic() - start)
