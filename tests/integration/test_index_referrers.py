"""``bale index create`` copies each platform image's referrers, from every source kind to
every output kind: docker-registry (the referrers tag), a registry with the referrers API,
an OCI layout (listed in index.json) and an oci-archive (stored, unlisted).

Judges: plain HTTP reads of the registries, ``skopeo inspect --raw`` of the referrers
tag, the OCI schemas over the layout, Python's tarfile over the archive.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
from pathlib import Path

import httpx
import pytest

from builder.cli.main import main
from builder.model import canonical_json
from tests.helpers import check_layout, skopeo_raw, write_toml
from tests.integration.referrers_server import ReferrersRegistry
from tests.integration.registry_fixtures import RunningRegistry, require_tool
from tests.supply.keys import make_key

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ACCEPT = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"
PLATFORMS = ("linux/amd64", "linux/arm64")
IMAGE = """
[image]
created = "2024-01-01T00:00:00Z"
[[layers]]
content = [{ dst = "/etc/app", text = "index referrers" }]
"""

# Each platform image: its manifest digest → {referrer digest: artifactType}.
Referrers = dict[str, dict[str, str]]


def _get(host: str, path: str) -> httpx.Response:
    return httpx.get(f"http://{host}{path}", headers={"Accept": ACCEPT}, timeout=10)


def _bale(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 0, capsys.readouterr().err
    return capsys.readouterr().out.split()[-1]


Sources = tuple[dict[str, list[str]], Referrers, Path]


@pytest.fixture(scope="module")
def sources(plain_registry: RunningRegistry, tmp_path_factory: pytest.TempPathFactory) -> Sources:
    """One signed build per platform, written as a layout, an archive and a push."""
    tmp_path = tmp_path_factory.mktemp("sources")
    host = plain_registry.host
    private, public = make_key(tmp_path, "p256")
    spec = write_toml(tmp_path, IMAGE)
    found: dict[str, list[str]] = {"oci": [], "oci-archive": [], "docker": []}
    expected: Referrers = {}
    for platform in PLATFORMS:
        arch = platform.split("/")[1]
        layout, archive = tmp_path / f"{arch}-oci", tmp_path / f"{arch}.tar"
        ref = f"{host}/{_unique(tmp_path)}/src:{arch}"
        outputs = [
            "-o",
            f"oci:{layout}:v1",
            "-o",
            f"oci-archive:{archive}",
            "-o",
            f"docker://{ref}",
        ]
        args = ["build", "-q", "-f", str(spec), "--platform", platform, "--sign-key", str(private)]
        assert main([*args, *outputs, "--insecure-registry", host]) == 0
        index = json.loads((layout / "index.json").read_text())["manifests"]
        (image,) = [m for m in index if "artifactType" not in m]
        listed = {m["digest"]: m["artifactType"] for m in index if "artifactType" in m}
        expected[image["digest"]] = listed
        found["oci"].append(f"oci:{layout}:v1")
        found["oci-archive"].append(f"oci-archive:{archive}")
        found["docker"].append(f"docker://{ref}")
    return found, expected, public


def _unique(tmp_path: Path) -> str:
    """A repository of this test's own: the session's registry keeps what others pushed."""
    return "t" + hashlib.sha256(str(tmp_path).encode()).hexdigest()[:12]


def _tag_referrers(host: str, repo: str, subject: str) -> dict[str, str]:
    """The referrers tag read with plain HTTP, and skopeo reading the same bytes."""
    tag = subject.replace(":", "-")
    response = _get(host, f"/v2/{repo}/manifests/{tag}")
    assert response.status_code == 200, (repo, tag)
    raw = skopeo_raw(f"docker://{host}/{repo}:{tag}")
    assert raw == response.content
    found = {}
    for entry in response.json()["manifests"]:
        manifest = _get(host, f"/v2/{repo}/manifests/{entry['digest']}")
        assert manifest.status_code == 200
        assert manifest.json()["subject"]["digest"] == subject
        for blob in [manifest.json()["config"], *manifest.json()["layers"]]:
            head = httpx.head(f"http://{host}/v2/{repo}/blobs/{blob['digest']}", timeout=10)
            assert head.status_code == 200, blob
        found[entry["digest"]] = entry["artifactType"]
    return found


def _archive_referrers(archive: Path, subject: str) -> dict[str, str]:
    found = {}
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            stream = tar.extractfile(member)
            data = stream.read() if stream is not None else b""
            if not member.name.startswith("blobs/") or not data.startswith(b"{"):
                continue
            assert hashlib.sha256(data).hexdigest() == member.name.split("/")[-1]
            document = json.loads(data)
            named = document.get("subject") if isinstance(document, dict) else None
            if isinstance(named, dict) and named.get("digest") == subject:
                found["sha256:" + member.name.split("/")[-1]] = document["artifactType"]
    return found


@pytest.mark.parametrize("kind", ["docker", "oci", "oci-archive"])
def test_index_create_copies_the_referrers_of_each_source_kind(
    plain_registry: RunningRegistry,
    sources: Sources,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
) -> None:
    host = plain_registry.host
    given, expected, public = sources
    layout, archive = tmp_path / "index-oci", tmp_path / "index.tar"
    repo = f"{_unique(tmp_path)}/dst"
    outputs = ["-o", f"oci:{layout}:v1", "-o", f"oci-archive:{archive}"]
    outputs += ["-o", f"docker://{host}/{repo}:v1"]
    index = _bale(capsys, "index", "create", *given[kind], *outputs, "--insecure-registry", host)
    assert len(check_layout(layout)) == 2
    listed = json.loads((layout / "index.json").read_text())["manifests"]
    in_layout = {m["digest"]: m["artifactType"] for m in listed if "artifactType" in m}
    assert in_layout == {d: t for found in expected.values() for d, t in found.items()}
    for subject, found in expected.items():
        assert len(found) == 5  # SBOM, provenance, the cosign signature, a DSSE of each
        assert _archive_referrers(archive, subject) == found
        assert _tag_referrers(host, repo, subject) == found
    assert _get(host, f"/v2/{repo}/manifests/v1").headers["Docker-Content-Digest"] == index
    for source in (f"oci:{layout}:v1", f"oci-archive:{archive}", f"docker://{host}/{repo}:v1"):
        assert _inspected(capsys, source, host) == expected, source
        checked = ["check-signatures", "-q", source, "--key", str(public)]
        assert main([*checked, "--insecure-registry", host]) == 0, source


def _inspected(capsys: pytest.CaptureFixture[str], source: str, host: str) -> Referrers:
    """What ``bale inspect --json`` reports of each platform image's referrers."""
    capsys.readouterr()
    assert main(["inspect", "--json", "--insecure-registry", host, source]) == 0
    shown = json.loads(capsys.readouterr().out)
    return {
        image["manifest"]["digest"]: {r["digest"]: r["artifactType"] for r in image["referrers"]}
        for image in shown["images"]
    }


def test_index_create_pushes_the_referrers_through_the_api(
    plain_registry: RunningRegistry, sources: Sources, capsys: pytest.CaptureFixture[str]
) -> None:
    given, expected, _ = sources
    with ReferrersRegistry().running() as registry:
        host = registry.host
        ref = f"docker://{host}/api/app:v1"
        args = ["index", "create", *given["docker"], "-o", ref, "--insecure-registry", host]
        _bale(capsys, *args, "--insecure-registry", plain_registry.host)
        for subject, found in expected.items():
            listed = _get(host, f"/v2/api/app/referrers/{subject}").json()["manifests"]
            assert {e["digest"]: e["artifactType"] for e in listed} == found
            tag = subject.replace(":", "-")
            assert tag not in registry.tag_names("api/app"), "the API indexes them: no tag"
        assert _inspected(capsys, ref, host) == expected


def test_index_create_says_a_docker_archive_leaves_them_out(
    sources: Sources, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "one.tar"
    args = ["index", "create", sources[0]["oci"][0], "-o", f"docker-archive:{archive}"]
    assert main(args) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "note:" in line]
    assert len(notes) == 1 and f"docker-archive:{archive}" in notes[0]
    subprocess.run(
        [require_tool("skopeo"), "inspect", f"docker-archive:{archive}"],
        capture_output=True,
        check=True,
    )


def test_a_referrer_that_is_an_index_is_left_out_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_toml(tmp_path, IMAGE)
    out = tmp_path / "out"
    with ReferrersRegistry().running() as registry:
        host = registry.host
        ref = f"{host}/nested/src:v1"
        image = _bale(capsys, "build", "-q", "-f", str(spec), "-o", f"docker://{ref}")
        size = len(_get(host, f"/v2/nested/src/manifests/{image}").content)
        nested = canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": INDEX,
                "artifactType": "application/example",
                "manifests": [],
                "subject": {"mediaType": MANIFEST, "digest": image, "size": size},
            }
        )
        digest = "sha256:" + hashlib.sha256(nested).hexdigest()
        put = httpx.put(
            f"http://{host}/v2/nested/src/manifests/{digest}",
            content=nested,
            headers={"Content-Type": INDEX},
            timeout=10,
        )
        assert put.status_code == 201, put.text
        args = ["index", "create", f"docker://{ref}", "-o", f"oci:{out}:v1"]
        assert main([*args, "--insecure-registry", host]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "note:" in line]
    assert len(notes) == 1 and digest in notes[0] and "not copied" in notes[0]
    copied = json.loads((out / "index.json").read_text())["manifests"]
    kinds = sorted(m["artifactType"] for m in copied if "artifactType" in m)
    assert kinds == ["application/spdx+json", "application/vnd.in-toto+json"]
    check_layout(out)


def test_a_deleted_referrer_still_listed_in_the_tag_is_left_out_with_a_note(
    plain_registry: RunningRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host, repo = plain_registry.host, f"{_unique(tmp_path)}/gone"
    spec = write_toml(tmp_path, IMAGE)
    image = _bale(capsys, "build", "-q", "-f", str(spec), "-o", f"docker://{host}/{repo}:v1")
    listed = _tag_referrers(host, repo, image)
    (sbom,) = [d for d, kind in listed.items() if kind == "application/spdx+json"]
    deleted = httpx.delete(f"http://{host}/v2/{repo}/manifests/{sbom}", timeout=10)
    assert deleted.status_code == 202, deleted.text
    out = tmp_path / "out"
    args = ["index", "create", f"docker://{host}/{repo}:v1", "-o", f"oci:{out}:v1"]
    assert main([*args, "--insecure-registry", host]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "note:" in line]
    assert len(notes) == 1 and sbom in notes[0] and "not in the repository" in notes[0]
    copied = json.loads((out / "index.json").read_text())["manifests"]
    assert [m["artifactType"] for m in copied if "artifactType" in m] == [
        "application/vnd.in-toto+json"
    ]
    check_layout(out)
