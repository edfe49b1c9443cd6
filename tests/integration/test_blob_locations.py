"""The blob-location cache: a push to a second repository mounts what the first got.

Judged by the real registry's request log (every request line, query included)
and by skopeo reading the result.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from builder.cachedir import cache_dir
from builder.cli.main import main
from tests.helpers import write_toml
from tests.integration.registry_fixtures import RunningRegistry, require_tool

# No SBOM or provenance: the counts below are of the image's own blobs (layer, config).
SPEC = (
    "[image]\nsbom = false\nprovenance = false\n"
    '[[layers]]\ncontent = [{{ dst = "/etc/data", text = "{text}" }}]\n'
)


def build_to(spec: Path, reg: RunningRegistry, repo: str, *extra: str) -> None:
    target = f"docker://{reg.host}/{repo}:v1"
    assert main(["build", "-q", "-f", str(spec), "-o", target, *extra]) == 0


_ACCESS = re.compile(r'"(\w+) (/v2/\S+) HTTP/1\.1" (\d{3})')


def requests(reg: RunningRegistry, repo: str) -> list[tuple[str, str, int]]:
    """(method, path, status) of each request to ``repo``, from the registry's access log."""
    found = (_ACCESS.search(line) for line in reg.log().splitlines())
    return [
        (m[1], m[2], int(m[3])) for m in found if m is not None and m[2].startswith(f"/v2/{repo}/")
    ]


def uploads(reg: RunningRegistry, repo: str) -> list[str]:
    return [
        path
        for method, path, _ in requests(reg, repo)
        if method in ("PUT", "PATCH") and "/blobs/uploads/" in path
    ]


def mounts(reg: RunningRegistry, repo: str, source: str) -> list[int]:
    """Statuses of the mount requests from ``source`` (201 mounted, 202 refused)."""
    return [
        status
        for method, path, status in requests(reg, repo)
        if method == "POST" and "mount=sha256:" in path and f"from={source}" in path
    ]


def skopeo_digest(reg: RunningRegistry, repo: str) -> str:
    flags = ["--tls-verify=false"] if reg.cert_dir is None else ["--cert-dir", str(reg.cert_dir)]
    if reg.username:
        flags += ["--creds", f"{reg.username}:{reg.password}"]
    run = subprocess.run(
        [require_tool("skopeo"), "inspect", *flags, f"docker://{reg.host}/{repo}:v1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return str(json.loads(run.stdout)["Digest"])


def test_second_repository_mounts_instead_of_uploading(
    plain_registry: RunningRegistry, tmp_path: Path
) -> None:
    spec = write_toml(tmp_path, SPEC.format(text=os.urandom(8).hex()))
    build_to(spec, plain_registry, "where/first")
    assert len(uploads(plain_registry, "where/first")) == 2  # layer and config
    build_to(spec, plain_registry, "where/second")
    assert uploads(plain_registry, "where/second") == []
    assert mounts(plain_registry, "where/second", "where/first") == [201, 201]
    assert skopeo_digest(plain_registry, "where/second") == skopeo_digest(
        plain_registry, "where/first"
    )
    stored = json.loads((cache_dir() / "blob-locations.json").read_text())["blobs"]
    assert all([plain_registry.host, "where/second"] in places for places in stored.values())


def test_a_refused_mount_falls_back_to_upload(
    plain_registry: RunningRegistry, tmp_path: Path
) -> None:
    spec = write_toml(tmp_path, SPEC.format(text=os.urandom(8).hex()))
    build_to(spec, plain_registry, "where/original")
    table = cache_dir() / "blob-locations.json"
    document = json.loads(table.read_text())
    for places in document["blobs"].values():
        places[:] = [[plain_registry.host, "where/ghost"]]
    table.write_text(json.dumps(document))
    build_to(spec, plain_registry, "where/fallback")
    assert mounts(plain_registry, "where/fallback", "where/ghost") == [202, 202]
    assert len(uploads(plain_registry, "where/fallback")) == 2
    assert skopeo_digest(plain_registry, "where/fallback")


def test_locations_hold_no_credentials(
    tls_registry: RunningRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = base64.b64encode(f"{tls_registry.username}:{tls_registry.password}".encode()).decode()
    docker = tmp_path / "docker"
    docker.mkdir()
    (docker / "config.json").write_text(json.dumps({"auths": {tls_registry.host: {"auth": auth}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(docker))
    spec = write_toml(tmp_path, SPEC.format(text=os.urandom(8).hex()))
    ca = ["--ca-cert", str(tls_registry.ca_path)]
    build_to(spec, tls_registry, "where/auth1", *ca)
    build_to(spec, tls_registry, "where/auth2", *ca)
    assert uploads(tls_registry, "where/auth2") == []
    assert mounts(tls_registry, "where/auth2", "where/auth1") == [201, 201]
    text = (cache_dir() / "blob-locations.json").read_text()
    assert tls_registry.password not in text and auth not in text
    assert tls_registry.username not in text
