"""``bale sbom`` on every kind of source, ``bale index create`` keeping referrers, and
provenance from a CI environment (an allow-list: no secret is copied)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from builder.cli.main import main
from tests.conftest import require_tool
from tests.helpers import write_toml
from tests.integration.registry_fixtures import RunningRegistry
from tests.integration.sbom_judges import IN_TOTO, artifacts, cyclonedx_valid, packages, spdx_valid

IMAGE = """
[image]
tags = ["v1"]
platforms = {platforms}
created = "2024-05-01T12:00:00Z"
compression = "gzip"
[[layers]]
name = "app"
content = [
  {{ dst = "/srv/site-packages/tool-2.0.dist-info/METADATA", text = "Name: tool\\nVersion: 2.0\\n" }},
  {{ dst = "/srv/app.txt", text = "hello" }},
]
"""


def spec_in(root: Path, platforms: str = '["linux/amd64"]') -> Path:
    root.mkdir(parents=True, exist_ok=True)
    return write_toml(root, IMAGE.format(platforms=platforms))


def sbom(capsys: pytest.CaptureFixture[str], *args: str) -> bytes:
    capsys.readouterr()
    assert main(["sbom", *args]) == 0, capsys.readouterr().err
    return capsys.readouterr().out.encode()


def test_bale_sbom_reads_layouts_archives_and_registries(
    tmp_path: Path, plain_registry: RunningRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = spec_in(tmp_path / "ctx")
    layout, oci, docker = tmp_path / "l", tmp_path / "o.tar", tmp_path / "d.tar"
    outputs = ["-o", f"oci:{layout}", "-o", f"oci-archive:{oci}", "-o", f"docker-archive:{docker}"]
    assert main(["build", "-q", "-f", str(spec), *outputs]) == 0
    ref = f"{plain_registry.host}/sbom/app:v1"
    skopeo = require_tool("skopeo")
    subprocess.run(
        [skopeo, "copy", "--dest-tls-verify=false", f"oci:{layout}:v1", f"docker://{ref}"],
        check=True,
        capture_output=True,
    )
    sources = [f"oci:{layout}:v1", f"oci-archive:{oci}", f"docker-archive:{docker}"]
    sources.append(f"docker://{ref}")
    registry = ["--insecure-registry", plain_registry.host]
    found = []
    for source in sources:
        extra = registry if source.startswith("docker://") else []
        document = sbom(capsys, source, *extra)
        spdx_valid(document, tmp_path)
        found.append((packages(document, "pypi"), json.loads(document)["files"]))
    assert all(item == found[0] for item in found)
    assert found[0][0] == {("tool", "2.0")}
    assert {f["fileName"] for f in found[0][1]} == {
        "./srv/app.txt",
        "./srv/site-packages/tool-2.0.dist-info/METADATA",
    }
    cyclonedx_valid(sbom(capsys, f"oci:{layout}:v1", "--format", "cyclonedx"))


def test_bale_sbom_of_an_index_needs_a_platform(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = spec_in(tmp_path / "ctx", '["linux/amd64", "linux/arm64"]')
    layout = tmp_path / "l"
    assert main(["build", "-q", "-f", str(spec), "-o", f"oci:{layout}"]) == 0
    capsys.readouterr()
    assert main(["sbom", f"oci:{layout}:v1"]) == 1
    err = capsys.readouterr().err
    assert "several platforms" in err and len(err.strip().splitlines()) == 1
    document = json.loads(sbom(capsys, f"oci:{layout}:v1", "--platform", "linux/arm64"))
    assert document["name"].endswith("linux/arm64")


def test_index_create_keeps_the_referrers_a_direct_build_has(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = spec_in(tmp_path / "ctx", '["linux/amd64", "linux/arm64"]')
    direct = tmp_path / "direct"
    assert main(["build", "-q", "-f", str(spec), "-o", f"oci:{direct}"]) == 0
    sources = []
    for platform in ("linux/amd64", "linux/arm64"):
        out = tmp_path / platform.replace("/", "-")
        assert (
            main(["build", "-q", "-f", str(spec), "--platform", platform, "-o", f"oci:{out}"]) == 0
        )
        sources.append(f"oci:{out}:v1")
    joined = tmp_path / "joined"
    assert main(["index", "create", "-q", "-t", "v1", *sources, "-o", f"oci:{joined}"]) == 0
    assert artifacts(joined) == artifacts(direct)
    assert len(artifacts(joined)[IN_TOTO]) == 2
    assert (joined / "index.json").read_bytes() == (direct / "index.json").read_bytes()


def test_provenance_takes_github_actions_variables_and_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    github = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/app",
        "GITHUB_WORKFLOW_REF": "acme/app/.github/workflows/build.yml@refs/heads/main",
        "GITHUB_RUN_ID": "42",
        "GITHUB_RUN_ATTEMPT": "2",
        "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_TOKEN": "ghs_secret-token-value",
        "ACTIONS_RUNTIME_TOKEN": "runtime-secret-value",
        "MY_PASSWORD": "hunter2-secret",
    }
    for name, value in github.items():
        monkeypatch.setenv(name, value)
    spec = spec_in(tmp_path / "ctx")
    out = tmp_path / "out"
    assert main(["build", "-q", "-f", str(spec), "-o", f"oci:{out}"]) == 0
    [(_, payload)] = artifacts(out)[IN_TOTO]
    for secret in ("ghs_secret", "runtime-secret", "hunter2"):
        assert secret.encode() not in payload
    predicate = json.loads(payload)["predicate"]
    run = predicate["runDetails"]
    assert run["builder"]["id"] == (
        "https://github.com/acme/app/.github/workflows/build.yml@refs/heads/main"
    )
    assert run["metadata"]["invocationId"] == (
        "https://github.com/acme/app/actions/runs/42/attempts/2"
    )
    source = predicate["buildDefinition"]["resolvedDependencies"][-1]
    assert source == {
        "name": "source",
        "uri": "git+https://github.com/acme/app@refs/heads/main",
        "digest": {"gitCommit": github["GITHUB_SHA"]},
    }
    assert predicate["buildDefinition"]["internalParameters"]["GITHUB_EVENT_NAME"] == "push"
