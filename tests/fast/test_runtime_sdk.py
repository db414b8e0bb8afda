"""Which of the runtime's distributions (the AWS SDK in /var/runtime) a tree may leave out."""

from __future__ import annotations

from pathlib import Path

import pytest

from gdal_lambda import locks, naming, runtime_sdk
from gdal_lambda.project import project_root

RUNTIME = {
    "boto3": "1.38.36",
    "botocore": "1.38.36",
    "s3transfer": "0.13.1",
    "jmespath": "1.0.1",
    "python-dateutil": "2.9.0.post0",
    "six": "1.17.0",
    "urllib3": "2.5.0",
}


def dist(
    site: Path,
    name: str,
    version: str,
    requires: list[str] = (),  # type: ignore[assignment]
    files: list[str] = (),  # type: ignore[assignment]
) -> None:
    """A distribution installed in ``site``: its METADATA, RECORD and files."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {req}" for req in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n")
    record = [*files, f"{info.name}/METADATA", f"{info.name}/RECORD"]
    for rel in files:
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("# code\n")
    (info / "RECORD").write_text("".join(f"{rel},,\n" for rel in record))


@pytest.fixture
def pandas_site(tmp_path: Path) -> Path:
    """pandas with python-dateutil and six, as pip installs them beside it."""
    site = tmp_path / "site"
    dist(site, "pandas", "2.3.3", ["numpy>=1.26", "python-dateutil>=2.8.2", "pytz>=2020.1"])
    dist(
        site,
        "python-dateutil",
        "2.9.0.post0",
        ["six>=1.5"],
        ["dateutil/__init__.py", "dateutil/tz/__init__.py"],
    )
    dist(site, "six", "1.17.0", files=["six.py"])
    return site


def test_pandas_dependencies_are_left_to_the_runtime(pandas_site: Path) -> None:
    decision = runtime_sdk.decide(pandas_site, "pandas==2.3.3\n", RUNTIME, python="3.13")
    assert decision.dropped == {"python-dateutil": "2.9.0.post0", "six": "1.17.0"}
    assert decision.shipped == {}


def test_a_requirement_the_runtime_misses_is_shipped(pandas_site: Path) -> None:
    """The function's own line asks for more than the runtime has: that one ships, named."""
    decision = runtime_sdk.decide(
        pandas_site, "pandas\npython-dateutil>=2.10\n", RUNTIME, python="3.13"
    )
    assert "python-dateutil" in decision.shipped
    assert "requirements.txt requires python-dateutil>=2.10" in decision.shipped["python-dateutil"]
    assert "2.9.0.post0" in decision.shipped["python-dateutil"]
    assert decision.dropped == {"six": "1.17.0"}


def test_a_dependency_s_requirement_counts_as_much_as_the_function_s(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist(site, "requests", "2.32.5", ["urllib3<3,>=2.9"])
    dist(site, "urllib3", "2.9.1", files=["urllib3/__init__.py"])
    decision = runtime_sdk.decide(site, "requests\n", RUNTIME, python="3.13")
    assert decision.shipped == {
        "urllib3": "requests 2.32.5 requires urllib3<3,>=2.9; the runtime has 2.5.0"
    }
    assert decision.dropped == {}


def test_a_shipped_boto3_takes_its_botocore_and_s3transfer_along(tmp_path: Path) -> None:
    """Shipping one distribution adds its requirements: never a new boto3 beside the runtime's
    older botocore (the mismatch that breaks a function at import)."""
    site = tmp_path / "site"
    dist(site, "boto3", "1.40.0", ["botocore<1.41.0,>=1.40.0", "s3transfer<0.14.0,>=0.13.0"])
    dist(site, "botocore", "1.40.0", ["urllib3!=2.2.0,<3,>=1.25.4", "jmespath<2.0.0,>=0.7.1"])
    dist(site, "s3transfer", "0.13.1", ["botocore<2.0a.0,>=1.37.4"])
    dist(site, "jmespath", "1.0.1")
    dist(site, "urllib3", "2.5.0")
    decision = runtime_sdk.decide(site, "boto3>=1.40\n", RUNTIME, python="3.13")
    assert set(decision.shipped) == {"boto3", "botocore"}
    assert decision.dropped == {"jmespath": "1.0.1", "s3transfer": "0.13.1", "urllib3": "2.5.0"}


def test_an_unpinned_sdk_is_left_to_the_runtime(tmp_path: Path) -> None:
    """`boto3` with no version: the runtime's satisfies it, whatever pip installed."""
    site = tmp_path / "site"
    dist(site, "boto3", "1.44.0", ["botocore<1.45.0,>=1.44.0"])
    dist(site, "botocore", "1.44.0")
    decision = runtime_sdk.decide(site, "boto3\n", RUNTIME, python="3.13")
    assert decision.dropped == {"boto3": "1.38.36", "botocore": "1.38.36"}


def test_markers_are_evaluated_for_the_target_s_python(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist(site, "thing", "1.0", ['urllib3>=3 ; python_version < "3.10"', 'six>=9 ; extra == "x"'])
    dist(site, "urllib3", "2.5.0")
    dist(site, "six", "1.17.0")
    decision = runtime_sdk.decide(site, "thing\n", RUNTIME, python="3.13")
    assert decision.dropped == {"six": "1.17.0", "urllib3": "2.5.0"}
    # Asking for the extra brings its requirement in.
    decision = runtime_sdk.decide(site, "thing[x]\n", RUNTIME, python="3.13")
    assert "six" in decision.shipped


def test_a_direct_reference_is_never_the_runtime_s(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist(site, "six", "1.17.0")
    decision = runtime_sdk.decide(site, "six @ file:///tmp/six.whl\n", RUNTIME, python="3.13")
    assert "six" in decision.shipped


def test_remove_takes_the_files_bytecode_and_empty_folders(pandas_site: Path) -> None:
    (pandas_site / "__pycache__").mkdir()
    (pandas_site / "__pycache__" / "six.cpython-313.pyc").write_bytes(b"")
    (pandas_site / "dateutil" / "__pycache__").mkdir()
    (pandas_site / "dateutil" / "__pycache__" / "__init__.cpython-313.pyc").write_bytes(b"")
    (pandas_site / "bin").mkdir()
    removed = runtime_sdk.remove(pandas_site, ["python-dateutil", "six"])
    assert "six.py" in removed and "__pycache__/six.cpython-313.pyc" in removed
    left = sorted(p.relative_to(pandas_site).as_posix() for p in pandas_site.rglob("*"))
    assert left == [
        "bin",
        "pandas-2.3.3.dist-info",
        *(f"pandas-2.3.3.dist-info/{name}" for name in ("METADATA", "RECORD")),
    ]


def test_pins_are_the_stand_ins_locked_sdk() -> None:
    """What the packager assumes is exactly what the stand-ins install, for every Python."""
    source = project_root() / locks.STANDIN_REQUIREMENTS
    wanted = {
        req.name: str(req.specifier).removeprefix("==")
        for line in source.read_text().splitlines()
        if (req := naming.requirement(line))
    }
    assert set(wanted) == {
        "boto3",
        "botocore",
        "s3transfer",
        "jmespath",
        "python-dateutil",
        "six",
        "urllib3",
    }
    for python in ("3.11", "3.12", "3.13", "3.14"):
        assert runtime_sdk.pins(python) == wanted
