"""bale verify: a reproducible build passes; injected randomness is caught and named."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import builder.commands.verify
from builder.cli.main import main
from builder.commands.build import BuildOptions
from builder.commands.verify import VerifyResult, copy_tree, verify

IMAGE = """
[image]
created = "2024-01-01T00:00:00Z"
platforms = ["linux/amd64"]
[config]
entrypoint = ["/app/run.sh"]
[[layers]]
name = "app"
files = [{ src = "rootfs/", dst = "/app/" }]
"""


@pytest.fixture
def context(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "rootfs" / "sub").mkdir(parents=True)
    (root / "image.toml").write_text(IMAGE)
    (root / "rootfs" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "rootfs" / "run.sh").chmod(0o755)
    (root / "rootfs" / "sub" / "data.txt").write_text("data\n")
    (root / "rootfs" / "random.bin").write_bytes(b"fixed")
    return root


def randomize(context: Path) -> None:
    """The injected non-determinism: a source file whose content differs on every build."""
    (context / "rootfs" / "random.bin").write_bytes(os.urandom(16))


def test_reproducible_build_verifies(context: Path) -> None:
    result = verify(BuildOptions(spec_path=context / "image.toml", outputs=()))
    assert result.reproducible
    assert result.differences == ()


def test_injected_randomness_is_named(context: Path) -> None:
    result = verify(BuildOptions(spec_path=context / "image.toml", outputs=()), randomize)
    assert not result.reproducible
    assert result.first_file is not None
    assert result.first_file.path == "app/random.bin"
    assert result.first_file.what == "content"


def test_verify_cli_exit_codes(
    context: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = str(context / "image.toml")
    assert main(["verify", "-f", spec]) == 0
    assert capsys.readouterr().out.startswith("sha256:")

    def injected(options: BuildOptions) -> VerifyResult:
        return verify(options, randomize)

    monkeypatch.setattr(builder.commands.verify, "verify", injected)
    assert main(["verify", "-f", spec]) == 1
    assert "first differing file: /app/random.bin (layer 1)" in capsys.readouterr().err
    assert main(["verify", "--json", "-f", spec]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["reproducible"] is False
    assert doc["firstDifferingFile"] == "app/random.bin"
    assert doc["digests"][0] != doc["digests"][1]


def test_copy_tree_varies_order_and_mtimes(context: Path, tmp_path: Path) -> None:
    created: list[str] = []
    real_copy = __import__("shutil").copyfile

    def recording(src: Path, dst: Path) -> object:
        created.append(Path(dst).name)
        return real_copy(src, dst)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("builder.commands.verify.shutil.copyfile", recording)
        copy_tree(context / "rootfs", tmp_path / "copy", reverse=True, shift=100)
    assert created == ["data.txt", "run.sh", "random.bin"]  # sub/ first: reverse order
    original, copy = context / "rootfs" / "run.sh", tmp_path / "copy" / "run.sh"
    assert copy.stat().st_mode == original.stat().st_mode
    assert copy.stat().st_mtime_ns == original.stat().st_mtime_ns + 100 * 10**9


def test_a_bad_image_file_is_named_by_its_own_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.toml"
    assert main(["verify", "-f", str(missing)]) == 1
    assert f"{missing}: no such file" in capsys.readouterr().err


def test_verify_checks_the_image_build_makes_with_hardlinks_and_fifos(
    context: Path, tmp_path: Path
) -> None:
    """Hardlinks stay hardlinks in verify's copies (a FIFO beside them is copied too)."""
    rootfs = context / "rootfs"
    os.link(rootfs / "sub" / "data.txt", rootfs / "sub" / "same.txt")
    os.mkfifo(context / "unused.fifo")
    from builder.commands.build import build
    from builder.spec.locations import Output

    built = build(
        BuildOptions(spec_path=context / "image.toml", outputs=(Output("oci", tmp_path / "o"),))
    )
    result = verify(BuildOptions(spec_path=context / "image.toml", outputs=()))
    assert result.reproducible
    assert result.first.digest == built.root.digest
    copy_tree(context, tmp_path / "copy", reverse=True, shift=0)
    assert (tmp_path / "copy" / "rootfs" / "sub" / "same.txt").stat().st_nlink == 2
    assert (tmp_path / "copy" / "unused.fifo").is_fifo()


def test_verify_takes_the_registry_flags_a_registry_base_needs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A base behind a private CA or a slow registry must be reachable from verify too."""
    spec = tmp_path / "image.toml"
    spec.write_text('[[layers]]\ncontent = [{ dst = "/a", text = "a" }]\n')
    missing = tmp_path / "ca.pem"
    assert main(["verify", "-f", str(spec), "--ca-cert", str(missing)]) == 2
    assert f"--ca-cert {missing}: no such file" in capsys.readouterr().err
    assert main(["verify", "-q", "-f", str(spec), "--read-timeout", "5", "--retries", "2"]) == 0
