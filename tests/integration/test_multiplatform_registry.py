"""Multi-platform images through a real registry: pushed indexes, Docker lists, CI assembly."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from builder.cli.main import main
from tests.elf import elf_header
from tests.helpers import check_layout
from tests.integration.registry_fixtures import RunningRegistry, require_tool
from tests.integration.test_multiplatform import PLATFORMS, _context, _files


def _skopeo(*args: str) -> str:
    run = subprocess.run(
        [require_tool("skopeo"), args[0], "--tls-verify=false", *args[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


def _digest(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out.strip().splitlines()[-1]


def _platform(entry: dict[str, dict[str, str]]) -> str:
    p = entry["platform"]
    return "/".join(filter(None, (p["os"], p["architecture"], p.get("variant"))))


def test_pushed_index_lists_every_platform(
    plain_registry: RunningRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _context(tmp_path / "ctx")
    ref = f"{plain_registry.host}/multi/app:v1"
    assert main(["build", "-q", "-f", str(spec), "-o", f"docker://{ref}"]) == 0
    pushed = _digest(capsys)
    data = _skopeo("inspect", "--raw", f"docker://{ref}")
    assert pushed == "sha256:" + hashlib.sha256(data.encode()).hexdigest()
    raw = json.loads(data)
    assert raw["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [_platform(m) for m in raw["manifests"]] == list(PLATFORMS)
    out = tmp_path / "arm"
    _skopeo("copy", "--override-arch", "arm64", f"docker://{ref}", f"oci:{out}:x")
    manifest = check_layout(out)[0]
    assert _files(out, manifest["layers"][0])["bin/tool"] == elf_header("arm64")


def test_docker_format_push_is_read_by_skopeo(
    plain_registry: RunningRegistry, tmp_path: Path
) -> None:
    spec = _context(tmp_path / "ctx", extra='format = "docker"')
    ref = f"{plain_registry.host}/multi/docker:v1"
    assert main(["build", "-q", "-f", str(spec), "-o", f"docker://{ref}"]) == 0
    raw = json.loads(_skopeo("inspect", "--raw", f"docker://{ref}"))
    assert raw["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"
    for entry in raw["manifests"]:
        assert entry["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    inspected = json.loads(_skopeo("inspect", "--override-arch", "arm64", f"docker://{ref}"))
    assert inspected["Architecture"] == "arm64"
    config = json.loads(
        _skopeo(
            "inspect",
            "--config",
            "--raw",
            "--override-arch",
            "arm",
            "--override-variant",
            "v7",
            f"docker://{ref}",
        )
    )
    assert (config["architecture"], config["variant"]) == ("arm", "v7")


def test_index_from_by_digest_pushes_equals_a_direct_build(
    plain_registry: RunningRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _context(tmp_path / "ctx")
    repo = f"{plain_registry.host}/ci/app"
    digests = []
    for platform in ("linux/amd64", "linux/arm64"):
        args = ["build", "-q", "-f", str(spec), "--platform", platform, "--by-digest"]
        assert main([*args, "-o", f"docker://{repo}"]) == 0
        digests.append(_digest(capsys))
    sources = [f"docker://{repo}@{d}" for d in digests]
    assert main(["index", "create", "-q", "-o", f"docker://{repo}:release", *sources]) == 0
    assembled = _digest(capsys)
    direct = [
        "build",
        "-q",
        "-f",
        str(spec),
        "--platform",
        "linux/amd64",
        "--platform",
        "linux/arm64",
        "-o",
        f"oci:{tmp_path / 'direct'}",
    ]
    assert main(direct) == 0
    assert assembled == _digest(capsys)
    raw = json.loads(_skopeo("inspect", "--raw", f"docker://{repo}:release"))
    assert [_platform(m) for m in raw["manifests"]] == ["linux/amd64", "linux/arm64"]
