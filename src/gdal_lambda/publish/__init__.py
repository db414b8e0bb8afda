"""Publishing layer zips to AWS Lambda: every region, idempotent, parallel, resumable.

    layer = layer_spec(variant)                         # names, limits, zip: checked, no call yet
    regions = resolve_regions("all")                    # botocore's region list, checked offline
    report = publish(layer, regions, access=Access(public=True))
    list_layers(...)                                    # region -> latest version
    prune(..., keep=3, yes=True)                        # older versions; dry run unless yes

One module per concern: ``spec`` (what to publish, Lambda's limits), ``access`` (grants),
``regions`` (which, connecting once, running per region in parallel), ``aws`` (settings, session,
error wording), ``manifest`` (layers.json/.md), ``publishing``, ``listing`` (list, prune) and
``report``. The names below are the package's interface.
"""

from __future__ import annotations

from ..errors import GdalLambdaError
from .access import STATEMENT_PREFIX, Access, Statement, describe_policy
from .aws import (
    DEFAULT_ATTEMPTS,
    DEFAULT_JOBS,
    RETRY_MODES,
    Aws,
    Settings,
    error_code,
    fatal_errors,
    layer_versions,
    new_session,
    reason,
    sha_of,
    version_policy,
)
from .listing import OUR_LAYERS, ListedLayer, PruneRow, Scope, list_layers, prune
from .manifest import DEFAULT_MANIFEST, MD_END, MD_START, Manifest, markdown_table
from .publishing import DEFAULT_BUCKET, check_bucket_template, publish
from .regions import (
    INTERRUPTED_EXIT,
    Interrupted,
    RegionList,
    connect,
    for_each_region,
    known_regions,
    resolve_regions,
)
from .report import (
    FAILED,
    PUBLISHED,
    SAME_ZIP,
    UNCHANGED,
    WOULD_PUBLISH,
    RegionResult,
    Report,
    console,
)
from .spec import NO_SBOM_LICENSE, Layer, ZipFacts, check_layer, layer_spec, zip_facts

__all__ = [
    "DEFAULT_ATTEMPTS",
    "DEFAULT_BUCKET",
    "DEFAULT_JOBS",
    "DEFAULT_MANIFEST",
    "FAILED",
    "INTERRUPTED_EXIT",
    "MD_END",
    "MD_START",
    "NO_SBOM_LICENSE",
    "OUR_LAYERS",
    "PUBLISHED",
    "RETRY_MODES",
    "SAME_ZIP",
    "STATEMENT_PREFIX",
    "UNCHANGED",
    "WOULD_PUBLISH",
    "Access",
    "Aws",
    "GdalLambdaError",
    "Interrupted",
    "Layer",
    "ListedLayer",
    "Manifest",
    "PruneRow",
    "RegionList",
    "RegionResult",
    "Report",
    "Scope",
    "Settings",
    "Statement",
    "ZipFacts",
    "check_bucket_template",
    "check_layer",
    "connect",
    "console",
    "describe_policy",
    "error_code",
    "fatal_errors",
    "for_each_region",
    "known_regions",
    "layer_spec",
    "layer_versions",
    "list_layers",
    "markdown_table",
    "new_session",
    "prune",
    "publish",
    "reason",
    "resolve_regions",
    "sha_of",
    "version_policy",
    "zip_facts",
]
