"""Licence texts from the tarballs, the CycloneDX SBOM, and the LicenseInfo publishing sends.

The tarballs and trees here are small fakes made by the tests; the real ones are checked on a
built layer by tests/image/test_licences.py.
"""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest
from shipped import shipped_matrix

from gdal_lambda import licences, sbom, versions
from gdal_lambda.errors import GdalLambdaError
from gdal_lambda.publish import spec
from gdal_lambda.sources import Fetched

MATRIX = shipped_matrix()


def _tarball(path: Path, top: str, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def _fetched(tmp: Path, name: str, files: dict[str, bytes]) -> Fetched:
    source = MATRIX.stack.get(name) or MATRIX.line("3.13").sources[name]
    path = _tarball(tmp / f"{name}.tar.gz", f"{name}-{source.version}", files)
    return Fetched(source=source, mirror=source.mirrors[-1], path=path)


def test_every_source_names_its_licence_files_and_a_valid_spdx_expression() -> None:
    sources = [*MATRIX.stack.values()]
    for line in MATRIX.lines.values():
        sources += line.sources.values()
    for target in MATRIX.targets.values():
        sources += target.standin_pythons.values()
    for source in sources:
        assert source.licenses and source.spdx, source.name
    geos = MATRIX.line("3.13").sources["geos"]
    assert geos.spdx == "LGPL-2.1-or-later" and geos.licenses == ("COPYING",)
    assert {s.name for s in sources if not s.provides} == {"python"}


def test_licence_files_and_a_source_note_come_out_of_the_tarball(tmp_path: Path) -> None:
    item = _fetched(tmp_path, "geos", {"COPYING": b"LGPL text\n", "src/x.c": b"int x;\n"})
    written = licences.write_licences(
        {"geos": item}, tmp_path / "out", fetch_hint="invoke fetch --version 3.13"
    )
    assert sorted(p.name for p in written) == ["COPYING", "SOURCE"]
    assert (tmp_path / "out/geos/COPYING").read_bytes() == b"LGPL text\n"
    note = (tmp_path / "out/geos/SOURCE").read_text()
    assert f"sha256: {item.mirror.sha256}" in note and item.mirror.url in note
    assert "To fetch and verify it again: invoke fetch --version 3.13" in note
    assert f"upstream release: {item.source.mirrors[0].url}" in note


def test_a_licence_file_missing_from_the_tarball_is_one_error(tmp_path: Path) -> None:
    item = _fetched(tmp_path, "hdf5", {"COPYING": b"x\n"})  # COPYING_LBNL_HDF5 missing
    with pytest.raises(GdalLambdaError) as err:
        licences.write_licences({"hdf5": item}, tmp_path / "out", fetch_hint="x")
    assert str(err.value) == (
        f"source hdf5 1.14.6 ({item.mirror.url}): licence file COPYING_LBNL_HDF5 is not in "
        "the tarball; fix licenses in matrix.toml"
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('spdx = "MIT"\n', r"sources.zlib 9 names no licence files"),
        (
            'spdx = "MIT and then some"\nlicenses = ["LICENSE"]\n',
            r"spdx 'MIT and then some' is not",
        ),
        ('licenses = ["LICENSE"]\n', r"spdx None is not a valid SPDX expression"),
    ],
)
def test_bad_licence_data_is_one_clear_error(tmp_path: Path, entry: str, message: str) -> None:
    path = tmp_path / "matrix.toml"
    path.write_text(
        '[[sources.zlib]]\nversion = "9"\n'
        + entry
        + 'mirrors = [{ url = "http://x/z.tgz", sha256 = "'
        + "a" * 64
        + '" }]\n'
    )
    empty = tmp_path / "overlay.toml"
    empty.write_text("")
    with pytest.raises(GdalLambdaError, match=message):
        versions.load_matrix(path, overlay=empty)


def _tree(tmp: Path) -> tuple[Path, dict[str, object]]:
    """A layer-shaped tree: libgeos and a grafted libsqlite3 in lib/, one distribution."""
    tree = tmp / "opt"
    (tree / "lib").mkdir(parents=True)
    (tree / "lib/libgeos.so.3.13.1").write_bytes(b"not elf")
    (tree / "lib/libsqlite3-1a2b3c4d.so.0").write_bytes(b"not elf")
    for name in ("geos", "sqlite"):
        source = MATRIX.stack.get(name) or MATRIX.line("3.13").sources[name]
        for text in source.licenses:
            (tree / "share/licenses" / name).mkdir(parents=True, exist_ok=True)
            (tree / "share/licenses" / name / text).write_text("text\n")
    info = tree / "python/affine-2.4.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.4\nName: affine\nVersion: 2.4.0\nLicense-Expression: BSD-3-Clause\n"
    )
    (info / "RECORD").write_text("affine/__init__.py,,\n")
    geos, sqlite = MATRIX.line("3.13").sources["geos"], MATRIX.stack["sqlite"]
    manifest = {
        "components": {
            "geos": {"version": geos.version, "sha256": geos.mirrors[-1].sha256},
            "sqlite": {"version": sqlite.version, "sha256": sqlite.mirrors[-1].sha256},
        },
        "python_packages": {
            "affine": {"version": "2.4.0", "file": "affine-2.4.0.tar.gz", "sha256": "b" * 64}
        },
    }
    return tree, manifest


def test_the_sbom_validates_and_names_each_component(tmp_path: Path) -> None:
    tree, manifest = _tree(tmp_path)
    text = sbom.sbom_json(tree, manifest, MATRIX, name="gdal3.13-py3.13-geo")
    sbom.validate(text)  # CycloneDX 1.6's schema
    data = json.loads(text)
    by_name = {c["name"]: c for c in data["components"]}
    assert by_name["geos"]["licenses"] == [{"expression": "LGPL-2.1-or-later"}]
    assert {"name": "gdal-lambda:file", "value": "lib/libgeos.so.3.13.1"} in by_name["geos"][
        "properties"
    ]
    assert {"name": "gdal-lambda:file", "value": "lib/libsqlite3-1a2b3c4d.so.0"} in by_name[
        "sqlite"
    ]["properties"]
    assert by_name["affine"]["purl"] == "pkg:pypi/affine@2.4.0"
    assert by_name["affine"]["hashes"] == [{"alg": "SHA-256", "content": "b" * 64}]
    refs = {s["url"] for s in by_name["geos"]["externalReferences"]}
    assert MATRIX.line("3.13").sources["geos"].mirrors[0].url in refs  # upstream, always
    assert sbom.check_licences(tree, text) == []
    assert sbom.licence_info(text) == "blessing AND BSD-3-Clause AND LGPL-2.1-or-later"
    # The same facts give the same document (a deterministic zip).
    assert sbom.sbom_json(tree, manifest, MATRIX, name="gdal3.13-py3.13-geo") == text


def test_the_check_cannot_be_fooled(tmp_path: Path) -> None:
    """A removed licence text, a lib/ file nobody claims, a distribution without an entry."""
    tree, manifest = _tree(tmp_path)
    text = sbom.sbom_json(tree, manifest, MATRIX, name="x")
    (tree / "share/licenses/sqlite/LICENSE.md").unlink()
    (tree / "lib/libmystery.so.1").write_bytes(b"")
    other = tree / "python/click-8.0.dist-info"
    other.mkdir()
    (other / "METADATA").write_text("Metadata-Version: 2.1\nName: click\nVersion: 8.0\n")
    assert sbom.check_licences(tree, text) == [
        "sqlite: share/licenses/sqlite/LICENSE.md is missing",
        "lib/libmystery.so.1: no component of the SBOM claims it",
        "click: no SBOM entry with a licence",
    ]


def test_a_schema_violation_is_one_error() -> None:
    with pytest.raises(GdalLambdaError, match="does not validate against CycloneDX 1.6"):
        sbom.validate(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "version": "x"}))


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ("License-Expression: MIT OR Apache-2.0\n", ("MIT OR Apache-2.0", None)),
        ("License: BSD-3-Clause\n", ("BSD-3-Clause", None)),
        ("Classifier: License :: OSI Approved :: MIT License\n", ("MIT", None)),
        ("License: The best licence\n", (None, "The best licence")),
        ("Classifier: License :: OSI Approved :: BSD License\n", (None, "BSD License")),
    ],
)
def test_a_distributions_licence(metadata: str, expected: tuple[str | None, str | None]) -> None:
    assert sbom.distribution_licence("Name: x\nVersion: 1\n" + metadata) == expected


def test_publish_sends_the_sboms_expression_and_noassertion_without_one(tmp_path: Path) -> None:
    tree, manifest = _tree(tmp_path)
    text = sbom.sbom_json(tree, manifest, MATRIX, name="x")
    with_sbom = tmp_path / "with.zip"
    with zipfile.ZipFile(with_sbom, "w") as archive:
        archive.writestr(sbom.SBOM.as_posix(), text)
    without = tmp_path / "without.zip"
    with zipfile.ZipFile(without, "w") as archive:
        archive.writestr("python/x.py", "")
    assert spec.zip_licence(with_sbom) == "blessing AND BSD-3-Clause AND LGPL-2.1-or-later"
    assert spec.zip_licence(without) == "NOASSERTION"
