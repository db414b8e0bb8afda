"""A companion's requirement that excludes the layer's own version is named without pip."""

from __future__ import annotations

import pytest

from gdal_lambda.errors import GdalLambdaError
from gdal_lambda.package import check_direct_conflicts

LAYER = {"numpy": "2.3.5", "Shapely": "2.1.2", "rasterio": "1.5.2"}


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("numpy<2\n", "'numpy<2' excludes numpy 2.3.5"),
        ("# a comment\nshapely==2.0.7  # old\n", "'shapely==2.0.7' excludes Shapely 2.1.2"),
        ("mercantile==1.2.1\nRasterio>=1.6\n", "'Rasterio>=1.6' excludes rasterio 1.5.2"),
    ],
)
def test_an_excluded_layer_version_is_one_error(text: str, named: str) -> None:
    with pytest.raises(GdalLambdaError) as err:
        check_direct_conflicts(text, LAYER, "geo")
    assert str(err.value).startswith(f"requirement {named}, which layer geo provides: relax")


@pytest.mark.parametrize(
    ("text", "without_marker_conflicts"),
    [
        ("numpy>=2\nshapely\nrasterio>=1.4,<2\n", False),  # ranges the layer meets
        ("mercantile==1.2.1\n-r other.txt\n--no-binary rasterio\n", False),  # nothing it has
        ('numpy<2 ; python_version < "3.10"\n', True),  # markers: for pip, in the target's Python
    ],
)
def test_what_the_layer_meets_or_pip_must_decide_passes(
    text: str, without_marker_conflicts: bool
) -> None:
    assert check_direct_conflicts(text, LAYER, "geo") is None
    # the marker alone is what leaves a line to pip: without it the same line is checked here
    unmarked = "\n".join(line.split(";")[0] for line in text.splitlines())
    if without_marker_conflicts:
        with pytest.raises(GdalLambdaError, match="excludes numpy"):
            check_direct_conflicts(unmarked, LAYER, "geo")
    else:
        assert check_direct_conflicts(unmarked, LAYER, "geo") is None
