"""Function images (`invoke image`, `invoke run --image`, `invoke push --image`) on the real
engine: examples/package as an image, invoked through the Lambda Runtime API by the real
awslambdaric against a COG on a local HTTP server; handler and init errors; /opt byte for byte
the layer zip's; pushed to a real registry and pulled back; bad input."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import ROOT
from httpserver import serve
from image_helpers import copy_out

from gdal_lambda import elf, function_image, push
from gdal_lambda.errors import GdalLambdaError, MissingZip

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fast"))
from publish_support import registry

pytestmark = pytest.mark.image


@pytest.fixture(scope="module")
def built(variant) -> function_image.BuiltImage:
    return function_image.build_image(variant, ROOT / "examples" / "package")


def _failing_src(tmp: Path, code: str) -> Path:
    src = tmp / "broken"
    src.mkdir(parents=True, exist_ok=True)
    (src / "handler.py").write_text(code)
    return src


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_the_example_runs_through_the_runtime_api(cli, variant, built, cog_dir) -> None:
    """The real awslambdaric asks our Runtime API endpoint for the event and posts the result:
    a tile of the COG, read over /vsicurl/, with the request id from the endpoint's header."""
    assert built.tag == f"gdal-lambda-fn:package-{variant.stem(python=False, recipe=False)}"
    config = cli.images.get(built.tag).attrs["Config"]
    assert config["Entrypoint"] == ["python3", "-m", "awslambdaric"]
    assert config["Cmd"] == ["handler.handler"]
    with serve(cog_dir) as server:
        event = {"url": server.url("cog.tif"), "z": 5, "x": 16, "y": 15, "size": 64}
        outcome, _ = function_image.invoke_image(cli, variant, built.tag, event)
        ranges = [r for _, _, r in server.state.requests if r]
    assert outcome.kind == "response", outcome.payload
    png = base64.b64decode(outcome.payload["tile"]["png_base64"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert outcome.payload["stats"][0]["max"] == pytest.approx(4321, abs=1)
    assert len(outcome.payload["request_id"]) == 36
    assert ranges, "GDAL read without Range requests"


def test_invoke_run_prints_the_result(built, cog_dir, tmp_path) -> None:
    with serve(cog_dir) as server:
        event = tmp_path / "event.json"
        event.write_text(json.dumps({"url": server.url("cog.tif"), "z": 5, "x": 16, "y": 15}))
        ran = invoke("run", "--image", built.tag, "--event", str(event))
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert json.loads(ran.stdout)["tile"]["size"] == 256


@pytest.mark.parametrize(
    ("code", "kind", "message"),
    [
        (
            "def handler(event, context):\n    raise ValueError('no tile here')\n",
            "error",
            "error: the handler raised: ValueError: no tile here",
        ),
        (
            "import not_a_module_anywhere\n\ndef handler(event, context):\n    return 1\n",
            "init-error",
            "error: the function failed to start: Runtime.ImportModuleError: Unable to import "
            "module 'handler': No module named 'not_a_module_anywhere'",
        ),
    ],
)
def test_a_handler_error_and_an_init_error(
    cli, variant, tmp_path, code: str, kind: str, message: str
) -> None:
    src = _failing_src(tmp_path, code)
    image = function_image.build_image(variant, src)
    try:
        outcome, _ = function_image.invoke_image(cli, variant, image.tag, {"x": 1})
        assert outcome.kind == kind, outcome
        assert {"errorType", "errorMessage"} <= set(outcome.payload)
        event = tmp_path / "event.json"
        event.write_text("{}")
        ran = invoke("run", "--image", image.tag, "--event", str(event))
        assert ran.returncode == 1
        errors = [entry for entry in ran.stderr.splitlines() if entry.startswith("error: ")]
        assert errors == [message], ran.stderr[-2000:]
    finally:
        cli.images.remove(image.tag, force=True)


def test_opt_is_the_layer_zip_and_task_holds_no_second_gdal(cli, variant, built, tmp_path) -> None:
    opt = copy_out(cli, built.tag, "/opt", tmp_path / "opt")
    task = copy_out(cli, built.tag, "/var/task", tmp_path / "task")
    in_image = {
        p.relative_to(opt).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in opt.rglob("*")
        if p.is_file() and not p.is_symlink()
    }
    with zipfile.ZipFile(variant.layer_zip()) as zf:
        in_zip = {
            info.filename: hashlib.sha256(zf.read(info)).hexdigest()
            for info in zf.infolist()
            if not info.is_dir() and not stat.S_ISLNK(info.external_attr >> 16)
        }
    assert in_image == in_zip
    gdal = [p for p in task.rglob("libgdal*") if elf.is_elf(p)]
    assert gdal == [], gdal
    assert (task / "handler.py").is_file() and (task / "mercantile").is_dir()
    assert not (task / "rasterio").exists(), "rasterio comes from the layer's /opt"


def test_pushed_and_pulled_back_it_runs_the_same(cli, variant, built, cog_dir, tmp_path) -> None:
    with registry(tmp_path / "registry") as running:
        pushed, sizes = push.push_image(built.tag, registry=f"{running.host}/acme", env={})
        assert sizes.uncompressed == built.size
        assert sizes.compressed is not None and 0 < sizes.compressed < sizes.uncompressed
        local = cli.images.get(built.tag)
        remote = f"{pushed.remote.rsplit(':', 1)[0]}@{pushed.digest}"
        cli.images.remove(pushed.remote)
        pulled = cli.images.pull(remote)
        assert pulled.id == local.id
        with serve(cog_dir) as server:
            event = {"url": server.url("cog.tif"), "z": 5, "x": 16, "y": 15, "size": 32}
            outcome, _ = function_image.invoke_image(cli, variant, remote, event)
        assert outcome.kind == "response" and outcome.payload["tile"]["size"] == 32
        cli.images.remove(remote)


def test_bad_input_is_one_line(variant, tmp_path) -> None:
    with pytest.raises(GdalLambdaError, match=r"source folder .*nowhere does not exist"):
        function_image.build_image(variant, tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GdalLambdaError, match=r"handler 'handler.handler': no module handler"):
        function_image.build_image(variant, empty)
    with pytest.raises(GdalLambdaError, match=r"handler 'handler' is not of the form"):
        function_image.build_image(variant, ROOT / "examples" / "package", handler="handler")
    elsewhere = variant.__class__.resolve(
        variant.matrix, line=variant.line.name, env={}, target=variant.target.name,
        python=variant.python, recipe="no-such-recipe",
    )  # fmt: skip
    with pytest.raises(MissingZip) as missing:
        function_image.build_image(elsewhere, ROOT / "examples" / "package")
    assert missing.value.kind == "layer-zip"
    ran = invoke(
        "image", "--src", "examples/package", "--gdal", variant.line.name,
        "--python", variant.python, "--recipe", "no-such-recipe",
    )  # fmt: skip
    assert ran.returncode == 1 and "Traceback" not in ran.stderr
    assert "invoke layer --gdal" in ran.stderr and "--recipe no-such-recipe" in ran.stderr


def test_the_zip_and_the_image_side_by_side(built, variant) -> None:
    """For the record (README "Layer, package or image"): sizes of the image and the zips."""
    layer = variant.layer_zip().stat().st_size
    print(f"\nimage {built.tag}: {built.size / 2**20:.1f} MiB uncompressed, built in "
          f"{built.seconds:.1f} s; layer zip {layer / 2**20:.1f} MiB")  # fmt: skip
    assert os.environ.get("GDAL_LAMBDA_LINE") in (None, variant.line.name)
