"""The matrix file: the shipped one is complete, and broken ones fail with one clear line."""

from __future__ import annotations

import re
from pathlib import Path

import docker.auth
import docker.utils
import pytest
from shipped import shipped_matrix

from gdal_lambda import naming, project, versions
from gdal_lambda.errors import GdalLambdaError
from gdal_lambda.variant import Variant


@pytest.fixture(scope="module")
def matrix() -> versions.Matrix:
    return versions.load_matrix()


def test_each_line_pins_a_release_of_its_own_gdal_and_a_proj_and_geos(
    matrix: versions.Matrix,
) -> None:
    assert matrix.lines
    for name, line in matrix.lines.items():
        assert re.fullmatch(r"\d+\.\d+", name), name
        assert line.gdal.startswith(f"{name}."), (name, line.gdal)
        for library in versions.LIBRARIES:
            assert re.fullmatch(r"\d+\.\d+\.\d+", line.version(library)), (name, library)


def test_every_source_lists_upstream_first_then_debian(matrix: versions.Matrix) -> None:
    for line in matrix.lines.values():
        for source in line.sources.values():
            urls = [m.url for m in source.mirrors]
            assert len(urls) >= 2, source
            assert "deb.debian.org" not in urls[0], source
            assert "deb.debian.org" in urls[-1], source
            digests = {m.sha256 for m in source.mirrors}
            # Debian repacks GDAL (+dfsg: a different file); PROJ's and GEOS's orig tarballs
            # are upstream's, byte for byte: one digest.
            repacked = any("+dfsg" in url for url in urls)
            assert len(digests) == (2 if repacked else 1), source


def test_only_the_debian_gdal_repack_declares_missing_files(matrix: versions.Matrix) -> None:
    for line in matrix.lines.values():
        for source in line.sources.values():
            for mirror in source.mirrors:
                if mirror.missing:
                    assert source.name == "gdal" and "+dfsg" in mirror.url
                    assert set(mirror.missing) == {
                        "ogr/data/ecw_cs.wkt",
                        "ogr/data/cubewerx_extra.wkt",
                    }


def test_targets(matrix: versions.Matrix) -> None:
    assert matrix.default_target == "debian11"
    assert matrix.checked_targets == ("al2023",)
    assert set(matrix.targets) == {"al2023", "debian11", "debian12", "debian13"}
    al = matrix.target("al2023")
    assert al.gdal_base.startswith("public.ecr.aws/lambda/provided:al2023.2025.12.08.23@sha256:")
    assert al.python_image("3.12") == "public.ecr.aws/lambda/python:3.12.2025.04.28.11"
    assert al.pythons == ("3.12", "3.13", "3.14")
    assert matrix.target("debian13").pythons == ("3.13",)
    assert matrix.target("debian12").pythons == ("3.11",)
    for target in matrix.targets.values():
        path = list(target.ld_library_path)
        assert path[-1] == "/opt/lib", "layers come after the system library directories"


def test_only_the_floor_stand_in_compiles_its_python() -> None:
    """debian11 is shaped like Lambda's python3.x images: for every Python the release
    publishes, CPython from a pinned source in /var/lang of its own stand-in, first on
    LD_LIBRARY_PATH, system directories before /var/task and /opt/lib."""
    matrix = shipped_matrix()
    floor = matrix.target("debian11")
    assert (floor.standin_suite, floor.glibc) == ("bullseye", "2.31")
    assert floor.pythons == matrix.target("al2023").pythons == ("3.12", "3.13", "3.14")
    for python in floor.pythons:
        source = floor.standin_python(python)
        assert source is not None and source.version.startswith(python + ".")
        urls = [m.url for m in source.mirrors]
        assert urls[0].startswith(f"https://www.python.org/ftp/python/{source.version}/")
        assert floor.python_image(python) == f"gdal-lambda-standin:debian11-py{python}"
        assert floor.runtime_image(python) == floor.python_image(python)
    assert "deb.debian.org" in floor.standin_pythons["3.13"].mirrors[-1].url
    assert floor.gdal_image() == "gdal-lambda-standin:debian11"
    assert list(floor.standin_images("arm64").items()) == [
        ("gdal-lambda-standin:debian11-arm64", None),
        ("gdal-lambda-standin:debian11-py3.12-arm64", "3.12"),
        ("gdal-lambda-standin:debian11-py3.13-arm64", "3.13"),
        ("gdal-lambda-standin:debian11-py3.14-arm64", "3.14"),
    ]
    assert floor.library_path(matrix.architecture("x86_64")) == (
        "/var/lang/lib", "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/var/runtime",
        "/var/runtime/lib", "/var/task", "/var/task/lib", "/opt/lib",
    )  # fmt: skip
    assert floor.library_path(matrix.architecture("arm64")) == (
        "/var/lang/lib", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/var/runtime",
        "/var/runtime/lib", "/var/task", "/var/task/lib", "/opt/lib",
    )  # fmt: skip
    others = {n for n, t in matrix.targets.items() if t.standin_pythons} - {"debian11"}
    assert others == set()
    # Every stand-in has its registry route: Docker Hub's image, pinned per architecture.
    for target in matrix.targets.values():
        if target.is_standin:
            assert set(target.registry_base) == set(matrix.architectures), target.name
            assert all(
                re.fullmatch(r"debian@sha256:[0-9a-f]{64}", ref)
                for ref in target.registry_base.values()
            )


def test_the_ci_overlay_narrows_the_floor_to_the_python_it_can_reach() -> None:
    overlay = versions.project_root() / ".ci" / "reachable-pins.toml"
    floor = versions.load_matrix(overlay=overlay).target("debian11")
    assert floor.pythons == ("3.13",)
    assert floor.standin_python("3.13") is not None


def test_an_overlay_sets_only_a_targets_pythons(tmp_path: Path) -> None:
    overlay = tmp_path / "overlay.toml"
    overlay.write_text('[targets.debian11]\nglibc = "2.17"\n')
    with pytest.raises(GdalLambdaError, match=r"only pythons of \[targets.debian11\], not glibc"):
        versions.load_matrix(overlay=overlay)


def test_unknown_line_lists_known_ones(matrix: versions.Matrix) -> None:
    with pytest.raises(
        GdalLambdaError, match=r"unknown GDAL line '3.99': known lines are 3.10, 3.13"
    ):
        matrix.line("3.99")


def test_target_from_environment(matrix: versions.Matrix, monkeypatch) -> None:
    """The environment is read once, by Variant.resolve, from the mapping it is given."""
    env = {"GDAL_LAMBDA_TARGET": "debian13"}
    assert Variant.resolve(matrix, line="3.13", env=env).target.name == "debian13"
    picked = Variant.resolve(matrix, line="3.13", env=env, target="debian12")
    assert picked.target.name == "debian12", "--target wins over the environment"
    with pytest.raises(GdalLambdaError, match="unknown target 'centos7'"):
        Variant.resolve(matrix, line="3.13", env={"GDAL_LAMBDA_TARGET": "centos7"})
    monkeypatch.setenv("GDAL_LAMBDA_TARGET", "debian13")
    assert matrix.target().name == "debian11", "Matrix.target does not read the environment"


def test_retired_lines_say_why(matrix: versions.Matrix) -> None:
    for old in ("2.4", "3.0", "3.4"):
        with pytest.raises(GdalLambdaError) as err:
            matrix.line(old)
        assert str(err.value) == (
            f"GDAL line {old} is retired: {matrix.retired_reason}; the lines built are "
            f"{', '.join(sorted(matrix.lines))}"
        )
    with pytest.raises(GdalLambdaError, match="unknown GDAL line '3.99'"):
        matrix.line("3.99")


def test_project_root_is_found_from_a_subfolder_or_named(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    assert project.project_root({}, start=root / "src" / "gdal_lambda") == root
    assert project.project_root({"GDAL_LAMBDA_ROOT": str(root)}, start=tmp_path) == root
    with pytest.raises(
        GdalLambdaError, match="not in a gdal-lambda checkout: .* set GDAL_LAMBDA_ROOT"
    ):
        project.project_root({}, start=tmp_path)
    with pytest.raises(GdalLambdaError, match="is not a gdal-lambda checkout"):
        project.project_root({"GDAL_LAMBDA_ROOT": str(tmp_path)})


def test_unknown_target_lists_known_ones(matrix: versions.Matrix) -> None:
    with pytest.raises(
        GdalLambdaError, match="known targets are al2023, debian11, debian12, debian13"
    ):
        matrix.target("centos7")


def test_unknown_python_lists_valid_ones(matrix: versions.Matrix) -> None:
    with pytest.raises(GdalLambdaError, match="use one of 3.12, 3.13, 3.14"):
        matrix.target("al2023").check_python("3.9")
    assert matrix.target("debian13").check_python(None) == "3.13"


def test_drivers_are_data(matrix: versions.Matrix) -> None:
    for name in ("GTiff", "COG", "netCDF", "HDF5", "Zarr", "JP2OpenJPEG", "WMTS"):
        assert name in matrix.drivers.raster
    for name in ("ESRI Shapefile", "FlatGeobuf", "PostgreSQL", "GML", "GeoJSON"):
        assert name in matrix.drivers.vector


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not toml [", "not valid TOML"),
        (
            'default_target = "x"\n[lines."1"]\ngdal = "1"\nproj = "1"\ngeos = "1"\n',
            "which has no sources entry",
        ),
        (
            '[[sources.gdal]]\nversion = "1"\nmirrors = [{url = "http://x/y", sha256 = "abc"}]\n',
            "no valid sha256",
        ),
        (
            '[[sources.gdal]]\nversion = "1"\nspdx = "MIT"\nlicenses = ["LICENSE.TXT"]\n'
            'mirrors = [{url = "http://x/y", sha256 = "%s"}]\n'
            '[lines."1"]\ngdal = "1"\n' % ("a" * 64),
            "does not pin proj",
        ),
        ('default_target = "nope"\n', "default_target 'nope' is not a target"),
        (
            '[targets.t]\nstandin_suite = "bullseye"\nstandin_python = { "3.99" = "3.99.1" }\n',
            "targets.t names standin_python 3.99.1, which has no \\[\\[sources.python\\]\\]",
        ),
        (
            '[targets.t]\nstandin_suite = "bullseye"\nstandin_python = "3.99.1"\n',
            "targets.t: standin_python must map each Python to a CPython version",
        ),
        (
            '[targets.t]\nstandin_python = "3.99.1"\n',
            "targets.t has standin_python but no standin_suite",
        ),
    ],
)
def test_broken_matrix_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "matrix.toml"
    path.write_text(text)
    with pytest.raises(GdalLambdaError, match=message) as err:
        versions.load_matrix(path)
    assert "\n" not in str(err.value)


def test_names_share_one_scheme() -> None:
    assert naming.stem("3.13") == "gdal3.13"
    assert naming.stem("3.13", python="3.12", recipe="geo") == "gdal3.13-py3.12-geo"
    assert naming.stem("3.13", python="3.13", target="debian13") == "gdal3.13-py3.13-debian13"
    assert naming.layer_zip("3.13", "3.12").name == "gdal3.13-py3.12-geo.zip"
    assert naming.layer_name("3.13", "3.12") == "gdal313-py312-geo"
    assert naming.layer_name("3.10", "3.13", arch="arm64") == "gdal310-py313-geo-arm64"


def test_seed_formats_follow_the_lines_gdal(matrix: versions.Matrix) -> None:
    """A seed format GDAL removed is required of older lines and refused on newer ones."""
    drivers = matrix.drivers
    assert len(drivers.seed_raster) == 130 and drivers.minimum_count == 147
    assert set(drivers.seed_removed) <= set(drivers.seed_raster)
    new_required, new_gone = matrix.line("3.13").seed_formats(drivers)
    old_required, old_gone = matrix.line("3.10").seed_formats(drivers)
    assert "BLX" in new_gone and "BLX" in old_required  # removed in 3.11
    assert "INGR" in new_gone and "INGR" in old_gone  # removed in 3.5
    assert "GTiff" in new_required and not new_required & new_gone


def test_the_floor_must_satisfy_al2023(matrix: versions.Matrix) -> None:
    floor = matrix.target("debian11")
    assert floor.must_satisfy == ("al2023",)
    assert floor.standin_pythons and floor.ld_library_path[0] == "/var/lang/lib"


def test_must_satisfy_names_known_targets(tmp_path: Path) -> None:
    text = (versions.project_root() / "matrix.toml").read_text()
    bad = tmp_path / "matrix.toml"
    bad.write_text(text.replace('must_satisfy = ["al2023"]', 'must_satisfy = ["al2099"]'))
    with pytest.raises(GdalLambdaError, match="must_satisfy names unknown target 'al2099'"):
        versions.load_matrix(bad)


def test_every_pulled_image_reference_parses_as_the_docker_sdk_reads_it(
    matrix: versions.Matrix,
) -> None:
    """What a build pulls (a registry target's bases and runtimes, a stand-in's registry root)
    splits into repository and tag or digest the way images.pull is given it, and back."""
    refs: set[str] = set()
    for target in matrix.targets.values():
        refs.update(target.registry_base.values())
        if not target.is_standin:
            refs.add(target.gdal_image())
            for python in target.pythons:
                refs.update((target.python_image(python), target.runtime_image(python)))
    assert any(ref.startswith("public.ecr.aws/") for ref in refs)
    for ref in sorted(refs):
        repository, tag = docker.utils.parse_repository_tag(ref)
        assert tag, f"{ref}: no tag nor digest (it would pull :latest)"
        digest = tag.startswith("sha256:")
        assert (f"{repository}@{tag}" if digest else f"{repository}:{tag}") == ref
        if digest:
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", tag), ref
        # a digest may follow a tag: the name is what comes before that tag
        tagged = digest and ":" in repository.rsplit("/", 1)[-1]
        name = repository.rsplit(":", 1)[0] if tagged else repository
        registry, _ = docker.auth.resolve_repository_name(name)
        assert registry in ("public.ecr.aws", "docker.io"), ref
