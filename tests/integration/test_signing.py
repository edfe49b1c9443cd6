"""Signed builds pushed to registries: the referrers tag on docker-registry, the API on a fake.

Judges: plain HTTP reads of the registry, skopeo, openssl over the exact payload
bytes; ``bale check-signatures`` is checked against them, not the other way round.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from builder.cli.main import main
from tests.helpers import skopeo_raw, write_toml
from tests.integration.referrers_server import ReferrersRegistry
from tests.integration.registry_fixtures import RunningRegistry, require_tool
from tests.supply.keys import make_key, openssl_verifies

ACCEPT = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"
SIG = "application/vnd.dev.cosign.artifact.sig.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
IMAGE = """
[image]
tags = ["v1"]
platforms = ["linux/amd64", "linux/arm64"]
[[layers]]
content = [{ dst = "/etc/hello", text = "signed" }]
"""


def _context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    return write_toml(ctx, IMAGE)


def _get(host: str, path: str, accept: str = ACCEPT) -> httpx.Response:
    return httpx.get(f"http://{host}{path}", headers={"Accept": accept}, timeout=10)


def _push(tmp_path: Path, ref: str, key: Path, *extra: str) -> str:
    spec = _context(tmp_path)
    args = ["build", "-q", "-f", str(spec), "-o", f"docker://{ref}", "--sign-key", str(key)]
    assert main([*args, "--insecure-registry", ref.split("/")[0], *extra]) == 0
    index = _get(ref.split("/")[0], f"/v2/{_repo(ref)}/manifests/v1")
    return str(index.headers["Docker-Content-Digest"])


def _repo(ref: str) -> str:
    return ref.split("/", 1)[1].rsplit(":", 1)[0]


def _subjects(host: str, repo: str, root: str) -> list[str]:
    index = _get(host, f"/v2/{repo}/manifests/{root}").json()
    return [root, *(m["digest"] for m in index["manifests"])]


def _check_cosign(host: str, repo: str, entry: dict[str, Any], subject: str, pub: Path) -> None:
    """openssl verifies the signature annotation over the exact simple-signing bytes."""
    manifest = _get(host, f"/v2/{repo}/manifests/{entry['digest']}").json()
    assert manifest["subject"]["digest"] == subject
    (layer,) = manifest["layers"]
    payload = _get(host, f"/v2/{repo}/blobs/{layer['digest']}", "*/*").content
    signature = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
    assert openssl_verifies(pub, payload, signature, ed25519=False)
    claims = json.loads(payload)["critical"]
    assert claims["image"]["docker-manifest-digest"] == subject
    assert claims["identity"]["docker-reference"] == f"{host}/{repo}"


def test_signed_push_to_docker_registry_keeps_the_referrers_tag(
    plain_registry: RunningRegistry, tmp_path: Path
) -> None:
    private, public = make_key(tmp_path, "p256")
    host, repo = plain_registry.host, "signed/app"
    root = _push(tmp_path, f"{host}/{repo}:v1", private)
    assert _get(host, f"/v2/{repo}/referrers/{root}").status_code == 404
    for subject in _subjects(host, repo, root):
        tag = subject.replace(":", "-")
        response = _get(host, f"/v2/{repo}/manifests/{tag}")
        assert response.status_code == 200, tag
        assert response.headers["Content-Type"] == "application/vnd.oci.image.index.v1+json"
        (entry,) = [e for e in response.json()["manifests"] if e["artifactType"] == SIG]
        assert entry["artifactType"] == SIG
        _check_cosign(host, repo, entry, subject, public)
        raw = skopeo_raw(f"docker://{host}/{repo}:{tag}")
        assert raw == response.content
    ok = main(["check-signatures", "-q", f"docker://{host}/{repo}:v1", "--key", str(public)])
    assert ok == 0
    copied = subprocess.run(
        [
            require_tool("skopeo"),
            "copy",
            "--all",
            "--src-tls-verify=false",
            f"docker://{host}/{repo}:v1",
            f"oci:{tmp_path / 'copy'}:v1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert copied.returncode == 0, copied.stderr
    other = make_key(tmp_path / "other", "p256")[1]
    assert main(["check-signatures", "-q", f"docker://{host}/{repo}:v1", "--key", str(other)]) == 1


def _foreign_referrer(host: str, repo: str, subject: str) -> dict[str, Any]:
    """Another tool's artifact for ``subject``, pushed with plain HTTP; its index entry."""
    empty = b"{}"
    empty_digest = "sha256:" + hashlib.sha256(empty).hexdigest()
    start = httpx.post(f"http://{host}/v2/{repo}/blobs/uploads/")
    location = httpx.URL(f"http://{host}").join(start.headers["Location"])
    sep = "&" if "?" in str(location) else "?"
    done = httpx.put(
        f"{location}{sep}digest={empty_digest}",
        content=empty,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert done.status_code == 201, done.text
    blob = {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty_digest, "size": 2}
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "artifactType": "application/vnd.example.other+json",
            "config": blob,
            "layers": [blob],
            "subject": {"mediaType": INDEX, "digest": subject, "size": 1},
        }
    ).encode()
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    put = httpx.put(
        f"http://{host}/v2/{repo}/manifests/{digest}",
        content=manifest,
        headers={"Content-Type": MANIFEST},
    )
    assert put.status_code == 201, put.text
    return {
        "mediaType": MANIFEST,
        "digest": digest,
        "size": len(manifest),
        "artifactType": "application/vnd.example.other+json",
    }


def test_referrers_tag_keeps_other_tools_entries(
    plain_registry: RunningRegistry, tmp_path: Path
) -> None:
    private, _ = make_key(tmp_path, "p256")
    host, repo = plain_registry.host, "signed/merge"
    spec = _context(tmp_path)
    assert main(["build", "-q", "-f", str(spec), "-o", f"oci:{tmp_path / 'oci'}"]) == 0
    root = json.loads((tmp_path / "oci" / "index.json").read_text())["manifests"][0]["digest"]
    foreign = _foreign_referrer(host, repo, root)
    index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": [foreign]}
    put = httpx.put(
        f"http://{host}/v2/{repo}/manifests/{root.replace(':', '-')}",
        content=json.dumps(index).encode(),
        headers={"Content-Type": INDEX},
    )
    assert put.status_code == 201, put.text
    assert _push(tmp_path, f"{host}/{repo}:v1", private) == root
    assert _push(tmp_path, f"{host}/{repo}:v1", private) == root
    listed = _get(host, f"/v2/{repo}/manifests/{root.replace(':', '-')}").json()["manifests"]
    assert listed[0] == foreign
    assert [e["artifactType"] for e in listed[1:]].count(SIG) == 1
    assert len({e["digest"] for e in listed}) == len(listed)


def test_registry_with_the_referrers_api_gets_no_tag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private, public = make_key(tmp_path, "ed25519")
    with ReferrersRegistry().running() as registry:
        ref = f"{registry.host}/api/app:v1"
        root = _push(tmp_path, ref, private)
        assert registry.tag_names("api/app") == ["v1"]
        listed = _get(registry.host, f"/v2/api/app/referrers/{root}").json()["manifests"]
        assert [e["artifactType"] for e in listed].count(SIG) == 1
        assert main(["check-signatures", "-q", f"docker://{ref}", "--key", str(public)]) == 0
        capsys.readouterr()
        assert (
            main(["inspect", "--json", "--insecure-registry", registry.host, f"docker://{ref}"])
            == 0
        )
        shown = json.loads(capsys.readouterr().out)
        assert [(r["artifactType"], r["digest"]) for r in shown["referrers"]] == [
            (e["artifactType"], e["digest"]) for e in listed
        ]
        for image in shown["images"]:
            (entry,) = [r for r in image["referrers"] if r["artifactType"] == SIG]
            assert entry["artifactType"] == SIG


def test_registry_refusing_artifacts_fails_before_any_tag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private, _ = make_key(tmp_path, "p256")
    with ReferrersRegistry(refuse_artifacts=True).running() as registry:
        spec = _context(tmp_path)
        ref = f"{registry.host}/refuse/app:v1"
        args = ["build", "-q", "-f", str(spec), "-o", f"docker://{ref}", "--sign-key", str(private)]
        capsys.readouterr()
        assert main([*args, "--insecure-registry", registry.host]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "MANIFEST_INVALID" in err[0], err
        assert registry.tag_names("refuse/app") == []


def test_a_referrers_tag_holding_something_else_is_not_overwritten(
    plain_registry: RunningRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private, _ = make_key(tmp_path, "p256")
    host, repo = plain_registry.host, "signed/occupied"
    spec = _context(tmp_path)
    assert main(["build", "-q", "-f", str(spec), "-o", f"oci:{tmp_path / 'oci'}"]) == 0
    root = json.loads((tmp_path / "oci" / "index.json").read_text())["manifests"][0]["digest"]
    occupant = _foreign_referrer(host, repo, root)
    data = _get(host, f"/v2/{repo}/manifests/{occupant['digest']}").content
    put = httpx.put(
        f"http://{host}/v2/{repo}/manifests/{root.replace(':', '-')}",
        content=data,
        headers={"Content-Type": MANIFEST},
    )
    assert put.status_code == 201, put.text
    args = ["build", "-q", "-f", str(spec), "-o", f"docker://{host}/{repo}:v1"]
    capsys.readouterr()
    assert main([*args, "--sign-key", str(private)]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "not the image index of referrers" in line and root.replace(":", "-") in line
    assert _get(host, f"/v2/{repo}/manifests/v1").status_code == 404
    assert _get(host, f"/v2/{repo}/manifests/{root.replace(':', '-')}").content == data
