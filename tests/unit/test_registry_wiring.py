"""Pure parts of the registry wiring: docker:// outputs, [image] repository, image.lock."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.commands.lock import LockedBase, pinned_base, read, render
from builder.errors import LockError, SpecError, UsageError
from builder.model import Digest
from builder.spec.load import load
from builder.spec.locations import Output, parse_output

D = Digest.parse("sha256:" + "ab" * 32)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("docker://alpine", Output("docker", Path(), "", "docker.io/library/alpine")),
        ("docker://ghcr.io/a/b:v1", Output("docker", Path(), "v1", "ghcr.io/a/b")),
        ("docker://localhost:5000/x", Output("docker", Path(), "", "localhost:5000/x")),
    ],
)
def test_parse_docker_output(text: str, expected: Output) -> None:
    assert parse_output(text) == expected
    assert str(expected).startswith("docker://")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("docker://Alpine", "lowercase"),
        (f"docker://a/b@{D}", "cannot name a digest"),
        ("docker://a:-x", "invalid tag"),
    ],
)
def test_parse_docker_output_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_output(text)


def spec_file(tmp_path: Path, image: str) -> Path:
    path = tmp_path / "image.toml"
    path.write_text(f'[image]\n{image}\n[[layers]]\ncontent = [{{ dst = "/a", text = "a" }}]\n')
    return path


@pytest.mark.parametrize(
    ("value", "expected"),
    [("app", "docker.io/library/app"), ("ghcr.io/acme/app", "ghcr.io/acme/app")],
)
def test_repository(tmp_path: Path, value: str, expected: str) -> None:
    assert load(spec_file(tmp_path, f'repository = "{value}"')).repository == expected


@pytest.mark.parametrize("value", ["ghcr.io/a/b:v1", "a/B"])
def test_repository_errors(tmp_path: Path, value: str) -> None:
    with pytest.raises(SpecError, match=r"image\.repository"):
        load(spec_file(tmp_path, f'repository = "{value}"'))


def test_lock_round_trip_and_pin(tmp_path: Path) -> None:
    spec = load(spec_file(tmp_path, 'base = "reg.example/a/b:1"'))
    locked = LockedBase("reg.example/a/b:1", "reg.example/a/b:1", D, "x", (("linux/amd64", D),))
    (tmp_path / "image.lock").write_bytes(render(locked))
    assert read(tmp_path / "image.lock") == locked
    pinned = pinned_base(spec, locked=True)
    assert pinned.base_ref is not None
    assert pinned.base_ref.reference == f"reg.example/a/b:1@{D}"
    other = load(spec_file(tmp_path, 'base = "reg.example/a/b:2"'))
    assert "warning" in pinned_base(other, locked=False).note
    with pytest.raises(LockError, match="--locked"):
        pinned_base(other, locked=True)


def test_bad_lock_file(tmp_path: Path) -> None:
    (tmp_path / "image.lock").write_text("{")
    with pytest.raises(LockError, match="not a valid bale lock"):
        read(tmp_path / "image.lock")
