"""One parser for every list-valued option."""

from __future__ import annotations

import pytest

from gdal_lambda.options import comma_list
from gdal_lambda.publish import Access, resolve_regions


@pytest.mark.parametrize(
    ("values", "items"),
    [
        ((None,), []),
        (("",), []),
        (("a",), ["a"]),
        ((" a, b ,,c ",), ["a", "b", "c"]),
        (("a b\tc",), ["a", "b", "c"]),
        (("a,b", "c"), ["a", "b", "c"]),
    ],
)
def test_commas_and_white_space_separate(values: tuple[str | None, ...], items: list[str]) -> None:
    assert comma_list(*values) == items


def test_the_publishing_options_read_lists_alike() -> None:
    assert list(resolve_regions(["us-east-1, eu-west-1", "us-east-1"])) == [
        "us-east-1",
        "eu-west-1",
    ]
    accounts = Access.parse(accounts=["111111111111, 222222222222", "111111111111"]).accounts
    assert accounts == ("111111111111", "222222222222")
