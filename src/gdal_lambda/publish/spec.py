"""What to publish: the layer's names, text, runtimes and zip, checked against Lambda's limits.

    layer = layer_spec(variant)          # names from the variant, zip in dist/: checked, no call

Everything here is checked before the first request: moto (and a typo) would accept most of it.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from .. import sbom
from ..errors import GdalLambdaError, Kind, MissingZip
from ..limits import (
    LAMBDA_UNZIPPED_LIMIT,
    MAX_DESCRIPTION,
    MAX_LICENSE,
    MAX_NAME,
    MAX_RUNTIMES,
    fmt_mib,
)
from ..provenance import MANIFEST
from ..variant import Variant
from .aws import new_session

SBOM = sbom.SBOM.as_posix()

# LicenseInfo for a zip without a bill of materials (not made by `invoke layer`): SPDX's own
# word for "nothing is asserted", rather than a guess.
NO_SBOM_LICENSE = "NOASSERTION"

NAME = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class ZipFacts:
    sha256: str
    size: int  # zipped bytes
    unzipped: int  # sum of ZipInfo.file_size


@dataclass(frozen=True)
class Layer:
    name: str
    zip_path: Path
    description: str  # without the sha256 marker: fingerprint() appends it
    license: str
    runtimes: tuple[str, ...]
    architectures: tuple[str, ...]
    variant: Variant | None = None  # what makes zip_path, for the "missing zip" error
    # e_machine of each architecture's ELF files (EM_AARCH64...): a zip's binaries must match
    elf_machines: tuple[str, ...] = ()

    def full_description(self, sha256: str) -> str:
        return f"{self.description} sha256:{sha256}".strip()


@functools.cache
def _lambda_enum(shape: str) -> tuple[str, ...]:
    """The values Lambda's API accepts for an enum shape (Runtime, Architecture), from botocore's
    service model: the same list the real service validates against."""
    model = new_session()._session.get_service_model("lambda")
    return tuple(model.shape_for(shape).enum)


def _runtimes_known() -> frozenset[str]:
    return frozenset(_lambda_enum("Runtime"))


def layer_spec(
    variant: Variant,
    *,
    zip_path: Path | str | None = None,
    description: str | None = None,
    license: str | None = None,
    runtimes: Sequence[str] = (),
    name: str | None = None,
    dist: Path | None = None,
) -> Layer:
    """The layer to publish for ``variant``, every field checked.

    The zip is ``variant.layer_zip(dist)`` unless ``zip_path`` overrides it; a missing one
    raises :class:`MissingZip`. ``license`` None: the SPDX expression of what the zip holds,
    read from its SBOM (:func:`zip_licence`). Raises GdalLambdaError on the first problem;
    calls nothing.
    """
    v = variant
    path = Path(zip_path) if zip_path else v.layer_zip(dist)
    if license is None:
        license = zip_licence(path) if path.is_file() else NO_SBOM_LICENSE
    layer = Layer(
        name=name or v.layer_name,
        zip_path=path,
        description=description
        if description is not None
        else f"GDAL {v.line.name} for Python {v.python} ({v.recipe}, {v.arch}), gdal-lambda",
        license=license,
        runtimes=tuple(runtimes) or (f"python{v.python}",),
        architectures=(v.arch,),
        variant=None if zip_path else v,
        elf_machines=(v.architecture.elf_machine,),
    )
    check_layer(layer)
    return layer


def zip_licence(path: Path) -> str:
    """LicenseInfo for a zip: the SPDX expression of its contents from its SBOM
    (share/gdal-lambda/sbom.cdx.json), or NOASSERTION for a zip that carries none."""
    try:
        with zipfile.ZipFile(path) as archive:
            if SBOM not in archive.namelist():
                return NO_SBOM_LICENSE
            text = archive.read(SBOM).decode("utf-8")
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError):
        return NO_SBOM_LICENSE  # check_layer says what is wrong with the zip
    expression = sbom.licence_info(text)
    if len(expression) > MAX_LICENSE:
        raise GdalLambdaError(
            f"the SPDX expression of {path.name}'s contents is {len(expression)} characters, over "
            f"Lambda's {MAX_LICENSE} for LicenseInfo: give a shorter one with --license"
        )
    return expression or NO_SBOM_LICENSE


def check_layer(layer: Layer) -> ZipFacts:
    """Lambda's limits, enforced here because moto (and a typo) would accept them."""
    if not NAME.match(layer.name):
        raise GdalLambdaError(
            f"layer name {layer.name!r} is not valid: use only letters, digits, '-' and '_'"
        )
    if len(layer.name) > MAX_NAME:
        raise GdalLambdaError(
            f"layer name {layer.name[:40]}... is {len(layer.name)} characters; "
            f"Lambda allows at most {MAX_NAME}"
        )
    described = layer.full_description("0" * 64)
    if len(described) > MAX_DESCRIPTION:
        room = MAX_DESCRIPTION - len(described) + len(layer.description)
        raise GdalLambdaError(
            f"layer description is {len(described)} characters with its sha256 marker; Lambda "
            f"allows {MAX_DESCRIPTION}: shorten --description to at most {max(room, 0)}"
        )
    if len(layer.license) > MAX_LICENSE:
        raise GdalLambdaError(
            f"licence text is {len(layer.license)} characters; Lambda allows at most {MAX_LICENSE}"
        )
    if len(layer.runtimes) > MAX_RUNTIMES:
        raise GdalLambdaError(
            f"{len(layer.runtimes)} compatible runtimes given; Lambda allows at most {MAX_RUNTIMES}"
        )
    known = _runtimes_known()
    for runtime in layer.runtimes:
        if runtime not in known:
            close = difflib.get_close_matches(runtime, sorted(known), n=3)
            also = f" (did you mean {', '.join(close)}?)" if close else ""
            raise GdalLambdaError(f"unknown Lambda runtime {runtime!r}{also}")
    lambda_archs = _lambda_enum("Architecture")
    for arch in layer.architectures:
        if arch not in lambda_archs:
            raise GdalLambdaError(
                f"unknown architecture {arch!r}: Lambda layers are {' or '.join(lambda_archs)}"
            )
    facts = zip_facts(layer)
    check_zip_architecture(layer)
    return facts


def check_zip_architecture(layer: Layer) -> None:
    """Refuse a zip built for another architecture than the layer's name and
    CompatibleArchitectures say: its manifest (share/gdal-lambda/manifest.json) names the
    architecture it was built and checked for, and its ELF files carry their e_machine."""
    wanted = ", ".join(layer.architectures)
    try:
        with zipfile.ZipFile(layer.zip_path) as archive:
            names = sorted(archive.namelist())
            manifest = json.loads(archive.read(MANIFEST)) if MANIFEST in names else {}
            machine = _first_elf_machine(archive, names) if layer.elf_machines else None
    except (zipfile.BadZipFile, OSError, ValueError, ELFError) as exc:
        raise GdalLambdaError(f"{layer.zip_path} is not a readable layer zip ({exc})") from None
    built_for = manifest.get("arch")
    if built_for is not None and built_for not in layer.architectures:
        raise GdalLambdaError(
            f"{layer.zip_path} was built for {built_for}, but layer {layer.name} is published "
            f"for {wanted}: publish it with --arch {built_for} (the layer name then ends in "
            f"-{built_for}), or build the zip for the architecture you meant"
        )
    if machine is not None and machine not in layer.elf_machines:
        raise GdalLambdaError(
            f"{layer.zip_path} holds {machine} binaries, but layer {layer.name} is published for "
            f"{wanted} ({', '.join(layer.elf_machines)}): publish it with the --arch it was "
            "built for"
        )


def _first_elf_machine(archive: zipfile.ZipFile, names: list[str]) -> str | None:
    """e_machine (EM_X86_64...) of the first ELF file under bin/ or lib/, read by pyelftools."""
    for name in names:
        if not name.startswith(("bin/", "lib/")) or name.endswith("/"):
            continue
        with archive.open(name) as handle:
            if handle.read(4) != b"\x7fELF":
                continue
            handle.seek(0)
            return str(ELFFile(handle)["e_machine"])
    return None


def zip_facts(layer: Layer) -> ZipFacts:
    path = layer.zip_path
    if not path.is_file():
        if layer.variant is not None:
            raise MissingZip(layer.variant, Kind.LAYER_ZIP, str(path))
        raise GdalLambdaError(f"layer zip {path} does not exist")
    try:
        with zipfile.ZipFile(path) as archive:
            unzipped = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise GdalLambdaError(f"{path} is not a readable zip file ({exc})") from None
    if unzipped > LAMBDA_UNZIPPED_LIMIT:
        raise GdalLambdaError(
            f"{path} unzips to {fmt_mib(unzipped)}; Lambda allows at most "
            f"{fmt_mib(LAMBDA_UNZIPPED_LIMIT, 0)} for a function and its layers together"
        )
    with path.open("rb") as handle:
        sha256 = hashlib.file_digest(handle, "sha256").hexdigest()
    return ZipFacts(sha256=sha256, size=path.stat().st_size, unzipped=unzipped)
