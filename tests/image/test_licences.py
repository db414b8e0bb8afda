"""Licences and the SBOM of the built artifacts: the GDAL image carries every source's licence
texts, the layer zip carries them and a CycloneDX SBOM that covers every file of lib/ and every
distribution of python/, the SBOM beside the zip is the same, and the check fails when a licence
text is taken away."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from image_helpers import copy_out

from gdal_lambda import sbom
from gdal_lambda.publish import spec

pytestmark = pytest.mark.image


def test_the_gdal_image_carries_every_sources_licence_texts(
    cli, variant, gdal_image, tmp_path: Path
) -> None:
    licences = copy_out(cli, gdal_image, "/opt/share/licenses", tmp_path / "copy")
    components = variant.matrix.components(variant.line)
    assert sorted(p.name for p in licences.iterdir()) == sorted(components)
    for name, source in components.items():
        for text in source.licenses:
            assert (licences / name / text).stat().st_size > 0, (name, text)
    note = (licences / "geos" / "SOURCE").read_text()
    geos = components["geos"]
    assert f"geos {geos.version}" in note and "licence (SPDX): LGPL-2.1-or-later" in note
    assert any(f"sha256: {m.sha256}" in note for m in geos.mirrors)
    assert f"invoke fetch --version {variant.line.name}" in note


def test_the_layer_sbom_covers_every_library_and_distribution(
    opt: Path, layer_zip: Path, variant
) -> None:
    text = (opt / sbom.SBOM).read_text()
    sbom.validate(text)
    assert sbom.beside(layer_zip).read_text() == text
    assert sbom.check_licences(opt, text) == []
    data = json.loads(text)
    manifest = json.loads((opt / "share/gdal-lambda/manifest.json").read_text())
    natives = [c for c in data["components"] if c["bom-ref"].startswith("native:")]
    dists = [c for c in data["components"] if c["bom-ref"].startswith("pypi:")]
    assert {c["name"] for c in natives} == set(variant.matrix.components(variant.line))
    assert {c["name"] for c in dists} == set(manifest["python_packages"])
    assert all(c["licenses"] for c in natives + dists)
    # Dependencies come from the ELF files: libgdal needs PROJ and GEOS, rasterio needs GDAL.
    needs = {d["ref"]: set(d.get("dependsOn", [])) for d in data["dependencies"]}
    assert {"native:proj", "native:geos", "native:curl"} <= needs["native:gdal"]
    assert "native:gdal" in needs["pypi:rasterio"]
    info = spec.zip_licence(layer_zip)
    assert "LGPL-2.1-or-later" in info and "Apache-2.0" in info and len(info) <= 512
    print(
        f"\nSBOM {len(text):,} bytes: {len(natives)} native components, {len(dists)} "
        f"distributions; {sum(1 for _ in (opt / 'share/licenses').rglob('*') if _.is_file())} "
        f"licence files; LicenseInfo ({len(info)} characters): {info}"
    )


def test_removing_a_licence_text_fails_the_check(opt: Path, tmp_path: Path) -> None:
    tree = tmp_path / "opt"
    shutil.copytree(opt, tree, symlinks=True)
    text = (tree / sbom.SBOM).read_text()
    (tree / "share/licenses/openssl/LICENSE.txt").unlink()
    assert sbom.check_licences(tree, text) == [
        "openssl: share/licenses/openssl/LICENSE.txt is missing"
    ]
