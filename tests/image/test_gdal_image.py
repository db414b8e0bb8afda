"""The GDAL image: versions, drivers, PROJ, fixtures round-trips, /vsicurl/ and /vsis3/, libraries."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from httpserver import serve
from image_helpers import copy_out, make_cog, moto_s3, s3_env, sh

from gdal_lambda import elf, images

pytestmark = pytest.mark.image


def test_versions_match_the_matrix(cli, gdal_image, line) -> None:
    out = sh(
        cli,
        gdal_image,
        "gdal-config --version; geos-config --version; proj 2>&1 | head -1",
    )
    gdal, geos = out.split()[:2]
    assert gdal == line.version("gdal")
    assert geos == line.version("geos")
    assert line.version("proj") in out


def test_labels_match_the_matrix(cli, gdal_image, variant) -> None:
    assert images.label_problems(images.labels(cli, gdal_image), variant) == []


def test_image_and_its_binaries_are_for_the_architecture(cli, gdal_image, variant) -> None:
    assert cli.images.get(gdal_image).attrs["Architecture"] == variant.architecture.docker_arch
    # the kernel's own word (under emulation: QEMU's; its CPU name is uname's), and the tools'
    # ELF header (e_machine 62 is EM_X86_64, 183 EM_AARCH64)
    assert sh(cli, gdal_image, "uname -m").strip() == variant.architecture.qemu
    header = sh(cli, gdal_image, "od -An -tx1 -j18 -N2 /opt/bin/gdalinfo").split()
    assert int(header[1] + header[0], 16) == {"x86_64": 62, "arm64": 183}[variant.arch]


def _short_names(formats: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^\s+(.+?) -(?:raster|vector|gnm)", formats, re.M)}


def test_every_expected_driver_is_listed(cli, gdal_image, matrix) -> None:
    raster = _short_names(sh(cli, gdal_image, "gdalinfo --formats"))
    vector = _short_names(sh(cli, gdal_image, "ogrinfo --formats"))
    assert sorted(set(matrix.drivers.raster) - raster) == []
    assert sorted(set(matrix.drivers.vector) - vector) == []


def test_the_seed_projects_raster_formats_and_the_driver_count(
    cli, gdal_image, matrix, line
) -> None:
    """Every raster format the 2019 project listed but those GDAL has removed since (named in
    matrix.toml with the release that removed them); no fewer drivers in all than PyPI's
    rasterio wheel."""
    raster = _short_names(sh(cli, gdal_image, "gdalinfo --formats"))
    vector = _short_names(sh(cli, gdal_image, "ogrinfo --formats"))
    required, removed = line.seed_formats(matrix.drivers)
    assert sorted(required - raster) == []
    # A format listed although the matrix says GDAL removed it: the matrix is wrong.
    assert sorted(removed & raster) == []
    assert len(raster | vector) >= matrix.drivers.minimum_count, len(raster | vector)


def test_gtiff_codecs_and_linked_libraries(cli, gdal_image, matrix) -> None:
    options = sh(cli, gdal_image, "gdalinfo --format GTiff")
    compress = re.search(r"<Option name=[\"']COMPRESS[\"'].*?</Option>", options, re.S)
    assert compress, options[-2000:]
    values = set(re.findall(r"<Value[^>]*>([^<]+)</Value>", compress.group(0)))
    assert sorted(set(matrix.drivers.gtiff_codecs) - values) == []
    linked = sh(cli, gdal_image, "ldd /opt/lib/libgdal.so")
    for lib in matrix.drivers.gdal_links:
        assert f"{lib}" in linked, f"libgdal does not link {lib}"


def test_proj_transforms_4326_to_3857(cli, gdal_image) -> None:
    out = sh(cli, gdal_image, "echo '49 2' | cs2cs -f '%.2f' EPSG:4326 EPSG:3857")
    x, y = (float(v) for v in out.split()[:2])
    assert x == pytest.approx(222638.98, abs=0.01)
    assert y == pytest.approx(6274861.39, abs=0.01)


def test_fixtures_round_trip(cli, gdal_image, matrix) -> None:
    codecs = " ".join(c for c in matrix.drivers.gtiff_codecs if c != "PACKBITS") + " PACKBITS"
    script = f"""
cd /tmp
gdal_create -of GTiff -outsize 256 256 -bands 3 -ot Byte -burn 10 -burn 20 -burn 30 -a_srs EPSG:3857 -a_ullr 0 256 256 0 src.tif
for codec in {codecs}; do
    gdal_translate -q -of COG -co COMPRESS=$codec src.tif cog-$codec.tif
    echo "$codec $(gdalinfo -json -stats cog-$codec.tif | tr -d '\\n ' | grep -o '"mean":[0-9.]*' | head -1)"
    gdalinfo cog-$codec.tif | grep -q "COMPRESSION=" || {{ echo "no COMPRESSION in $codec"; exit 1; }}
done
cat > points.geojson <<'JSON'
{{"type":"FeatureCollection","features":[
{{"type":"Feature","properties":{{"name":"a"}},"geometry":{{"type":"Point","coordinates":[2,49]}}}},
{{"type":"Feature","properties":{{"name":"b"}},"geometry":{{"type":"Point","coordinates":[3,50]}}}}]}}
JSON
for fmt in "ESRI Shapefile:shp" "GPKG:gpkg" "FlatGeobuf:fgb" "GeoJSON:json"; do
    ogr2ogr -f "${{fmt%%:*}}" "points.${{fmt##*:}}" points.geojson
    echo "vector ${{fmt%%:*}} $(ogrinfo -ro -al -so "points.${{fmt##*:}}" | grep 'Feature Count')"
done
"""
    out = sh(cli, gdal_image, script)
    for codec in matrix.drivers.gtiff_codecs:
        match = re.search(rf"^{codec} \"mean\":([0-9.]+)", out, re.M)
        assert match, f"{codec} missing from:\n{out}"
        # JPEG and WEBP are lossy (and convert to YCbCr): a few levels of drift are normal.
        tolerance = 3.0 if codec in ("JPEG", "WEBP") else 0.0
        assert float(match.group(1)) == pytest.approx(10, abs=tolerance), codec
    for fmt in ("ESRI Shapefile", "GPKG", "FlatGeobuf", "GeoJSON"):
        assert f"vector {fmt} Feature Count: 2" in out


def test_no_library_is_missing(cli, gdal_image, tmp_path: Path) -> None:
    """Every ELF file of /opt, found on the host (pyelftools), resolved by the image's own
    dynamic loader (what ldd runs): the image needs no find, ldd or file of its own."""
    tree = copy_out(cli, gdal_image, "/opt", tmp_path / "copy")
    files = sorted(
        p for p in tree.rglob("*") if p.is_file() and not p.is_symlink() and elf.is_elf(p)
    )
    with (tree / "bin" / "gdalinfo").open("rb") as handle:
        [interp] = [s for s in ELFFile(handle).iter_segments() if s["p_type"] == "PT_INTERP"]
        loader = interp.get_interp_name()
    script = "\n".join(
        f'echo "ELF {f}"; {loader} --list {f} | grep "not found" | sed "s|^|MISSING {f}: |" || true'
        for f in (f"/opt/{p.relative_to(tree)}" for p in files)
    )
    out = sh(cli, gdal_image, script)
    assert out.count("ELF ") > 20, out[-2000:]
    assert "MISSING" not in out, "\n".join(line for line in out.splitlines() if "MISSING" in line)


def test_vsicurl_reads_ranges_from_a_real_server(cli, gdal_image, tmp_path: Path) -> None:
    make_cog(cli, gdal_image, tmp_path / "www")
    with serve(tmp_path / "www") as server:
        out = sh(
            cli,
            gdal_image,
            f"gdallocationinfo -valonly /vsicurl/{server.url('cog.tif')} 300 300",
            network_mode="host",
            environment={"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"},
        )
        ranges = [r for _, _, r in server.state.requests if r]
    assert out.strip() == "1234"
    assert ranges, "GDAL read without Range requests"


def test_vsis3_reads_from_an_s3_endpoint(cli, gdal_image, tmp_path: Path) -> None:
    make_cog(cli, gdal_image, tmp_path / "cog")
    with moto_s3() as (endpoint, s3):
        s3.upload_file(str(tmp_path / "cog" / "cog.tif"), "cogs", "a/cog.tif")
        out = sh(
            cli,
            gdal_image,
            "gdalinfo -json /vsis3/cogs/a/cog.tif",
            network_mode="host",
            environment={
                **s3_env(endpoint),
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_REGION": "us-east-1",
            },
        )
    info = json.loads(out)
    assert info["size"] == [512, 512]
    assert info["driverShortName"] == "GTiff"
