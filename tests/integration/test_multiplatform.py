"""Several platforms → one index; Docker media types; the architecture check."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from builder.cli.main import main
from tests.conftest import require_tool
from tests.elf import elf_header, tool_context
from tests.helpers import blob, check_layout

PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7")
THREE = """
[image]
tags = ["multi"]
platforms = ["linux/amd64", "linux/arm64", "linux/arm"]
{extra}
"""
ARM_ONLY = """
[[layers]]
name = "arm-only"
platforms = ["linux/arm64"]
content = [{ dst = "/etc/arm", text = "arm64\\n" }]
"""


def _context(root: Path, extra: str = "") -> Path:
    return tool_context(root, ("amd64", "arm64", "arm"), THREE.format(extra=extra), ARM_ONLY)


def _build(spec: Path, out: Path, *args: str) -> int:
    return main(["build", "-q", "-f", str(spec), "-o", f"oci:{out}", *args])


def _files(layout: Path, layer: dict) -> dict[str, bytes]:  # type: ignore[type-arg]
    import gzip

    data = gzip.decompress(blob(layout, layer["digest"]))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def test_three_platforms_make_an_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _context(tmp_path / "ctx")
    out = tmp_path / "oci"
    assert _build(spec, out) == 0
    digest = capsys.readouterr().out.strip()
    index_entry = json.loads((out / "index.json").read_text())["manifests"][0]
    assert index_entry["digest"] == digest
    assert index_entry["mediaType"] == "application/vnd.oci.image.index.v1+json"
    index = json.loads(blob(out, digest))
    platforms = [
        "/".join(
            filter(
                None,
                (m["platform"]["os"], m["platform"]["architecture"], m["platform"].get("variant")),
            )
        )
        for m in index["manifests"]
    ]
    assert platforms == list(PLATFORMS)
    manifests = check_layout(out)
    assert len(manifests) == 3
    by_arch = dict(zip(("amd64", "arm64", "arm"), manifests, strict=True))
    for arch, manifest in by_arch.items():
        assert _files(out, manifest["layers"][0])["bin/tool"] == elf_header(arch)
    shared = {m["layers"][1]["digest"] for m in manifests}
    assert len(shared) == 1, "an arch-independent layer is built once and shared"
    assert [len(m["layers"]) for m in manifests] == [2, 3, 2]

    skopeo = require_tool("skopeo")
    subprocess.run(
        [
            skopeo,
            "copy",
            "--override-arch",
            "arm64",
            f"oci:{out}:multi",
            f"oci:{tmp_path / 'arm'}:x",
        ],
        check=True,
        capture_output=True,
    )
    arm = check_layout(tmp_path / "arm")[0]
    assert _files(tmp_path / "arm", arm["layers"][0])["bin/tool"] == elf_header("arm64")


def test_wrong_architecture_fails_the_build(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _context(tmp_path / "ctx")
    (tmp_path / "ctx/bin/arm64/tool").write_bytes(elf_header("amd64"))
    assert _build(spec, tmp_path / "o") == 1
    err = capsys.readouterr().err
    assert "/bin/tool is built for amd64 (x86-64) but the image is for linux/arm64" in err
    assert not (tmp_path / "o").exists()


def test_check_arch_false_opts_out(tmp_path: Path) -> None:
    spec = _context(tmp_path / "ctx")
    (tmp_path / "ctx/bin/arm64/tool").write_bytes(elf_header("amd64"))
    spec.write_text(
        spec.read_text().replace('dst = "/bin/tool" }', 'dst = "/bin/tool", check_arch = false }')
    )
    assert _build(spec, tmp_path / "o") == 0


def test_command_line_platform_wins_and_single_platform_is_a_manifest(tmp_path: Path) -> None:
    spec = _context(tmp_path / "ctx")
    assert _build(spec, tmp_path / "o", "--platform", "linux/arm64") == 0
    entry = json.loads((tmp_path / "o/index.json").read_text())["manifests"][0]
    assert entry["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    config = json.loads(blob(tmp_path / "o", check_layout(tmp_path / "o")[0]["config"]["digest"]))
    assert config["architecture"] == "arm64"


def test_index_always_wraps_a_single_platform(tmp_path: Path) -> None:
    spec = _context(tmp_path / "ctx", extra='index = "always"')
    assert _build(spec, tmp_path / "o", "--platform", "linux/amd64") == 0
    entry = json.loads((tmp_path / "o/index.json").read_text())["manifests"][0]
    assert entry["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert len(check_layout(tmp_path / "o")) == 1


def test_docker_format_media_types(tmp_path: Path) -> None:
    spec = _context(tmp_path / "ctx", extra='format = "docker"')
    out = tmp_path / "o"
    assert _build(spec, out) == 0
    entry = json.loads((out / "index.json").read_text())["manifests"][0]
    assert entry["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"
    listing = json.loads(blob(out, entry["digest"]))
    assert "annotations" not in listing
    for item in listing["manifests"]:
        manifest = json.loads(blob(out, item["digest"]))
        assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
        assert manifest["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"
        assert {x["mediaType"] for x in manifest["layers"]} == {
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        }
        assert "annotations" not in manifest
    config = json.loads(blob(out, manifest["config"]["digest"]))
    assert config["architecture"] == "arm" and config["variant"] == "v7"


def test_zstd_is_refused_in_docker_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _context(tmp_path / "ctx", extra='format = "docker"\ncompression = "zstd"')
    assert _build(spec, tmp_path / "o") == 1
    assert 'zstd layers cannot be written in format = "docker"' in capsys.readouterr().err


def test_docker_format_with_annotations_writes_oci_as_buildx_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Docker v2.2 manifests cannot carry [annotations]: they are kept, in OCI media types."""
    extra = 'format = "docker"\n[annotations]\n"org.example.a" = "1"'
    spec = _context(tmp_path / "ctx", extra=extra)
    out = tmp_path / "o"
    assert _build(spec, out, "--platform", "linux/amd64") == 0
    assert 'writing format = "oci" as docker buildx does' in capsys.readouterr().err
    (manifest,) = check_layout(out)
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["annotations"]["org.example.a"] == "1"
