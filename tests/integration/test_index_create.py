"""``bale index create``: per-platform builds assembled into the index a direct build makes."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from builder.cli.main import main
from tests.conftest import require_tool
from tests.elf import tool_context
from tests.helpers import blob, check_layout
from tests.integration.attestation import add_attestation

SPEC = """
[image]
platforms = ["linux/amd64", "linux/arm64"]
{extra}
"""
PLATFORMS = ("linux/amd64", "linux/arm64")


def _spec(root: Path, extra: str = "") -> Path:
    return tool_context(root, ("amd64", "arm64"), SPEC.format(extra=extra))


def _bale(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 0, capsys.readouterr().err
    return capsys.readouterr().out.strip().splitlines()[-1]


def _per_platform(tmp_path: Path, spec: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    sources = []
    for platform in PLATFORMS:
        layout = tmp_path / platform.replace("/", "-")
        _bale(capsys, "build", "-q", "-f", str(spec), "--platform", platform, "-o", f"oci:{layout}")
        sources.append(f"oci:{layout}")
    return sources


def _skopeo_digest(reference: str) -> str:
    raw = subprocess.run(
        [require_tool("skopeo"), "inspect", "--raw", reference], check=True, capture_output=True
    ).stdout
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def test_index_of_single_builds_equals_a_direct_build(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path / "ctx")
    direct = _bale(capsys, "build", "-q", "-f", str(spec), "-o", f"oci:{tmp_path / 'direct'}")
    sources = _per_platform(tmp_path, spec, capsys)
    out = tmp_path / "index"
    args = ["index", "create", "--tag", "v1", *sources, "-o", f"oci:{out}"]
    assert _bale(capsys, *args) == direct
    manifests = check_layout(out)
    assert len(manifests) == 2
    assert _skopeo_digest(f"oci:{out}:v1") == direct
    assert sorted(p.name for p in (out / "blobs/sha256").iterdir()) == sorted(
        p.name for p in (tmp_path / "direct/blobs/sha256").iterdir()
    )

    reversed_ = _bale(capsys, "index", "create", "-q", *sources[::-1], "-o", f"oci:{out}:rev")
    index = json.loads(blob(out, reversed_))
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["arm64", "amd64"]


def test_annotations_match_the_image_toml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path / "ctx", extra='[annotations]\n"org.example.team" = "infra"')
    direct = _bale(capsys, "build", "-q", "-f", str(spec), "-o", f"oci:{tmp_path / 'direct'}")
    sources = _per_platform(tmp_path, spec, capsys)
    archive = tmp_path / "index.tar"
    args = ["index", "create", "--json", *sources, "-o", f"oci-archive:{archive}:v1"]
    assert main([*args, "--annotation", "org.example.team=infra"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["digest"] == direct
    assert [m["platform"] for m in summary["manifests"]] == list(PLATFORMS)
    assert [m["source"] for m in summary["manifests"]] == sources
    assert _skopeo_digest(f"oci-archive:{archive}:v1") == direct
    plain = _bale(capsys, "index", "create", "-q", *sources, "-o", f"oci:{tmp_path / 'plain'}")
    assert plain != direct, "without --annotation the index has no annotations"


def test_docker_format_needs_docker_manifests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path / "ctx")
    sources = _per_platform(tmp_path, spec, capsys)
    args = ["index", "create", "--format", "docker", *sources, "-o", f"oci:{tmp_path / 'x'}"]
    assert main(args) == 2
    assert "can only name Docker manifests" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()

    docker = _spec(tmp_path / "dctx", extra='format = "docker"')
    direct = _bale(capsys, "build", "-q", "-f", str(docker), "-o", f"oci:{tmp_path / 'direct'}")
    sources = _per_platform(tmp_path / "d", docker, capsys)
    out = tmp_path / "list"
    assert _bale(capsys, *args[:4], *sources, "-o", f"oci:{out}") == direct
    index = json.loads(blob(out, direct))
    assert index["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"


def test_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _spec(tmp_path / "ctx")
    amd, arm = _per_platform(tmp_path, spec, capsys)
    multi = tmp_path / "multi"
    _bale(capsys, "build", "-q", "-f", str(spec), "-o", f"oci:{multi}")
    out = f"oci:{tmp_path / 'out'}"

    assert main(["index", "create", amd, arm, amd, "-o", out]) == 2
    err = capsys.readouterr().err
    assert f"'{amd}' and '{amd}' are both linux/amd64 images" in err

    twin = tmp_path / "twin"
    _bale(capsys, "build", "-q", "-f", str(spec), "--platform", "linux/amd64", "-o", f"oci:{twin}")
    assert main(["index", "create", amd, f"oci:{twin}", "-o", out]) == 2
    assert f"'{amd}' and 'oci:{twin}' are both linux/amd64 images" in capsys.readouterr().err

    assert main(["index", "create", amd, f"oci:{multi}", "-o", out]) == 1
    err = capsys.readouterr().err
    assert "is an index of 2 platform images (linux/amd64, linux/arm64)" in err

    assert main(["index", "create", amd, f"oci:{tmp_path / 'nope'}", "-o", out]) == 2
    assert "does not exist" in capsys.readouterr().err

    assert main(["index", "create", amd, "--annotation", "novalue", "-o", out]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_single_platform_index_and_archives_are_sources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path / "ctx", extra='index = "always"')
    # A docker-archive source cannot hold referrers: compare images only.
    direct = _bale(
        capsys,
        "build",
        "-q",
        "-f",
        str(spec),
        "--no-sbom",
        "--no-provenance",
        "-o",
        f"oci:{tmp_path / 'direct'}",
    )
    wrapped = tmp_path / "wrapped"
    one = ["build", "-q", "-f", str(spec), "--no-sbom", "--no-provenance", "--platform"]
    _bale(capsys, *one, "linux/amd64", "-o", f"oci:{wrapped}")
    assert json.loads((wrapped / "index.json").read_text())["manifests"][0]["mediaType"] == (
        "application/vnd.oci.image.index.v1+json"
    )
    add_attestation(wrapped)
    assert len(check_layout(wrapped)) == 2
    archive = tmp_path / "arm.tar"
    _bale(capsys, *one, "linux/arm64", "-o", f"docker-archive:{archive}:app:v1")
    sources = [f"oci:{wrapped}", f"docker-archive:{archive}"]
    out = tmp_path / "out"
    assert _bale(capsys, "index", "create", *sources, "-o", f"oci:{out}") == direct
    assert len(check_layout(out)) == 2, "the attestation of a source is left out"
    assert sorted(p.name for p in (out / "blobs/sha256").iterdir()) == sorted(
        p.name for p in (tmp_path / "direct/blobs/sha256").iterdir()
    )
