"""What an image or a zip says of where it came from: one schema, written, checked and read here.

The GDAL image carries ``org.gdal-lambda.*`` labels (its line, target, architecture, and each
source's version and sha256); the Python and layer images carry them on; every zip holds a
manifest at :data:`MANIFEST` whose ``components`` are read from them.

    labels = provenance_labels(line, target, "x86_64", fetched)
    label_problems(labels, variant)      # [] when they agree with the matrix
    gdal_provenance(labels)              # {"gdal": {"version": ..., "sha256": ...}, ...}
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .sources import Fetched
    from .variant import Variant
    from .versions import Line, Target

LABEL_PREFIX = "org.gdal-lambda"
# Where a layer or package zip keeps its manifest, relative to the zip's root.
MANIFEST = "share/gdal-lambda/manifest.json"


def provenance_labels(
    line: Line, target: Target, arch: str, fetched: dict[str, Fetched]
) -> dict[str, str]:
    """``org.gdal-lambda.<library>.version`` / ``.sha256`` for every source the image holds."""
    out = {
        f"{LABEL_PREFIX}.line": line.name,
        f"{LABEL_PREFIX}.target": target.name,
        f"{LABEL_PREFIX}.arch": arch,
    }
    for name, item in fetched.items():
        out[f"{LABEL_PREFIX}.{name}.version"] = item.source.version
        out[f"{LABEL_PREFIX}.{name}.sha256"] = item.mirror.sha256
    return out


def carried(labels: dict[str, str]) -> dict[str, str]:
    """The provenance labels among an image's labels: what the images built on it carry on."""
    return {k: v for k, v in labels.items() if k.startswith(LABEL_PREFIX)}


def label_problems(actual: dict[str, str], variant: Variant) -> list[str]:
    """What in a GDAL image's labels disagrees with the variant (empty when all agree): the line,
    the target, the architecture, and for every source (stack, PROJ, GEOS, GDAL) its version and
    one of its mirrors' sha256."""
    matrix, line = variant.matrix, variant.line
    problems = [
        f"{key}={actual.get(key)!r}, matrix says {value!r}"
        for key, value in (
            (f"{LABEL_PREFIX}.line", line.name),
            (f"{LABEL_PREFIX}.target", variant.target.name),
            (f"{LABEL_PREFIX}.arch", variant.arch),
        )
        if actual.get(key) != value
    ]
    for name, source in matrix.components(line).items():
        key = f"{LABEL_PREFIX}.{name}"
        if actual.get(f"{key}.version") != source.version:
            problems.append(
                f"{key}.version={actual.get(key + '.version')!r}, matrix says {source.version!r}"
            )
        if actual.get(f"{key}.sha256") not in {m.sha256 for m in source.mirrors}:
            problems.append(f"{key}.sha256={actual.get(key + '.sha256')!r} is none of the matrix's")
    return problems


def gdal_provenance(labels: dict[str, str]) -> dict[str, dict[str, str]]:
    """library -> {version, sha256} for every source the GDAL image's labels name."""
    prefix = LABEL_PREFIX + "."
    out: dict[str, dict[str, str]] = {}
    for key, value in labels.items():
        if key.startswith(prefix) and key.endswith((".version", ".sha256")):
            name, _, field_name = key[len(prefix) :].rpartition(".")
            out.setdefault(name, {"version": "", "sha256": ""})[field_name] = value
    return dict(sorted(out.items()))
