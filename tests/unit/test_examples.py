"""The shipped examples stay true to the code: every key in them parses."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.spec import load

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "path", [ROOT / "image.toml.example", *sorted((ROOT / "examples").glob("*/image.toml"))]
)
def test_example_parses(path: Path) -> None:
    spec = load(path)
    assert spec.layers
