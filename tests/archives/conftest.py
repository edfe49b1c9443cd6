"""Fixtures for the archive, inspect, diff and verify tests: tiny images built by bale."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from builder.commands.build import BuildOptions, BuildResult, build
from builder.model import Platform
from builder.spec.locations import parse_output

Layer = dict[str, tuple[str, int]]  # image path → (text, mode)
MakeImage = Callable[..., BuildResult]

BASE_LAYERS: list[Layer] = [
    {"/etc/app.conf": ("port = 8080\n", 0o644), "/bin/run": ("#!/bin/sh\necho hi\n", 0o755)},
    {"/data/readme.txt": ("hello\n", 0o644)},
]


def image_toml(layers: Sequence[Layer], compression: str = "gzip") -> str:
    lines = [
        "[image]",
        'created = "2024-01-01T00:00:00Z"',
        'tags = ["t1"]',
        'platforms = ["linux/amd64"]',
        "[config]",
        'entrypoint = ["/bin/run"]',
        'env = { GREETING = "hello" }',
        'labels = { "org.example.team" = "core" }',
    ]
    for number, layer in enumerate(layers, 1):
        lines += ["[[layers]]", f'name = "l{number}"', f'compression = "{compression}"']
        items = [
            f"{{ dst = {json.dumps(path)}, text = {json.dumps(text)}, mode = 0o{mode:o} }}"
            for path, (text, mode) in layer.items()
        ]
        lines.append(f"content = [{', '.join(items)}]")
    return "\n".join(lines) + "\n"


@pytest.fixture
def make_image(tmp_path: Path) -> MakeImage:
    """Build an image from layer tables into the given outputs (strings as for --output)."""
    counter = [0]

    def make(
        outputs: Sequence[str],
        layers: Sequence[Layer] = BASE_LAYERS,
        compression: str = "gzip",
        platform: str = "linux/amd64",
    ) -> BuildResult:
        counter[0] += 1
        context = tmp_path / f"ctx{counter[0]}"
        context.mkdir()
        (context / "image.toml").write_text(image_toml(layers, compression))
        options = BuildOptions(
            spec_path=context / "image.toml",
            outputs=tuple(parse_output(o) for o in outputs),
            platforms=(Platform.parse(platform),),
        )
        return build(options)

    return make


def _root_conftest() -> object:
    """tests/conftest.py, loaded by path (two modules named conftest would be ambiguous)."""
    location = Path(__file__).resolve().parent.parent / "conftest.py"
    spec = importlib.util.spec_from_file_location("bale_tests_conftest", location)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def skopeo() -> str:
    return str(_root_conftest().require_tool("skopeo"))  # type: ignore[attr-defined]


@pytest.fixture
def umoci() -> str:
    return str(_root_conftest().require_tool("umoci"))  # type: ignore[attr-defined]
