"""The shipped examples stay true to the code: every key parses, every example builds."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.spec.load import load

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "path", [ROOT / "image.toml.example", *sorted((ROOT / "examples").glob("*/image.toml"))]
)
def test_example_parses(path: Path) -> None:
    spec = load(path)
    assert spec.layers


@pytest.mark.parametrize(
    "spec", sorted((ROOT / "examples").glob("*/image.toml")), ids=lambda p: p.parent.name
)
def test_example_builds_a_valid_layout(spec: Path, tmp_path: Path) -> None:
    from builder.cli.main import main
    from tests.helpers import check_layout

    assert main(["build", "-q", "-f", str(spec), "-o", f"oci:{tmp_path / 'oci'}"]) == 0
    assert check_layout(tmp_path / "oci")
