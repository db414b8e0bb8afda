"""The assembly parts layers and packages share, on small trees made here: ELF checks (on the
host's own binaries and on fixtures compiled here with gcc), the deterministic zip, the size
limits, recipe pin overrides."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import stat
import subprocess
import zipfile
from pathlib import Path

import pytest

from gdal_lambda import assembly, limits, versions
from gdal_lambda.errors import GdalLambdaError


@pytest.fixture
def target() -> versions.Target:
    return versions.load_matrix().target("debian13")


def _tree(tmp_path: Path) -> Path:
    tree = tmp_path / "opt"
    (tree / "bin").mkdir(parents=True)
    (tree / "lib").mkdir()
    (tree / "share" / "x").mkdir(parents=True)
    (tree / "share" / "x" / "data.txt").write_text("data\n" * 1000)
    (tree / "lib" / "libdemo.so.1.2.3").write_bytes(os.urandom(5000))
    (tree / "lib" / "libdemo.so.1").symlink_to("libdemo.so.1.2.3")
    tool = tree / "bin" / "tool"
    tool.write_text("#!/bin/sh\necho hi\n")
    tool.chmod(0o700)
    odd = tree / "share" / "x" / "odd.txt"
    odd.write_text("odd")
    odd.chmod(0o600)
    return tree


def test_zip_is_deterministic_sorted_with_links_and_normal_modes(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    assembly.write_zip(tree, first)
    os.utime(tree / "share" / "x" / "data.txt", (1, 1))  # a different mtime changes nothing
    assembly.write_zip(tree, second)
    assert (
        hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
    )
    with zipfile.ZipFile(first) as zf:
        infos = {i.filename: i for i in zf.infolist()}
        names = zf.namelist()
        assert zf.read("lib/libdemo.so.1") == b"libdemo.so.1.2.3"
    assert names == sorted(names)
    assert stat.S_ISLNK(infos["lib/libdemo.so.1"].external_attr >> 16)
    assert stat.S_IMODE(infos["bin/tool"].external_attr >> 16) == 0o755
    assert stat.S_IMODE(infos["share/x/odd.txt"].external_attr >> 16) == 0o644
    assert stat.S_IMODE(infos["share/"].external_attr >> 16) == 0o755
    # Info-ZIP restores the link and the modes exactly.
    out = tmp_path / "unzipped"
    subprocess.run(["unzip", "-q", str(first), "-d", str(out)], check=True)
    assert os.readlink(out / "lib" / "libdemo.so.1") == "libdemo.so.1.2.3"
    assert stat.S_IMODE((out / "bin" / "tool").stat().st_mode) == 0o755


def test_zip_failure_leaves_nothing(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    (tree / "share" / "broken").symlink_to(tree / "missing")
    (tree / "share" / "unreadable").mkdir()
    # A file that cannot be opened, even by root (the suite runs as root, where chmod 000
    # stops nothing): a Unix socket. open() fails half way through the zip with ENXIO.
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tree / "share" / "unreadable" / "f"))
        dest = tmp_path / "dist" / "out.zip"
        dest.parent.mkdir()
        with pytest.raises(OSError, match="No such device or address"):
            assembly.write_zip(tree, dest)
    assert list(dest.parent.iterdir()) == []


def test_size_limits(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    report = assembly.measure_tree(tree)
    assert report.unzipped == sum(p.stat().st_size for p in assembly.iter_files(tree))
    assert report.largest[0][0] == "lib/libdemo.so.1.2.3"
    assert set(report.folders) == {"bin", "lib", "share"}
    assembly.check_limits(report, "demo")
    with pytest.raises(GdalLambdaError) as raised:
        assembly.check_limits(report, "demo", budget=report.unzipped - 1)
    assert str(raised.value).startswith(
        f"demo is {limits.fmt_mib(report.unzipped)} unzipped, over Lambda's limit of "
        f"{limits.fmt_mib(report.unzipped - 1)}"
    )
    # one line that names the ten largest files, the first the largest
    message = str(raised.value)
    assert "\n" not in message
    assert message.index("its 10 largest files: lib/libdemo.so.1.2.3 (") > 0
    assert message.count(" MiB)") == len(report.largest)


def test_the_size_report_shows_the_headroom_under_lambdas_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = assembly.measure_tree(_tree(tmp_path))
    left = limits.LAMBDA_UNZIPPED_LIMIT - report.unzipped
    assert assembly.headroom(report) == left
    assembly.print_report(report, "layer")
    out = " ".join(capsys.readouterr().out.split())
    assert re.search(rf"headroom under Lambda's 250\.0 MiB\W+{left / limits.MIB:.1f}\b", out)
    # a companion package: what is left after the package and its layer
    layer = 100 * limits.MIB
    assert assembly.headroom(report, beside=layer) == left - layer
    assembly.print_report(report, "package", beside=layer)
    out = " ".join(capsys.readouterr().out.split())
    assert re.search(rf"with the layer\W+{(report.unzipped + layer) / limits.MIB:.1f}\b", out)
    assert re.search(
        rf"headroom under Lambda's 250\.0 MiB\W+{(left - layer) / limits.MIB:.1f}\b", out
    )


def test_sizes_are_printed_in_the_unit_of_lambdas_limits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Lambda's 250 MiB once read "262.1 MB", and the direct-upload warning said "50 MB"."""
    big = assembly.SizeReport(unzipped=limits.LAMBDA_UNZIPPED_LIMIT + 1, zipped=None)
    with pytest.raises(
        GdalLambdaError, match=r"250\.0 MiB unzipped, over Lambda's limit of 250\.0 MiB"
    ):
        assembly.check_limits(big, "layer x.zip")
    report = assembly.measure_tree(_tree(tmp_path))
    report.zipped = limits.DIRECT_UPLOAD_LIMIT + 1
    assembly.print_report(report, "demo")
    out = " ".join(capsys.readouterr().out.split())
    assert "unzipped MiB" in out and " MB" not in out
    assert f"warning: {limits.direct_upload_warning(report.zipped)}" in out
    assert "over the 50.0 MiB direct-upload limit" in out


def test_overlay_build_constraints_must_be_lists(tmp_path: Path) -> None:
    bad = tmp_path / "overlay.toml"
    bad.write_text('[build_constraints]\npyproj = "cython<3.1"\n')
    with pytest.raises(GdalLambdaError, match="must map a package to a list"):
        versions.load_matrix(overlay=bad)


def test_overlay_repins_a_line(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    matrix = versions.load_matrix(overlay=root / ".ci" / "reachable-pins.toml")
    assert matrix.line("3.13").version("proj") == "9.1.1"
    assert matrix.line("3.13").version("gdal") == "3.13.3"
    assert matrix.requirement_overrides == {"pyproj": "3.6.1", "geopandas": "1.1.4"}
    assert matrix.build_constraints == {"pyproj": ["cython<3.1"]}
    assert versions.load_matrix().build_constraints == {}
    assert versions.load_matrix().line("3.13").version("proj") == "9.9.0"


def test_the_matrix_reads_the_environment_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process environment is the task's to pass: the library reads none of its own."""
    overlay = Path(__file__).resolve().parents[2] / ".ci" / "reachable-pins.toml"
    monkeypatch.setenv("GDAL_LAMBDA_MATRIX_OVERLAY", str(overlay))
    monkeypatch.setenv("GDAL_LAMBDA_MATRIX", str(tmp_path / "nowhere.toml"))
    assert versions.load_matrix().overlay is None
    given = versions.load_matrix(env={"GDAL_LAMBDA_MATRIX_OVERLAY": str(overlay)})
    assert given.overlay == overlay
    with pytest.raises(GdalLambdaError, match="nowhere.toml not found"):
        versions.load_matrix(env={"GDAL_LAMBDA_MATRIX": str(tmp_path / "nowhere.toml")})
