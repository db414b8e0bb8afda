"""What the tests share: the checkout, invoke as a user runs it, the one-error-line check, a
variant of the shipped matrix. tests/ is on sys.path (its conftest.py), so `from helpers import`
works in every folder."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from gdal_lambda import versions
from gdal_lambda.variant import Variant

ROOT = Path(__file__).resolve().parents[1]


def invoke(
    *args: str,
    env: Mapping[str, str] | None = None,
    drop: Iterable[str] = (),
    prefix: Iterable[str] = (),
    base: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`invoke <args>` in the checkout, in a child process: ``env`` over ``base`` (default this
    process's environment) less the ``drop`` names; ``prefix`` runs it through another command
    (setpriv ...)."""
    dropped = set(drop)
    merged = {**(os.environ if base is None else base), **(env or {})}
    return subprocess.run(
        [*prefix, sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        env={k: v for k, v in merged.items() if k not in dropped},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The task failed as a user should see it: exit 1, one line on stderr that starts with
    ``error: ``, no traceback. Returns that line."""
    assert result.returncode == 1, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


def shipped_matrix() -> versions.Matrix:
    """matrix.toml as shipped: no overlay (the library reads no environment of its own)."""
    return versions.load_matrix()


def make_variant(
    line: str = "3.13", *, env: Mapping[str, str] | None = None, **options: str | None
) -> Variant:
    """A variant of the shipped matrix, resolved as tasks.py does (``env`` none by default)."""
    return Variant.resolve(shipped_matrix(), line=line, env=env or {}, **options)  # type: ignore[arg-type]
