"""Publishing layers against moto in server mode (a real HTTP endpoint), through a logging proxy.

Every test reads the result back with its own boto3 client straight from moto: the manifest and
the tool's report are checked against what the server holds, not against themselves.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from publish_support import FAKE_ACCOUNT, FaultProxy, make_zip, variant
from rich.console import Console

from gdal_lambda import publish as pub

NAME = "gdal313-py312-geo"
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]


def quiet() -> Console:
    return Console(file=io.StringIO(), width=200, highlight=False)


def lam(endpoint: str, region: str) -> Any:
    return boto3.client("lambda", region_name=region, endpoint_url=endpoint)


def s3(endpoint: str, region: str) -> Any:
    return boto3.client("s3", region_name=region, endpoint_url=endpoint)


def versions(endpoint: str, region: str, name: str = NAME) -> list[dict[str, Any]]:
    try:
        found = lam(endpoint, region).list_layer_versions(LayerName=name)["LayerVersions"]
    except botocore.exceptions.ClientError:
        return []
    return sorted(found, key=lambda v: v["Version"])


def policy(endpoint: str, region: str, version: int, name: str = NAME) -> dict[str, Any] | None:
    try:
        answer = lam(endpoint, region).get_layer_version_policy(
            LayerName=name, VersionNumber=version
        )
    except botocore.exceptions.ClientError as exc:
        assert exc.response["Error"]["Code"] == "ResourceNotFoundException"
        return None
    return json.loads(answer["Policy"])


def layer(
    tmp_path: Path, payload: bytes = b"one", arch: str | None = None, **kwargs: Any
) -> pub.Layer:
    zip_path = make_zip(tmp_path / "dist" / "layer.zip", payload)
    return pub.layer_spec(variant(arch=arch), zip_path=zip_path, **kwargs)


def run(
    spec: pub.Layer,
    proxy: FaultProxy,
    tmp_path: Path,
    regions: list[str] = REGIONS,
    settings: dict[str, Any] | None = None,
    **kwargs: Any,
) -> pub.Report:
    kwargs.setdefault("manifest", tmp_path / "layers.json")
    kwargs.setdefault("out", quiet())
    return pub.publish(
        spec,
        pub.resolve_regions(regions),
        settings=pub.Settings.from_env(os.environ, endpoint_url=proxy.url, **(settings or {})),
        **kwargs,
    )


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------------
# publish


def test_publishes_every_region_directly_and_records_the_arns(
    proxy: FaultProxy, moto: str, tmp_path: Path
) -> None:
    spec = layer(tmp_path)
    report = run(spec, proxy, tmp_path)

    digest = sha(spec.zip_path)
    assert [r.status for r in report.results] == ["published"] * 3
    manifest = json.loads((tmp_path / "layers.json").read_text())
    assert sorted(manifest) == [NAME]
    assert sorted(manifest[NAME]) == sorted(REGIONS)
    markdown = (tmp_path / "layers.md").read_text()
    for region in REGIONS:
        [version] = versions(moto, region)
        assert f"sha256:{digest}" in version["Description"]
        assert version["CompatibleRuntimes"] == ["python3.12"]
        assert version["CompatibleArchitectures"] == ["x86_64"]
        # The fake zip carries no SBOM: nothing is asserted rather than a licence guessed.
        assert version["LicenseInfo"] == "NOASSERTION"
        entry = manifest[NAME][region]
        assert entry == {
            "name": NAME,
            "version": 1,
            "arn": version["LayerVersionArn"],
            "sha256": digest,
            "date": version["CreatedDate"],
            "license": "NOASSERTION",
        }
        row = f"| {NAME} | {region} | 1 | `{version['LayerVersionArn']}` | NOASSERTION |"
        assert row in markdown
        assert policy(moto, region, 1) is None  # private by default
    assert not [s for s in proxy.seen if s.service == "s3"]  # small zip: direct upload


def test_a_second_run_publishes_nothing(proxy: FaultProxy, moto: str, tmp_path: Path) -> None:
    spec = layer(tmp_path)
    run(spec, proxy, tmp_path)
    proxy.clear()

    report = run(spec, proxy, tmp_path)

    assert [r.status for r in report.results] == ["unchanged"] * 3
    assert [r.version for r in report.results] == [1, 1, 1]
    assert proxy.seen and not [s for s in proxy.seen if s.writes]
    assert all(len(versions(moto, r)) == 1 for r in REGIONS)


def test_a_changed_zip_becomes_a_new_version(proxy: FaultProxy, moto: str, tmp_path: Path) -> None:
    run(layer(tmp_path, b"one"), proxy, tmp_path)
    spec = layer(tmp_path, b"two")

    report = run(spec, proxy, tmp_path)

    assert [(r.status, r.version) for r in report.results] == [("published", 2)] * 3
    manifest = json.loads((tmp_path / "layers.json").read_text())
    for region in REGIONS:
        assert manifest[NAME][region]["version"] == 2
        assert manifest[NAME][region]["sha256"] == sha(spec.zip_path)
        assert [v["Version"] for v in versions(moto, region)] == [1, 2]


def test_new_runtimes_make_a_new_version_even_for_the_same_zip(
    proxy: FaultProxy, moto: str, tmp_path: Path
) -> None:
    run(layer(tmp_path), proxy, tmp_path, regions=["us-east-1"])
    spec = layer(tmp_path, runtimes=["python3.12", "python3.13"])

    [result] = run(spec, proxy, tmp_path, regions=["us-east-1"]).results

    assert (result.status, result.version) == ("published", 2)
    assert versions(moto, "us-east-1")[-1]["CompatibleRuntimes"] == ["python3.12", "python3.13"]


def test_arm64_layers_get_the_architecture_suffix(
    proxy: FaultProxy, moto: str, tmp_path: Path
) -> None:
    spec = layer(tmp_path, arch="arm64")
    assert spec.name == "gdal313-py312-geo-arm64"

    run(spec, proxy, tmp_path, regions=["us-east-1"])

    [version] = versions(moto, "us-east-1", spec.name)
    assert version["CompatibleArchitectures"] == ["arm64"]


def test_large_zips_go_through_a_private_bucket_that_is_emptied_after(
    proxy: FaultProxy, moto: str, tmp_path: Path
) -> None:
    spec = layer(tmp_path)
    report = run(spec, proxy, tmp_path, regions=["us-east-1", "eu-west-1"], direct_limit=10)

    assert [r.status for r in report.results] == ["published"] * 2
    for region in ("us-east-1", "eu-west-1"):
        bucket = f"gdal-lambda-layers-{FAKE_ACCOUNT}-{region}"
        client = s3(moto, region)
        block = client.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert block == {
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        }
        location = client.get_bucket_location(Bucket=bucket)["LocationConstraint"]
        assert location == (None if region == "us-east-1" else region)
        assert client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
        assert len(versions(moto, region)) == 1
    uploads = [
        s for s in proxy.seen if s.service == "s3" and s.method == "PUT" and ".zip" in s.path
    ]
    assert len(uploads) == 2


def test_keep_upload_and_the_env_threshold(
    proxy: FaultProxy, moto: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GDAL_LAMBDA_DIRECT_UPLOAD_LIMIT", "10")
    spec = layer(tmp_path)

    run(spec, proxy, tmp_path, regions=["eu-west-1"], keep_upload=True)

    bucket = f"gdal-lambda-layers-{FAKE_ACCOUNT}-eu-west-1"
    keys = [o["Key"] for o in s3(moto, "eu-west-1").list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == [f"{NAME}/{sha(spec.zip_path)}.zip"]
    # the bucket exists now: a second upload reuses it
    run(layer(tmp_path, b"two"), proxy, tmp_path, regions=["eu-west-1"], keep_upload=True)
    assert len(s3(moto, "eu-west-1").list_objects_v2(Bucket=bucket)["Contents"]) == 2


def test_a_bucket_owned_by_another_account_fails_that_region_only(
    proxy: FaultProxy, moto: str, tmp_path: Path
) -> None:
    sts = boto3.client("sts", region_name="us-east-1", endpoint_url=moto)
    other = sts.assume_role(RoleArn="arn:aws:iam::111111111111:role/x", RoleSessionName="squat")
    keys = other["Credentials"]
    squatter = boto3.client(
        "s3",
        region_name="eu-west-1",
        endpoint_url=moto,
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
    )
    taken = f"gdal-lambda-layers-{FAKE_ACCOUNT}-eu-west-1"
    squatter.create_bucket(
        Bucket=taken, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )

    with pytest.raises(pub.GdalLambdaError) as raised:
        run(layer(tmp_path), proxy, tmp_path, regions=["us-east-1", "eu-west-1"], direct_limit=10)

    assert "1 of 2 regions" in str(raised.value)
    assert f"S3 bucket {taken} belongs to another account" in str(raised.value)
    assert "--bucket" in str(raised.value)
    assert len(versions(moto, "us-east-1")) == 1 and versions(moto, "eu-west-1") == []
    manifest = json.loads((tmp_path / "layers.json").read_text())
    assert sorted(manifest[NAME]) == ["us-east-1"]


def test_a_bucket_template_picks_another_name(proxy: FaultProxy, moto: str, tmp_path: Path) -> None:
    run(
        layer(tmp_path),
        proxy,
        tmp_path,
        regions=["eu-west-1"],
        direct_limit=10,
        bucket="acme-layers-{region}",
        keep_upload=True,
    )

    assert s3(moto, "eu-west-1").list_objects_v2(Bucket="acme-layers-eu-west-1")["KeyCount"] == 1


# ------------------------------------------------------------------------------------------------
# permissions


def statements(endpoint: str, region: str, version: int) -> list[dict[str, Any]]:
    found = policy(endpoint, region, version)
    return list(found["Statement"]) if found else []


def test_public_grants_get_layer_version_to_everyone_once(
    proxy: FaultProxy, moto: str, tmp_path: Path
) -> None:
    spec = layer(tmp_path)
    public = pub.Access.parse(public=True)
    report = run(spec, proxy, tmp_path, regions=["us-east-1", "eu-west-1"], access=public)
    assert {r.access for r in report.results} == {"public"}

    again = run(spec, proxy, tmp_path, regions=["us-east-1", "eu-west-1"], access=public)

    assert [r.status for r in again.results] == ["unchanged"] * 2
    assert {r.access for r in again.results} == {"public"}
    for region in ("us-east-1", "eu-west-1"):
        [statement] = statements(moto, region, 1)  # moto would store a duplicate: we did not ask
        assert statement["Sid"] == "gdal-lambda-public"
        assert statement["Principal"] == "*"
        assert statement["Action"] == "lambda:GetLayerVersion"


def test_organisation_and_accounts(proxy: FaultProxy, moto: str, tmp_path: Path) -> None:
    access = pub.Access.parse(
        org_id="o-abcdefghij", accounts=["111111111111,222222222222", "111111111111"]
    )
    run(layer(tmp_path), proxy, tmp_path, regions=["us-east-1"], access=access)

    found = {s["Sid"]: s for s in statements(moto, "us-east-1", 1)}
    assert sorted(found) == [
        "gdal-lambda-account-111111111111",
        "gdal-lambda-account-222222222222",
        "gdal-lambda-org-o-abcdefghij",
    ]
    org = found["gdal-lambda-org-o-abcdefghij"]
    assert org["Principal"] == "*"
    # AWS states it as a PrincipalOrgID condition, moto as OrganizationId: either names the org
    assert "o-abcdefghij" in json.dumps({k: v for k, v in org.items() if k != "Sid"})
    assert "111111111111" in json.dumps(found["gdal-lambda-account-111111111111"]["Principal"])


def test_a_rerun_adds_missing_grants_to_an_unchanged_version(
    proxy: FaultProxy, moto: str, tmp_path: Path
) -> None:
    spec = layer(tmp_path)
    run(spec, proxy, tmp_path, regions=["us-east-1"])
    assert statements(moto, "us-east-1", 1) == []

    [result] = run(
        spec, proxy, tmp_path, regions=["us-east-1"], access=pub.Access.parse(public=True)
    ).results

    assert result.status == "unchanged"
    assert "granted gdal-lambda-public" in result.detail
    assert [s["Sid"] for s in statements(moto, "us-east-1", 1)] == ["gdal-lambda-public"]


def test_an_existing_statement_is_not_an_error(
    proxy: FaultProxy, moto: str, tmp_path: Path
) -> None:
    """A statement someone else (or a concurrent run) added with our id is left alone."""
    spec = layer(tmp_path)
    run(spec, proxy, tmp_path, regions=["us-east-1"])
    lam(moto, "us-east-1").add_layer_version_permission(
        LayerName=NAME,
        VersionNumber=1,
        StatementId="gdal-lambda-public",
        Action="lambda:GetLayerVersion",
        Principal="*",
    )

    [result] = run(
        spec, proxy, tmp_path, regions=["us-east-1"], access=pub.Access.parse(public=True)
    ).results

    assert result.status == "unchanged" and result.access == "public"
    assert len(statements(moto, "us-east-1", 1)) == 1


# ------------------------------------------------------------------------------------------------
# manifest


def test_the_manifest_is_merged_not_replaced(proxy: FaultProxy, moto: str, tmp_path: Path) -> None:
    old = {
        "gdal310-py311-geo": {
            "us-east-1": {
                "name": "gdal310-py311-geo",
                "version": 7,
                "arn": "arn:aws:lambda:us-east-1:123456789012:layer:gdal310-py311-geo:7",
                "sha256": "a" * 64,
                "date": "2025-01-01T00:00:00.000+0000",
            }
        },
        NAME: {
            "sa-east-1": {
                "name": NAME,
                "version": 3,
                "arn": f"arn:aws:lambda:sa-east-1:123456789012:layer:{NAME}:3",
                "sha256": "b" * 64,
                "date": "2025-01-01T00:00:00.000+0000",
            }
        },
    }
    (tmp_path / "layers.json").write_text(json.dumps(old))

    run(layer(tmp_path), proxy, tmp_path, regions=["us-east-1"])

    merged = json.loads((tmp_path / "layers.json").read_text())
    assert merged["gdal310-py311-geo"] == old["gdal310-py311-geo"]
    assert merged[NAME]["sa-east-1"] == old[NAME]["sa-east-1"]
    assert merged[NAME]["us-east-1"]["version"] == 1
    markdown = (tmp_path / "layers.md").read_text()
    assert markdown.startswith(pub.MD_START) and markdown.rstrip().endswith(pub.MD_END)
    assert "gdal310-py311-geo:7" in markdown and f"{NAME}:3" in markdown and f"{NAME}:1" in markdown


def test_the_manifest_location_comes_from_the_environment_it_is_given(
    proxy: FaultProxy, moto: str, tmp_path: Path
) -> None:
    book = pub.Manifest(None, env={"GDAL_LAMBDA_MANIFEST": str(tmp_path / "out" / "arns.json")})

    run(layer(tmp_path), proxy, tmp_path, regions=["us-east-1"], manifest=book)

    assert NAME in json.loads((tmp_path / "out" / "arns.json").read_text())
    assert (tmp_path / "out" / "arns.md").is_file()


# ------------------------------------------------------------------------------------------------
# dry run


def test_dry_run_reads_but_writes_nothing(proxy: FaultProxy, moto: str, tmp_path: Path) -> None:
    run(layer(tmp_path, b"one"), proxy, tmp_path, regions=["us-east-1"])
    before = (tmp_path / "layers.json").read_bytes()
    proxy.clear()
    out = quiet()

    report = run(
        layer(tmp_path, b"two"),
        proxy,
        tmp_path,
        dry_run=True,
        direct_limit=10,
        access=pub.Access.parse(public=True),
        out=out,
    )

    assert [r.status for r in report.results] == ["would publish"] * 3
    assert "after v1" in report.by_region()["us-east-1"].detail
    assert "as the first version" in report.by_region()["eu-west-1"].detail
    assert "would grant gdal-lambda-public" in report.by_region()["eu-west-1"].detail
    assert f"s3://gdal-lambda-layers-{FAKE_ACCOUNT}-eu-west-1" in report.results[1].detail
    assert proxy.seen and not [s for s in proxy.seen if s.writes]
    assert (tmp_path / "layers.json").read_bytes() == before
    assert len(versions(moto, "us-east-1")) == 1 and versions(moto, "eu-west-1") == []
    with pytest.raises(botocore.exceptions.ClientError):
        s3(moto, "eu-west-1").head_bucket(Bucket=f"gdal-lambda-layers-{FAKE_ACCOUNT}-eu-west-1")
    assert "dry run" in out.file.getvalue()  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------------------
# list and prune


def test_list_shows_the_latest_version_per_region(
    proxy: FaultProxy, moto: str, tmp_path: Path
) -> None:
    run(layer(tmp_path, b"one"), proxy, tmp_path, regions=["us-east-1", "eu-west-1"])
    run(layer(tmp_path, b"two"), proxy, tmp_path, regions=["us-east-1"])
    proxy.clear()
    out = quiet()

    rows = pub.list_layers(
        pub.Scope.of("3.13", "3.12"),
        pub.resolve_regions(REGIONS),
        settings=pub.Settings(endpoint_url=proxy.url),
        out=out,
    )

    found = {r.region: (r.version, r.versions) for r in rows}
    assert found == {"us-east-1": (2, 2), "eu-west-1": (1, 1), "ap-southeast-2": (None, 0)}
    text = out.file.getvalue()  # type: ignore[attr-defined]
    assert f"arn:aws:lambda:us-east-1:{FAKE_ACCOUNT}:layer:{NAME}:2" in text
    assert "not published" in text
    assert proxy.seen and not [s for s in proxy.seen if s.writes]


def _publish_versions(moto: str, name: str, region: str, count: int) -> None:
    client = lam(moto, region)
    for index in range(count):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("python/x.py", f"x = {index}")
        client.publish_layer_version(
            LayerName=name, Description=f"v{index}", Content={"ZipFile": buffer.getvalue()}
        )


def test_prune_is_a_dry_run_unless_yes_and_keeps_the_newest(
    proxy: FaultProxy, moto: str, tmp_path: Path
) -> None:
    regions = ["us-east-1", "eu-west-1"]
    for region in regions:
        _publish_versions(moto, NAME, region, 4)
    _publish_versions(moto, "someone-elses-layer", "us-east-1", 3)
    _publish_versions(moto, "gdal310-py311-geo", "us-east-1", 3)
    settings = pub.Settings(endpoint_url=proxy.url)
    scope = pub.Scope.of("3.13", "3.12")
    proxy.clear()

    rows = pub.prune(
        scope, regions, keep=2, settings=settings, out=quiet(), manifest=tmp_path / "none.json"
    )

    assert sorted((r.region, r.version, r.action) for r in rows) == [
        ("eu-west-1", 1, "would delete"),
        ("eu-west-1", 2, "would delete"),
        ("us-east-1", 1, "would delete"),
        ("us-east-1", 2, "would delete"),
    ]
    assert not [s for s in proxy.seen if s.writes]
    assert all(len(versions(moto, r)) == 4 for r in regions)

    rows = pub.prune(
        scope,
        regions,
        keep=2,
        yes=True,
        settings=settings,
        out=quiet(),
        manifest=tmp_path / "none.json",
    )

    assert {r.action for r in rows} == {"deleted"}
    assert all([v["Version"] for v in versions(moto, r)] == [3, 4] for r in regions)
    assert len(versions(moto, "us-east-1", "someone-elses-layer")) == 3
    assert len(versions(moto, "us-east-1", "gdal310-py311-geo")) == 3


def test_prune_without_names_touches_only_our_layers(
    proxy: FaultProxy, moto: str, tmp_path: Path
) -> None:
    _publish_versions(moto, "someone-elses-layer", "us-east-1", 3)
    _publish_versions(moto, "gdal310-py311-geo", "us-east-1", 3)
    _publish_versions(moto, NAME, "us-east-1", 2)

    pub.prune(
        pub.Scope.of(),
        ["us-east-1"],
        keep=1,
        yes=True,
        out=quiet(),
        settings=pub.Settings(endpoint_url=proxy.url),
        manifest=tmp_path / "m.json",
    )

    assert len(versions(moto, "us-east-1", "someone-elses-layer")) == 3
    assert [v["Version"] for v in versions(moto, "us-east-1", "gdal310-py311-geo")] == [3]
    assert [v["Version"] for v in versions(moto, "us-east-1", NAME)] == [2]


def test_prune_by_prefix_and_keeps_what_the_manifest_records(
    proxy: FaultProxy, moto: str, tmp_path: Path
) -> None:
    run(layer(tmp_path, b"v1"), proxy, tmp_path, regions=["us-east-1"])  # manifest: v1
    _publish_versions(moto, NAME, "us-east-1", 3)  # v2..v4, not in the manifest

    rows = pub.prune(
        pub.Scope.of(prefix="gdal313-"),
        ["us-east-1"],
        keep=1,
        yes=True,
        out=quiet(),
        settings=pub.Settings(endpoint_url=proxy.url),
        manifest=tmp_path / "layers.json",
    )

    actions = {r.version: r.action for r in rows}
    assert actions == {3: "deleted", 2: "deleted", 1: "kept (recorded in layers.json)"}
    assert [v["Version"] for v in versions(moto, "us-east-1")] == [1, 4]


def test_prune_keep_zero_is_refused_before_any_call(proxy: FaultProxy, tmp_path: Path) -> None:
    with pytest.raises(pub.GdalLambdaError, match="--keep must be at least 1"):
        pub.prune(
            pub.Scope.of("3.13", "3.12"),
            ["us-east-1"],
            keep=0,
            yes=True,
            settings=pub.Settings(endpoint_url=proxy.url),
            out=quiet(),
        )
    assert proxy.seen == []
