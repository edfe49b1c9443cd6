"""CI ergonomics of bale build: GITHUB_OUTPUT lines, --quiet, exit code 2 for usage."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.cli.main import main

IMAGE = """
[image]
created = "2024-01-01T00:00:00Z"
tags = ["v1"]
[[layers]]
name = "l"
content = [{ dst = "/hello.txt", text = "hi\\n" }]
"""


def test_github_output_and_quiet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "image.toml"
    spec.write_text(IMAGE)
    outputs = tmp_path / "github_output"
    outputs.write_text("earlier=1\n")
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    archive = tmp_path / "d.tar"
    assert main(["build", "-q", "-f", str(spec), "-o", f"docker-archive:{archive}:app:v2"]) == 0
    captured = capsys.readouterr()
    digest = captured.out.strip()
    assert digest.startswith("sha256:") and captured.err == ""
    assert outputs.read_text() == (
        f"earlier=1\ndigest={digest}\nimage=docker-archive:{archive}:app:v2\n"
    )


def test_bad_output_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "-f", str(tmp_path / "image.toml"), "-o", "zip:x"]) == 2
    assert "unknown transport" in capsys.readouterr().err


def test_index_create_writes_github_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "image.toml"
    spec.write_text(IMAGE)
    for arch in ("amd64", "arm64"):
        out = f"oci:{tmp_path / arch}:v1"
        assert main(["build", "-q", "-f", str(spec), "--platform", f"linux/{arch}", "-o", out]) == 0
    capsys.readouterr()
    outputs = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    index = f"oci:{tmp_path / 'index'}:multi"
    sources = [f"oci:{tmp_path / 'amd64'}:v1", f"oci:{tmp_path / 'arm64'}:v1"]
    assert main(["index", "create", "-q", "-o", index, *sources]) == 0
    digest = capsys.readouterr().out.strip()
    assert outputs.read_text() == f"digest={digest}\nimage={index}\n"
