"""How a list-valued option is read: one parser for every comma-separated value (--regions,
--account, --runtimes, --also-runs-on).

    comma_list("us-east-1, eu-west-1", "sa-east-1")   # ["us-east-1", "eu-west-1", "sa-east-1"]
"""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[,\s]+")


def comma_list(*values: str | None) -> list[str]:
    """The items of each value, split at commas and white space, in order, blanks dropped (a
    repeated option gives several values; None is an option not given)."""
    return [item for value in values for item in _SEPARATORS.split((value or "").strip()) if item]
