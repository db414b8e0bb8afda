"""Docker layers restored with `docker load` (the release workflow's cache), on the real engine:
a build naming the loaded images in cache_from reuses every step, the same build without it
reuses none; and build.gdal tags the compile stage that cache needs."""

from __future__ import annotations

import uuid
from pathlib import Path

import docker
import pytest
from image_helpers import sh

from gdal_lambda import images
from gdal_lambda.variant import Variant

pytestmark = pytest.mark.image

# Two stages like docker/gdal's: the final image keeps only what it copies from the stage, so
# the stage's own tag must be saved too. The stamp is new on every run of the RUN step.
DOCKERFILE = """\
ARG BASE
FROM ${BASE} AS stage
RUN cat /proc/sys/kernel/random/uuid > /stamp
FROM ${BASE}
COPY --from=stage /stamp /stamp
"""


def test_the_compile_stage_is_tagged_with_the_gdal_images_labels(cli, gdal_image, variant) -> None:
    stages = variant.stages_tag
    assert images.image_exists(cli, stages), f"{stages} missing: build.gdal tags it"
    assert images.label_problems(images.labels(cli, stages), variant) == []
    # the whole stack and GDAL, with their headers: what every later stage was built on
    sh(cli, stages, "test -f /opt/include/gdal.h && test -x /opt/bin/gdalinfo")


def test_loaded_images_are_reused_only_through_cache_from(
    cli: docker.DockerClient, gdal_image, variant: Variant, tmp_path: Path
) -> None:
    repo = f"gdal-lambda-cache-test:{uuid.uuid4().hex[:12]}"
    stages, final, uncached = f"{repo}-stages", repo, f"{repo}-uncached"
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)

    def build(tag: str, target: str | None = None, cache_from: tuple[str, ...] = ()) -> str:
        return images.stream_build(
            cli,
            context=ctx,
            tag=tag,
            buildargs={"BASE": variant.gdal_base},
            platform=variant.platform,
            target=target,
            cache_from=cache_from,
            echo=lambda _text: None,
        ).image_id

    def stamp(tag: str) -> str:
        return sh(cli, tag, "cat /stamp").strip()

    try:
        build(stages, target="stage")
        built = build(final)
        first = stamp(final)
        tars = []
        for tag in (stages, final):
            tar = tmp_path / f"{len(tars)}.tar"
            with tar.open("wb") as out:
                for chunk in cli.images.get(tag).save(named=True):
                    out.write(chunk)
            tars.append(tar)
        # a fresh runner: neither image, nor the intermediate ones their builds left behind
        for tag in (final, stages):
            cli.images.remove(tag)
        assert not images.image_exists(cli, final)
        for tar in tars:
            cli.images.load(tar.read_bytes())

        # without cache_from the classic builder ignores what was loaded: the step runs again
        # (first: a build that reuses loaded images records them as local cache afterwards)
        build(uncached)
        assert stamp(uncached) != first
        # naming them, every step is reused: the very image comes back, stamp and all
        assert build(final, cache_from=(stages, final)) == built
        assert stamp(final) == first
    finally:
        for tag in (uncached, final, stages):
            if images.image_exists(cli, tag):
                cli.images.remove(tag, force=True)
