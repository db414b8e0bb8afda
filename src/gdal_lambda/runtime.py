"""The clean Lambda-like runtime: its environment, its libraries, running something in it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import docker

from . import containers
from .emulation import check_runnable
from .errors import Kind, MissingImage
from .variant import Variant

LAYER_ROOT = "/opt"
TASK_ROOT = "/var/task"
# Inside this project's build and check containers: where its scripts and inputs are put, and
# where docker/package/Dockerfile stages a function package for assembly to collect.
WORK_DIR = "/tmp/gdal-lambda"
STAGING = "/var/task-staging"

# GDAL settings recommended for Lambda (README, "Lambda settings"), each for a reason given there.
RECOMMENDED_GDAL_ENV: dict[str, str] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF,.vrt,.jp2,.ovr",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES",
    "CPL_VSIL_CURL_CHUNK_SIZE": "4096",
    "GDAL_INGESTED_BYTES_AT_OPEN": "32768",
    "GDAL_HTTP_MAX_RETRY": "3",
    "GDAL_HTTP_RETRY_DELAY": "1",
    "VSI_CACHE": "TRUE",
    "VSI_CACHE_SIZE": "5000000",
    "GDAL_CACHEMAX": "200",
    "CPL_TMPDIR": "/tmp",
}

# Of those, the ones right for every function: written into the gdalrc of every artifact that
# carries GDAL (the GDAL image, layers, full packages), so a function that sets no variable has
# them. The rest stay variables the function sets for itself: the caches depend on its memory,
# the extension list on what it reads (it refuses every other file over HTTP), and the bytes
# read at open on its files' headers (measured by benchmarks/cog_tiles.py; README "Lambda
# settings"). An environment variable of the same name still overrides the file.
GDALRC_OPTIONS: tuple[str, ...] = (
    "GDAL_DISABLE_READDIR_ON_OPEN",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES",
    "GDAL_HTTP_MULTIPLEX",
    "CPL_VSIL_CURL_CHUNK_SIZE",
    "GDAL_HTTP_MAX_RETRY",
    "GDAL_HTTP_RETRY_DELAY",
    "CPL_TMPDIR",
)
# Where the file is, below a layer's or a package's root: beside GDAL's data (a full package
# carries share/), and linked from GDAL's compiled-in ${sysconfdir}/gdal/gdalrc, which for the
# prefix /opt is /opt/etc/gdal/gdalrc (GDAL 3.3+, gdal.org "Configuration options", "GDAL
# configuration file"): read there with no variable set.
GDALRC = "share/gdal/gdalrc"
SYSCONF_GDALRC = "etc/gdal/gdalrc"


def gdalrc_text() -> str:
    """The gdalrc: GDAL's [configoptions] section with GDALRC_OPTIONS' recommended values."""
    lines = [
        '# GDAL\'s configuration for Lambda (gdal-lambda, README "Lambda settings").',
        "# An environment variable of the same name overrides a value here.",
        "[configoptions]",
        *(f"{name}={RECOMMENDED_GDAL_ENV[name]}" for name in GDALRC_OPTIONS),
    ]
    return "\n".join(lines) + "\n"


def write_gdalrc(root: Path) -> Path:
    """Write ``root/share/gdal/gdalrc`` and the relative link ``root/etc/gdal/gdalrc`` to it;
    returns the file."""
    path = root / GDALRC
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(gdalrc_text(), encoding="utf-8")
    link = root / SYSCONF_GDALRC
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to(os.path.relpath(path, link.parent))
    return path


def data_env(root: str = LAYER_ROOT) -> dict[str, str]:
    """GDAL_DATA / PROJ_DATA (and PROJ_LIB for older readers) under a layer or package root;
    under another root than /opt also GDAL_CONFIG_FILE, its gdalrc (GDAL finds /opt's by itself)."""
    env = {
        "GDAL_DATA": f"{root}/share/gdal",
        "PROJ_DATA": f"{root}/share/proj",
        "PROJ_LIB": f"{root}/share/proj",
    }
    if root != LAYER_ROOT:
        env["GDAL_CONFIG_FILE"] = f"{root}/{GDALRC}"
    return env


def lambda_env(variant: Variant) -> dict[str, str]:
    """The variables Lambda itself sets for a Python function on the variant's OS and CPU.

    LD_LIBRARY_PATH lists the system directories before /opt/lib, as Lambda does: a bundled
    library that an older system copy would shadow is caught by running under it.
    """
    python = variant.python
    return {
        "LAMBDA_TASK_ROOT": TASK_ROOT,
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "LD_LIBRARY_PATH": ":".join(variant.ld_library_path),
        "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
        # The Lambda Python bootstrap puts these first on sys.path, in this order.
        "PYTHONPATH": ":".join(
            [
                TASK_ROOT,
                f"/opt/python/lib/python{python}/site-packages",
                "/opt/python",
                "/var/runtime",
            ]
        ),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{python}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
    }


def run_clean(
    cli: docker.DockerClient,
    variant: Variant,
    command: list[str],
    *,
    opt: Path | None = None,
    task: Path | None = None,
    env: dict[str, str] | None = None,
    mounts: dict[str, Path] | None = None,
    network_mode: str = "host",
    **kwargs: Any,
) -> tuple[int, str]:
    """Run ``command`` in the variant's plain runtime image (its target, Python and
    architecture: an arm64 runtime runs under emulation on an x86_64 host), read-only, the way
    Lambda would.

    ``opt`` (an unpacked layer) is mounted at /opt and ``task`` (an unpacked package) at
    /var/task, both read-only; ``mounts`` (container path -> host path) add read-only folders;
    the root file system is read-only and /tmp is a tmpfs.
    """
    volumes: dict[str, dict[str, str]] = {}
    if opt is not None:
        volumes[str(opt.resolve())] = {"bind": LAYER_ROOT, "mode": "ro"}
    if task is not None:
        volumes[str(task.resolve())] = {"bind": TASK_ROOT, "mode": "ro"}
    for where, host in (mounts or {}).items():
        volumes[str(host.resolve())] = {"bind": where, "mode": "ro"}
    check_runnable(variant.architecture)
    if not containers.image_exists(cli, variant.runtime_image):
        # containers.create does not pull: name the step that makes (or pulls) it.
        raise MissingImage(variant, Kind.RUNTIME, f"image {variant.runtime_image}")
    environment = {**lambda_env(variant), **(env or {})}
    ran = containers.run(
        cli,
        variant.runtime_image,
        command,
        platform=variant.platform,
        environment={k: v for k, v in environment.items() if v is not None},
        volumes=volumes,
        read_only=True,
        tmpfs={"/tmp": "rw,size=512m"},
        network_mode=network_mode,
        working_dir=TASK_ROOT,
        **kwargs,
    )
    return ran.status, ran.output
