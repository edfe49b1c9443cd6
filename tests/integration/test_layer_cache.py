"""The layer cache inside real builds: reuse, change detection, --no-cache, prune."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from builder.cli.main import main
from builder.commands import build as pipeline
from builder.commands.build import BuildOptions, BuildResult, build
from builder.layer.build import Layer
from builder.layer.cache import LayerCache
from builder.spec.locations import parse_output

SPEC = """
[image]
created = "2024-01-01T00:00:00Z"
[[layers]]
name = "one"
files = [{ src = "one/", dst = "/one/" }]
[[layers]]
name = "two"
files = [{ src = "two/", dst = "/two/" }]
"""


@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "image.toml").write_text(SPEC)
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "data.txt").write_text(f"{name} version 1\n")
    return tmp_path


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The created_by of every layer actually encoded (not taken from the cache)."""
    names: list[str] = []
    real = pipeline.build_layer

    def counting(*args: object, **kwargs: object) -> Layer:
        names.append(str(kwargs["created_by"]))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "build_layer", counting)
    return names


def _build(context: Path, cache: bool = True) -> BuildResult:
    future = LayerCache(context / "cache", lambda: time.time_ns() + 10**10)
    options = BuildOptions(
        spec_path=context / "image.toml",
        outputs=(parse_output(f"oci:{context / 'out'}"),),
        cache=future if cache else None,
    )
    return build(options)


def _layers(result: BuildResult) -> list[str]:
    return [str(layer.descriptor.digest) for layer in result.images[0].layers]


def test_a_rebuild_of_unchanged_inputs_encodes_nothing(context: Path, built: list[str]) -> None:
    first = _build(context)
    second = _build(context)
    assert built == ["bale: layer one", "bale: layer two"]
    assert second.root == first.root
    assert [layer.created_by for layer in second.images[0].layers] == built


def test_one_changed_file_rebuilds_only_its_layer(context: Path, built: list[str]) -> None:
    first = _build(context)
    (context / "two" / "data.txt").write_text("two version 2\n")
    second = _build(context)
    assert built[2:] == ["bale: layer two"]
    assert _layers(second)[0] == _layers(first)[0]
    assert _layers(second)[1] != _layers(first)[1]
    assert second.root == _build(context, cache=False).root


@pytest.mark.parametrize("replace", [False, True], ids=["in-place", "renamed-over"])
def test_an_edit_keeping_size_and_mtime_is_detected(
    context: Path, built: list[str], replace: bool
) -> None:
    path = context / "one" / "data.txt"
    first = _build(context)
    st = path.stat()
    time.sleep(0.05)  # past the file system's timestamp tick, so ctime moves
    if replace:
        (context / "new").write_text("one version 9\n")
        os.replace(context / "new", path)
    else:
        path.write_text("one version 9\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    second = _build(context)
    assert built[2:] == ["bale: layer one"]
    assert _layers(second)[0] != _layers(first)[0]
    assert second.root == _build(context, cache=False).root


def test_no_cache_and_prune_on_the_command_line(
    context: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = context / "cli-cache"
    monkeypatch.setenv("BALE_CACHE_DIR", str(cache))
    args = ["build", "-f", str(context / "image.toml"), "-o", f"oci:{context / 'o'}", "-q"]
    assert main([*args, "--no-cache"]) == 0
    assert not cache.exists()
    assert main(args) == 0
    assert len(list((cache / "blobs" / "sha256").iterdir())) == 2
    assert main(["cache", "dir"]) == 0
    assert main(["cache", "prune", "--all"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2] == str(cache)
    assert out[-1].startswith("removed 0 layer records and 2 blobs")
    assert not list((cache / "blobs" / "sha256").iterdir())
