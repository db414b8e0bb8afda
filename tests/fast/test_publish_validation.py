"""Bad input: one clear GdalLambdaError, raised before the first request, the manifest untouched.

moto would accept most of these (a 300-character description, 16 runtimes, an unzipped size
of 300 MB): the proxy in front of it proves the tool refused them without sending anything.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from publish_support import (
    Fault,
    FaultProxy,
    free_port,
    make_big_unzipped_zip,
    make_zip,
    variant,
)
from rich.console import Console

from gdal_lambda import publish as pub
from gdal_lambda.errors import GdalLambdaError, MissingZip

MANIFEST = '{"gdal313-py312-geo": {"us-east-1": {"version": 1, "arn": "arn:kept"}}}\n'


def quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


def attempt(
    tmp_path: Path,
    proxy_url: str,
    *,
    regions: str = "us-east-1",
    access: dict[str, Any] | None = None,
    publish: dict[str, Any] | None = None,
    **spec: Any,
) -> None:
    """What `invoke publish` does, from arguments to the end: spec, regions, access, publish."""
    spec.setdefault("zip_path", make_zip(tmp_path / "dist" / "layer.zip"))
    parts = {k: spec.pop(k) for k in ("target", "recipe", "arch") if k in spec}
    chosen = variant(spec.pop("line", "3.13"), spec.pop("python", "3.12"), **parts)
    layer = pub.layer_spec(chosen, **spec)
    pub.publish(
        layer,
        pub.resolve_regions(regions),
        access=pub.Access.parse(**(access or {})),
        settings=pub.Settings(endpoint_url=proxy_url),
        manifest=tmp_path / "layers.json",
        out=quiet(),
        **(publish or {}),
    )


def _huge(tmp_path: Path) -> dict[str, Any]:
    return {"zip_path": make_big_unzipped_zip(tmp_path / "huge.zip", 251 * 1024 * 1024)}


def _built_for(arch: str, *, elf: bytes | None = None):
    """A layer zip whose manifest says it was built for ``arch`` (or, with ``elf``, holding that
    ELF file as bin/tool and no manifest)."""

    def make(tmp_path: Path) -> dict[str, Any]:
        path = tmp_path / "dist" / f"built-for-{arch}.zip"
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w") as archive:
            if elf is None:
                archive.writestr("share/gdal-lambda/manifest.json", json.dumps({"arch": arch}))
            else:
                archive.writestr("bin/tool", elf)
        return {"zip_path": path}

    return make


def _arm64_elf() -> bytes:
    """This interpreter's own ELF file with e_machine set to EM_AARCH64 (183)."""
    data = bytearray(Path(sys.executable).resolve().read_bytes()[:4096])
    data[18:20] = (183).to_bytes(2, "little")
    return bytes(data)


def _not_a_zip(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "broken.zip"
    path.write_bytes(b"this is not a zip")
    return {"zip_path": path}


CASES: dict[str, tuple[Callable[[Path], dict[str, Any]], str]] = {
    "name characters": (lambda t: {"name": "gdal 3.13/geo"}, "only letters, digits, '-' and '_'"),
    "name length": (lambda t: {"name": "g" * 141}, "141 characters; Lambda allows at most 140"),
    "recipe makes a bad name": (lambda t: {"recipe": "geo.extra"}, "is not valid"),
    "description": (lambda t: {"description": "d" * 200}, "shorten --description to at most 184"),
    "licence": (lambda t: {"license": "l" * 513}, "Lambda allows at most 512"),
    "too many runtimes": (
        lambda t: {
            "runtimes": [f"python3.{n}" for n in range(6, 16)]
            + ["java8", "java11", "java17", "java21", "nodejs20.x", "nodejs22.x"]
        },
        "16 compatible runtimes given; Lambda allows at most 15",
    ),
    "unknown runtime": (lambda t: {"runtimes": ["python3.99"]}, "unknown Lambda runtime"),
    "architecture": (
        lambda t: {"arch": "sparc"},
        "unknown architecture 'sparc': known ones are x86_64, arm64",
    ),
    "arm64 zip under an x86_64 name": (
        _built_for("arm64"),
        "built-for-arm64.zip was built for arm64, but layer gdal313-py312-geo is published for "
        "x86_64: publish it with --arch arm64",
    ),
    "x86_64 zip under an arm64 name": (
        lambda t: {**_built_for("x86_64")(t), "arch": "arm64"},
        "was built for x86_64, but layer gdal313-py312-geo-arm64 is published for arm64",
    ),
    "arm64 binaries under an x86_64 name": (
        _built_for("arm64", elf=_arm64_elf()),
        "holds EM_AARCH64 binaries, but layer gdal313-py312-geo is published for x86_64 "
        "(EM_X86_64)",
    ),
    "unknown line": (lambda t: {"line": "3.99"}, "unknown GDAL line '3.99'"),
    "unknown target": (lambda t: {"target": "alpine"}, "unknown target 'alpine'"),
    "unknown region": (lambda t: {"regions": "eu-west-9"}, "unknown region 'eu-west-9'"),
    "typo region": (lambda t: {"regions": "us-east1"}, "did you mean us-east-1"),
    "partitions mixed": (lambda t: {"regions": "us-east-1,cn-north-1"}, "span partitions"),
    "no region": (lambda t: {"regions": " , "}, "no region given"),
    "unzipped size": (_huge, "unzips to 251.0 MiB; Lambda allows at most 250 MiB"),
    "not a zip": (_not_a_zip, "is not a readable zip file"),
    "missing zip": (
        lambda t: {"zip_path": None, "dist": t / "empty"},
        "empty/gdal3.13-py3.12-geo.zip does not exist",
    ),
    "missing stand-in zip": (
        lambda t: {"zip_path": None, "dist": t / "empty", "target": "debian13", "python": "3.13"},
        "empty/gdal3.13-py3.13-geo-debian13.zip does not exist",
    ),
    "missing explicit zip": (
        lambda t: {"zip_path": t / "nowhere.zip"},
        "nowhere.zip does not exist",
    ),
    "public and org": (
        lambda t: {"access": {"public": True, "org_id": "o-abcdefghij"}},
        "--public grants every AWS account already",
    ),
    "org id": (lambda t: {"access": {"org_id": "acme"}}, "organisation id 'acme' is not valid"),
    "account id": (
        lambda t: {"access": {"accounts": ["123456789012,12345"]}},
        "account id '12345' is not valid",
    ),
    "bucket name": (
        lambda t: {"publish": {"bucket": "Layers_{region}"}},
        "is not a valid S3 bucket name",
    ),
    "bucket template": (
        lambda t: {"publish": {"bucket": "layers-{owner}"}},
        "bucket template 'layers-{owner}' is not valid",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_error_before_any_request(
    case: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    make, expected = CASES[case]
    (tmp_path / "layers.json").write_text(MANIFEST)
    kwargs = make(tmp_path)

    with pytest.raises(GdalLambdaError) as raised:
        attempt(tmp_path, proxy.url, **kwargs)

    message = str(raised.value)
    assert expected in message
    assert "\n" not in message
    assert proxy.seen == []
    assert (tmp_path / "layers.json").read_text() == MANIFEST


def test_a_broken_manifest_stops_the_run_before_any_request(
    proxy: FaultProxy, tmp_path: Path
) -> None:
    (tmp_path / "layers.json").write_text('{"gdal313-py312-geo": {"us-east-1": ')

    with pytest.raises(GdalLambdaError, match=r"layers.json is not valid JSON .*nothing was"):
        attempt(tmp_path, proxy.url)

    assert proxy.seen == []
    assert (tmp_path / "layers.json").read_text() == '{"gdal313-py312-geo": {"us-east-1": '


def test_no_credentials_is_one_line(
    proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    (tmp_path / "layers.json").write_text(MANIFEST)

    with pytest.raises(GdalLambdaError, match="no AWS credentials found: set AWS_PROFILE"):
        attempt(tmp_path, proxy.url)

    assert proxy.seen == []  # botocore could not sign: nothing left the process
    assert (tmp_path / "layers.json").read_text() == MANIFEST


def test_an_unreachable_endpoint_is_one_line(
    aws: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GDAL_LAMBDA_MAX_ATTEMPTS", "2")
    port = free_port()  # nothing listens there
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    (tmp_path / "layers.json").write_text(MANIFEST)

    with pytest.raises(GdalLambdaError) as raised:
        attempt(tmp_path, f"http://127.0.0.1:{port}")

    assert f"cannot reach the AWS endpoint http://127.0.0.1:{port}" in str(raised.value)
    assert (tmp_path / "layers.json").read_text() == MANIFEST


def test_aws_endpoint_url_from_boto3s_own_variable_is_honoured(
    moto: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto)
    layer = pub.layer_spec(variant(), zip_path=make_zip(tmp_path / "l.zip"))

    report = pub.publish(
        layer, ["eu-west-1"], manifest=tmp_path / "m.json", out=quiet(), settings=None
    )

    assert report.results[0].status == "published"
    assert pub.Settings.from_env(os.environ).where == moto


def test_the_gdal_lambda_endpoint_variable_wins(
    proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("GDAL_LAMBDA_ENDPOINT_URL", proxy.url)
    layer = pub.layer_spec(variant(), zip_path=make_zip(tmp_path / "l.zip"))

    pub.publish(layer, ["eu-west-1"], manifest=tmp_path / "m.json", out=quiet())

    assert {s.region for s in proxy.seen if s.service == "lambda"} == {"eu-west-1"}


@pytest.mark.parametrize(
    ("env", "options", "expected"),
    [
        ({}, {"endpoint_url": "localhost:4566"}, "endpoint URL 'localhost:4566' is not valid"),
        ({}, {"retry_mode": "legacy"}, "retry mode 'legacy' is not one of standard, adaptive"),
        ({}, {"jobs": 0}, "--jobs is 0: it must be at least 1"),
        ({}, {"max_attempts": 0}, "max attempts is 0: --max-attempts"),
        ({"GDAL_LAMBDA_MAX_ATTEMPTS": "0"}, {}, "max attempts is 0: --max-attempts"),
        ({"GDAL_LAMBDA_MAX_ATTEMPTS": "x"}, {}, "GDAL_LAMBDA_MAX_ATTEMPTS='x' is not an integer"),
        ({"GDAL_LAMBDA_RETRY_MODE": "legacy"}, {}, "retry mode 'legacy' is not one of"),
        ({"GDAL_LAMBDA_DIRECT_UPLOAD_LIMIT": "-1"}, {}, "must be 0 or more bytes"),
    ],
)
def test_bad_settings(env: dict[str, str], options: dict[str, Any], expected: str) -> None:
    """Through from_env, as the CLI builds them: 0 is a value to refuse, not "use the default"."""
    with pytest.raises(GdalLambdaError, match=re.escape(expected)):
        pub.Settings.from_env(env, **options)


def test_settings_from_an_explicit_mapping() -> None:
    env = {
        "GDAL_LAMBDA_ENDPOINT_URL": "http://127.0.0.1:1",
        "GDAL_LAMBDA_MAX_ATTEMPTS": "2",
        "GDAL_LAMBDA_RETRY_MODE": "adaptive",
        "GDAL_LAMBDA_DIRECT_UPLOAD_LIMIT": "0",
    }
    settings = pub.Settings.from_env(env)
    assert (settings.endpoint_url, settings.max_attempts, settings.retry_mode) == (
        "http://127.0.0.1:1",
        2,
        "adaptive",
    )
    assert settings.direct_upload_limit == 0  # 0 is a limit (everything through S3), not unset
    explicit = pub.Settings.from_env(env, endpoint_url="http://x:2", max_attempts=7, jobs=1)
    assert (explicit.endpoint_url, explicit.max_attempts, explicit.jobs) == ("http://x:2", 7, 1)
    assert pub.Settings.from_env({}) == pub.Settings()


def test_a_missing_zip_is_a_typed_error_carrying_the_variant(tmp_path: Path) -> None:
    chosen = variant("3.13", "3.13", target="debian13")

    with pytest.raises(MissingZip) as raised:
        pub.layer_spec(chosen, dist=tmp_path)

    assert raised.value.variant == chosen
    assert raised.value.kind == "layer-zip"
    assert raised.value.what == str(tmp_path / "gdal3.13-py3.13-geo-debian13.zip")


def test_region_all_is_the_commercial_partition() -> None:
    regions = pub.resolve_regions("all")
    assert regions.everything
    assert {"us-east-1", "eu-west-1", "ap-southeast-2", "sa-east-1"} <= set(regions)
    assert not [r for r in regions if r.startswith(("cn-", "us-gov-", "us-iso"))]
    assert pub.resolve_regions("eu-west-1, us-east-1,eu-west-1") == ["eu-west-1", "us-east-1"]


def test_a_missing_profile_is_one_line(
    proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")

    with pytest.raises(GdalLambdaError, match=r"\(no-such-profile\) could not be found: check"):
        attempt(tmp_path, proxy.url)

    assert proxy.seen == []


def test_rejected_credentials_are_one_line(proxy: FaultProxy, tmp_path: Path) -> None:
    proxy.add(Fault(status=403, code="InvalidClientTokenId", service="sts"))
    (tmp_path / "layers.json").write_text(MANIFEST)

    with pytest.raises(GdalLambdaError, match="AWS rejected the credentials: InvalidClientTokenId"):
        attempt(tmp_path, proxy.url)

    assert [s.service for s in proxy.seen] == ["sts"]  # nothing after the identity check
    assert (tmp_path / "layers.json").read_text() == MANIFEST
