"""The software bill of materials of a layer or full package: CycloneDX 1.6 JSON, written with
cyclonedx-python-lib and validated with its own schema validator.

    text = sbom_json(tree, manifest, matrix)     # from the same facts as the manifest
    write_sbom(tree, text)                       # share/gdal-lambda/sbom.cdx.json
    licence_info(text)                           # "0BSD AND Apache-2.0 AND ..." for publishing
    problems = check_licences(tree, text)        # every lib/ file and distribution covered

Native components come from the manifest's provenance (each source's version and the sha256 of
the tarball it was built from) and matrix.toml (its SPDX licence, its URLs, the library names it
provides); each lists the files of ``lib/`` that are its own (grafted names included). Python
distributions come from the manifest's ``python_packages`` (version, the file pip installed, its
sha256) and their own metadata (``License-Expression``, else ``License``, else the classifiers).
Dependencies are read from the ELF files: whose library each file's DT_NEEDED entries name.
"""

from __future__ import annotations

import email.parser
import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cyclonedx.contrib.hash.factories import HashTypeFactory
from cyclonedx.model import ExternalReference, ExternalReferenceType, Property, XsUri
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL
from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression

from .assembly import installed_distributions
from .elf import iter_elf
from .errors import GdalLambdaError
from .fsutil import atomic_write_text
from .licences import LICENSES_DIR
from .versions import Matrix, Source

SBOM = Path("share/gdal-lambda/sbom.cdx.json")
PROPERTY = "gdal-lambda:file"  # a lib/ file of a native component
LICENCE_PROPERTY = "gdal-lambda:licence-file"  # one of its licence texts in the tree
_GRAFTED = re.compile(r"-[0-9a-f]{8}$")
_HASHES = HashTypeFactory()
# Classifiers that name one SPDX licence (a distribution without License-Expression).
_CLASSIFIERS = {
    "License :: OSI Approved :: MIT License": "MIT",
    "License :: OSI Approved :: Apache Software License": "Apache-2.0",
    "License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "License :: OSI Approved :: Python Software Foundation License": "PSF-2.0",
    "License :: OSI Approved :: ISC License (ISCL)": "ISC",
}


def library_stem(filename: str) -> str:
    """``libsqlite3-1a2b3c4d.so.0`` and ``libsqlite3.so.0.8.6`` -> ``libsqlite3``."""
    return _GRAFTED.sub("", filename.split(".so", 1)[0])


def _spdx(text: str | None) -> str | None:
    if not text or not text.strip():
        return None
    try:
        return str(canonicalize_license_expression(text.strip()))
    except InvalidLicenseExpression:
        return None


def distribution_licence(metadata: str) -> tuple[str | None, str | None]:
    """(SPDX expression, or a licence name where none parses) of a distribution's METADATA."""
    headers = email.parser.HeaderParser().parsestr(metadata)
    expression = _spdx(headers.get("License-Expression"))
    if expression:
        return expression, None
    declared = (headers.get("License") or "").strip()
    if _spdx(declared):
        return _spdx(declared), None
    classifiers = headers.get_all("Classifier") or []
    named = sorted({_CLASSIFIERS[c] for c in classifiers if c in _CLASSIFIERS})
    if named:
        return " AND ".join(named), None
    first = declared.splitlines()[0].strip() if declared else ""
    licence_classifiers = [c for c in classifiers if c.startswith("License ::")]
    fallback = licence_classifiers[0].rsplit(" :: ", 1)[-1] if licence_classifiers else None
    return None, first[:200] or fallback


def _find_source(matrix: Matrix, name: str, version: str) -> Source | None:
    found = [s for s in [*matrix.stack.values()] if s.name == name and s.version == version]
    for line in matrix.lines.values():
        found += [s for s in line.sources.values() if s.name == name and s.version == version]
    return found[0] if found else None


def _metadata(python_dir: Path) -> dict[str, Path]:
    """Every distribution installed in a flat site directory -> its dist-info folder, each
    METADATA read once."""
    parser = email.parser.HeaderParser()
    out: dict[str, Path] = {}
    for meta in sorted(python_dir.glob("*.dist-info/METADATA")):
        name = parser.parsestr(meta.read_text(encoding="utf-8", errors="replace"))["Name"]
        if name:
            out[str(name)] = meta.parent
    return out


def _owners(python_dir: Path, dists: Mapping[str, Path]) -> dict[Path, str]:
    """Every file of a flat site directory -> the distribution whose RECORD lists it."""
    out: dict[Path, str] = {}
    for name, info in dists.items():
        record = info / "RECORD"
        if not record.is_file():
            continue
        for row in record.read_text(encoding="utf-8", errors="replace").splitlines():
            path = row.split(",", 1)[0]
            if path:
                out[(python_dir / path).resolve()] = name
    return out


def sbom_json(
    tree: Path,
    manifest: Mapping[str, Any],
    matrix: Matrix,
    *,
    name: str,
    python_dir: str = "python",
    created: datetime | None = None,
) -> str:
    """The CycloneDX JSON of ``tree`` (a layer's /opt or a full package's root), validated."""
    lib = tree / "lib"
    files = sorted(p.name for p in lib.iterdir() if p.is_file()) if lib.is_dir() else []
    root = Component(name=name, type=ComponentType.LIBRARY, bom_ref=f"gdal-lambda:{name}")
    bom = Bom()
    bom.metadata.component = root
    bom.metadata.timestamp = created or datetime(1980, 1, 1, tzinfo=UTC)
    natives: dict[str, Component] = {}  # library stem -> component
    by_name: dict[str, Component] = {}
    for component_name, facts in sorted(manifest.get("components", {}).items()):
        source = _find_source(matrix, component_name, facts.get("version", ""))
        if source is None:
            raise GdalLambdaError(
                f"the manifest names {component_name} {facts.get('version')}, which matrix.toml "
                "does not list: rebuild the GDAL image from this checkout"
            )
        used = next((m for m in source.mirrors if m.sha256 == facts.get("sha256")), None)
        mine = [f for f in files if library_stem(f) in source.provides]
        component = Component(
            name=source.name,
            version=source.version,
            type=ComponentType.LIBRARY,
            bom_ref=f"native:{source.name}",
            licenses=[LicenseExpression(source.spdx)],
            hashes=[_HASHES.from_composite_str(f"sha256:{facts['sha256']}")],
            external_references=[
                ExternalReference(
                    type=ExternalReferenceType.SOURCE_DISTRIBUTION,
                    url=XsUri(mirror.url),
                    hashes=[_HASHES.from_composite_str(f"sha256:{mirror.sha256}")],
                    comment="the tarball it was built from" if mirror is used else "upstream",
                )
                for mirror in source.mirrors
                if mirror is used or mirror is source.mirrors[0]
            ],
            properties=[
                *(Property(name=PROPERTY, value=f"lib/{f}") for f in mine),
                *(
                    Property(name=LICENCE_PROPERTY, value=f"{LICENSES_DIR}/{source.name}/{text}")
                    for text in source.licenses
                ),
            ],
        )
        bom.components.add(component)
        by_name[source.name] = component
        for stem in source.provides:
            natives[stem] = component
    site = tree / python_dir
    dists = _metadata(site) if site.is_dir() else {}
    # A layer's manifest says which file pip installed each from; a full package's does not.
    packages = manifest.get("python_packages")
    if packages is None:
        packages = {n: {"version": v} for n, v in installed_distributions(site).items()}
    for dist, facts in sorted(packages.items()):
        info = dists.get(dist)
        expression, named = (
            distribution_licence((info / "METADATA").read_text(errors="replace"))
            if info is not None
            else (None, None)
        )
        licences: list[LicenseExpression | DisjunctiveLicense] = []
        if expression:
            licences.append(LicenseExpression(expression))
        elif named:
            licences.append(DisjunctiveLicense(name=named))
        component = Component(
            name=dist,
            version=facts["version"],
            type=ComponentType.LIBRARY,
            bom_ref=f"pypi:{dist}",
            purl=PackageURL(type="pypi", name=dist.lower(), version=facts["version"]),
            licenses=licences,
            hashes=[_HASHES.from_composite_str(f"sha256:{facts['sha256']}")]
            if facts.get("sha256")
            else [],
            properties=[Property(name="gdal-lambda:installed-from", value=facts["file"])]
            if facts.get("file")
            else [],
        )
        bom.components.add(component)
        by_name[dist] = component
    owners = _owners(site, dists)
    edges: dict[str, set[str]] = {}
    for info in iter_elf(tree):
        if info.path.parent == lib:
            owner = natives.get(library_stem(info.path.name))
        else:
            dist_name = owners.get(info.path.resolve())
            owner = by_name.get(dist_name) if dist_name else None
        if owner is None:
            continue
        for needed in info.needed:
            target = natives.get(library_stem(needed))
            if target is not None and target is not owner:
                edges.setdefault(str(owner.bom_ref), set()).add(str(target.bom_ref))
    refs = {str(c.bom_ref): c for c in bom.components}
    for source_ref, targets in sorted(edges.items()):
        bom.register_dependency(refs[source_ref], [refs[t] for t in sorted(targets)])
    bom.register_dependency(root, list(bom.components))
    bom.serial_number = uuid.uuid5(uuid.NAMESPACE_URL, f"gdal-lambda:{name}:{_digest(manifest)}")
    text = JsonV1Dot6(bom).output_as_string(indent=2)
    validate(text)
    return text + "\n"


def _digest(manifest: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


def validate(text: str) -> None:
    """CycloneDX 1.6's JSON schema, as cyclonedx-python-lib carries it: one error line."""
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise GdalLambdaError(f"the SBOM does not validate against CycloneDX 1.6: {error}")


def beside(zip_path: Path) -> Path:
    """``dist/gdal3.13-py3.13-geo.zip`` -> ``dist/gdal3.13-py3.13-geo.cdx.json``."""
    return zip_path.with_suffix(".cdx.json")


def write_sbom(tree: Path, text: str) -> Path:
    path = tree / SBOM
    atomic_write_text(path, text)
    return path


def _expressions(data: Mapping[str, Any]) -> Iterable[str]:
    for component in data.get("components", []):
        for entry in component.get("licenses", []):
            if "expression" in entry:
                yield entry["expression"]
            elif entry.get("license", {}).get("id"):
                yield entry["license"]["id"]


def licence_info(text: str) -> str:
    """Lambda's LicenseInfo for the SBOM's contents: every component's SPDX expression once,
    joined with AND (compound ones in parentheses), in a stable order."""
    unique = sorted(set(_expressions(json.loads(text))), key=str.lower)
    return " AND ".join(f"({e})" if " " in e else e for e in unique)


def check_licences(tree: Path, text: str, *, python_dir: str = "python") -> list[str]:
    """What the tree redistributes without its licence: a lib/ file that no native component of
    the SBOM claims, a claimed one whose component has no licence text in share/licenses, a
    distribution in ``python_dir`` without an SBOM entry that carries a licence."""
    data = json.loads(text)
    problems: list[str] = []
    claimed: dict[str, str] = {}
    licences: dict[str, bool] = {}
    for component in data.get("components", []):
        ref = component.get("bom-ref", "")
        licences[component["name"]] = bool(component.get("licenses"))
        texts = []
        for prop in component.get("properties", []):
            if prop.get("name") == PROPERTY:
                claimed[prop["value"]] = component["name"]
            elif prop.get("name") == LICENCE_PROPERTY:
                texts.append(prop["value"])
        if ref.startswith("native:"):
            if not texts:
                problems.append(f"{component['name']}: the SBOM names no licence text")
            for text_path in texts:
                if not (tree / text_path).is_file():
                    problems.append(f"{component['name']}: {text_path} is missing")
    lib = tree / "lib"
    for path in sorted(lib.iterdir()) if lib.is_dir() else []:
        if path.is_file() and f"lib/{path.name}" not in claimed:
            problems.append(f"lib/{path.name}: no component of the SBOM claims it")
    site = tree / python_dir
    for dist in _metadata(site) if site.is_dir() else {}:
        if not licences.get(dist):
            problems.append(f"{dist}: no SBOM entry with a licence")
    return problems
