"""Lambda's quotas, once (sizes in MiB as AWS states them), and the one way sizes are printed.

The quotas: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
("Deployment package (.zip file archive) size": 50 MB zipped for a direct upload, 250 MB
unzipped for a function and all its layers together; AWS's "MB" there are MiB, 2^20 bytes).

    fmt_mib(52_428_800)                  # "50.0 MiB"
    direct_upload_limit({"GDAL_LAMBDA_DIRECT_UPLOAD_LIMIT": "10"})   # 10 (bytes)
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import GdalLambdaError

MIB = 1024 * 1024
LAMBDA_UNZIPPED_LIMIT = 250 * MIB  # a function and its layers together, unzipped
DIRECT_UPLOAD_LIMIT = 50 * MIB  # a larger zip must be published through S3
# A layer version's fields (PublishLayerVersion in the Lambda API reference), checked before
# the first request because moto (and a typo) would accept more.
MAX_NAME = 140  # LayerName, characters
MAX_DESCRIPTION = 256  # Description, characters
MAX_LICENSE = 512  # LicenseInfo, characters
MAX_RUNTIMES = 15  # CompatibleRuntimes, entries
# A container image, uncompressed, all its layers together ("Container image code package size",
# same page).
IMAGE_LIMIT = 10 * 1024 * MIB
ENV_DIRECT_LIMIT = "GDAL_LAMBDA_DIRECT_UPLOAD_LIMIT"  # bytes; lowered by tests and benchmarks


def fmt_mib(size: int, digits: int = 1) -> str:
    """``size`` bytes in MiB, the unit of every limit above: ``"12.3 MiB"``."""
    return f"{size / MIB:.{digits}f} MiB"


def direct_upload_limit(env: Mapping[str, str]) -> int:
    """The direct-upload limit in bytes: ``$GDAL_LAMBDA_DIRECT_UPLOAD_LIMIT`` or Lambda's 50 MiB."""
    raw = env.get(ENV_DIRECT_LIMIT) or ""
    if not raw:
        return DIRECT_UPLOAD_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise GdalLambdaError(f"{ENV_DIRECT_LIMIT}={raw!r} is not a number of bytes") from None
    if value < 0:
        raise GdalLambdaError(f"{ENV_DIRECT_LIMIT}={raw!r} must be 0 or more bytes")
    return value


def direct_upload_warning(zipped: int, limit: int = DIRECT_UPLOAD_LIMIT) -> str | None:
    """What the size report says when a zip is too large to upload directly, else None."""
    if zipped <= limit:
        return None
    return (
        f"the zip is {fmt_mib(zipped)}, over the {fmt_mib(limit)} direct-upload limit: "
        "`invoke publish` will upload it through S3"
    )
