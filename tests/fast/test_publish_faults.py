"""Faults injected by a real proxy in front of moto: throttling, 5xx, one region down, latency.

Retries are botocore's (standard/adaptive modes): the proxy sees the same request again with
botocore's ``amz-sdk-request: attempt=N`` header. A region that stays down fails alone, the
others are recorded, and a re-run finishes only what is missing.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from publish_support import Fault, FaultProxy, make_zip, variant
from rich.console import Console

from gdal_lambda import publish as pub
from gdal_lambda.errors import GdalLambdaError

NAME = "gdal313-py312-geo"
PUBLISH_PATH = r"/layers/[^/]+/versions$"


def quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


def layer(tmp_path: Path, payload: bytes = b"one") -> pub.Layer:
    return pub.layer_spec(variant(), zip_path=make_zip(tmp_path / "l.zip", payload))


def run(
    spec: pub.Layer,
    proxy: FaultProxy,
    tmp_path: Path,
    regions: list[str],
    settings: dict[str, Any] | None = None,
    **kwargs: Any,
) -> pub.Report:
    kwargs.setdefault("out", quiet())
    return pub.publish(
        spec,
        regions,
        settings=pub.Settings(endpoint_url=proxy.url, **(settings or {})),
        manifest=tmp_path / "layers.json",
        **kwargs,
    )


def published_in(proxy: FaultProxy) -> list[str]:
    """Regions where a publish request got through to moto."""
    return sorted(
        s.region
        for s in proxy.seen
        if s.method == "POST" and s.path.endswith("/versions") and not s.injected
    )


def count_versions(endpoint: str, region: str) -> int:
    client = boto3.client("lambda", region_name=region, endpoint_url=endpoint)
    return len(client.list_layer_versions(LayerName=NAME)["LayerVersions"])


@pytest.mark.parametrize("mode", ["standard", "adaptive"])
def test_throttling_is_retried_by_botocore(
    mode: str, proxy: FaultProxy, moto: str, tmp_path: Path
) -> None:
    fault = proxy.add(
        Fault(
            status=429, code="TooManyRequestsException", method="POST", path=PUBLISH_PATH, times=2
        )
    )

    report = run(
        layer(tmp_path), proxy, tmp_path, ["us-east-1", "eu-west-1"], settings={"retry_mode": mode}
    )

    assert [r.status for r in report.results] == ["published"] * 2
    assert fault.hits == 2
    publishes = [s for s in proxy.seen if s.method == "POST" and s.path.endswith("/versions")]
    assert len(publishes) == 4
    assert {s.status for s in publishes} == {429, 201}
    assert any("attempt=2;" in s.attempt for s in publishes), [s.attempt for s in publishes]
    assert count_versions(moto, "us-east-1") == count_versions(moto, "eu-west-1") == 1


def test_server_errors_are_retried(proxy: FaultProxy, moto: str, tmp_path: Path) -> None:
    proxy.add(Fault(status=500, code="ServiceException", method="GET", times=3))
    proxy.add(Fault(status=503, code="ServiceUnavailableException", path=PUBLISH_PATH, times=1))

    report = run(layer(tmp_path), proxy, tmp_path, ["us-east-1", "eu-west-1", "sa-east-1"])

    assert [r.status for r in report.results] == ["published"] * 3
    assert len([s for s in proxy.seen if s.injected]) == 4


def test_one_region_down_fails_alone_and_a_rerun_finishes_it(
    proxy: FaultProxy, moto: str, tmp_path: Path
) -> None:
    regions = ["us-east-1", "eu-west-1", "ap-northeast-1"]
    old_entry = {"name": NAME, "version": 9, "arn": "arn:old:eu-west-1", "sha256": "0" * 64}
    (tmp_path / "layers.json").write_text(json.dumps({NAME: {"eu-west-1": old_entry}}))
    down = proxy.add(
        Fault(status=503, code="ServiceUnavailableException", region="eu-west-1", service="lambda")
    )
    spec = layer(tmp_path)

    with pytest.raises(GdalLambdaError) as raised:
        run(spec, proxy, tmp_path, regions, settings={"max_attempts": 3})

    message = str(raised.value)
    assert "failed in 1 of 3 regions (eu-west-1: ServiceUnavailableException" in message
    assert "(after 3 attempts)" in message and "re-run to finish them" in message
    assert down.hits == 3  # botocore's attempts, then it gave up
    assert published_in(proxy) == ["ap-northeast-1", "us-east-1"]
    manifest = json.loads((tmp_path / "layers.json").read_text())
    assert manifest[NAME]["eu-west-1"] == old_entry  # a failed region keeps what was recorded
    assert manifest[NAME]["us-east-1"]["version"] == 1

    proxy.clear()
    report = run(spec, proxy, tmp_path, regions)

    statuses = {r.region: r.status for r in report.results}
    assert statuses == {
        "us-east-1": "unchanged",
        "eu-west-1": "published",
        "ap-northeast-1": "unchanged",
    }
    assert published_in(proxy) == ["eu-west-1"]
    manifest = json.loads((tmp_path / "layers.json").read_text())
    assert manifest[NAME]["eu-west-1"]["version"] == 1
    assert all(count_versions(moto, r) == 1 for r in regions)


def test_a_failed_grant_keeps_the_arn_and_a_rerun_grants(
    proxy: FaultProxy, moto: str, tmp_path: Path
) -> None:
    proxy.add(
        Fault(
            status=500, code="ServiceException", path=r"/policy$", method="POST", region="eu-west-1"
        )
    )
    spec = layer(tmp_path)
    public = pub.Access.parse(public=True)

    report = run(
        spec,
        proxy,
        tmp_path,
        ["eu-west-1"],
        settings={"max_attempts": 2},
        access=public,
        check=False,
    )

    assert report.results[0].status == "failed"
    manifest = json.loads((tmp_path / "layers.json").read_text())
    assert manifest[NAME]["eu-west-1"]["version"] == 1  # published, so recorded

    proxy.clear()
    [result] = run(spec, proxy, tmp_path, ["eu-west-1"], access=public).results

    assert (result.status, result.access) == ("unchanged", "public")
    assert count_versions(moto, "eu-west-1") == 1


def test_an_s3_upload_throttled_by_slowdown_is_retried(
    proxy: FaultProxy, moto: str, tmp_path: Path
) -> None:
    fault = proxy.add(
        Fault(status=503, code="SlowDown", service="s3", method="PUT", path=r"\.zip$", times=1)
    )

    report = run(layer(tmp_path), proxy, tmp_path, ["eu-west-1"], direct_limit=10)

    assert report.results[0].status == "published"
    assert fault.hits == 1


def test_regions_run_in_parallel_within_the_jobs_bound(
    proxy: FaultProxy, moto: str, tmp_path: Path
) -> None:
    regions = ["us-east-1", "us-west-2", "eu-west-1", "sa-east-1"]
    proxy.state.latency = 0.15

    run(layer(tmp_path, b"a"), proxy, tmp_path, regions, settings={"jobs": 2})
    assert proxy.state.max_inflight == 2

    proxy.clear()
    run(layer(tmp_path, b"b"), proxy, tmp_path, regions, settings={"jobs": 1})
    assert proxy.state.max_inflight == 1


def test_a_client_error_is_not_retried_and_fails_only_its_region(
    proxy: FaultProxy, moto: str, tmp_path: Path
) -> None:
    proxy.add(
        Fault(status=400, code="InvalidParameterValueException", region="sa-east-1", method="POST")
    )

    report = run(layer(tmp_path), proxy, tmp_path, ["us-east-1", "sa-east-1"], check=False)

    failed = report.by_region()["sa-east-1"]
    assert failed.status == "failed" and "InvalidParameterValueException" in failed.detail
    assert "after" not in failed.detail  # a 400 is not retried
    manifest = json.loads((tmp_path / "layers.json").read_text())
    assert sorted(manifest[NAME]) == ["us-east-1"]


def test_all_regions_without_describe_regions_permission_tries_them_all(
    proxy: FaultProxy, moto: str, tmp_path: Path
) -> None:
    proxy.add(Fault(status=403, code="UnauthorizedOperation", service="ec2"))
    out = quiet()

    report = run(
        layer(tmp_path), proxy, tmp_path, pub.resolve_regions("all"), dry_run=True, out=out
    )

    assert "could not list enabled regions (UnauthorizedOperation" in report.note
    assert len(report.results) == len(pub.resolve_regions("all")) > 30
    assert {r.status for r in report.results} == {"would publish"}
    assert "trying all of them" in out.file.getvalue()  # type: ignore[attr-defined]
