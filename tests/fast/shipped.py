"""matrix.toml as shipped: :func:`helpers.shipped_matrix`, importable from here too."""

from __future__ import annotations

from helpers import shipped_matrix

__all__ = ["shipped_matrix"]
