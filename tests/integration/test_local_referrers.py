"""Referrers in local outputs: oci-archive (unlisted, loadable), untagged layouts, docker-archive.

Judges: the archive read with Python's tarfile and the OCI schemas, ``podman
load``, ``skopeo copy``/``inspect`` and ``umoci unpack``; bale's own readers
(inspect, check-signatures) are checked against what those found.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from builder.cli.main import main
from tests.conftest import require_tool
from tests.helpers import check_layout, umoci_unpack, validate, write_toml
from tests.supply.keys import make_key

IMAGE = """
[image]
created = "2024-01-01T00:00:00Z"
{extra}
[[layers]]
content = [{{ dst = "/etc/hello", text = "referrers" }}]
"""
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
SIG = "application/vnd.dev.cosign.artifact.sig.v1+json"
DSSE = "application/vnd.dsse.envelope.v1+json"


def _spec(tmp_path: Path, extra: str = "") -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(parents=True, exist_ok=True)
    return write_toml(ctx, IMAGE.format(extra=extra))


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        found = {}
        for member in tar.getmembers():
            stream = tar.extractfile(member)
            if stream is not None:
                found[member.name] = stream.read()
        return found


def _archive_referrers(archive: Path, subject: str) -> dict[str, dict[str, Any]]:
    """Artifact manifests stored in the archive's blobs/ whose subject is ``subject``."""
    found = {}
    for name, data in _members(archive).items():
        if not name.startswith("blobs/sha256/") or not data.startswith(b"{"):
            continue
        assert "sha256:" + hashlib.sha256(data).hexdigest() == "sha256:" + name.split("/")[-1]
        document = json.loads(data)
        if not isinstance(document, dict) or document.get("mediaType") != MANIFEST:
            continue  # a config or a JSON payload (an in-toto statement has a subject list)
        if document.get("subject", {}).get("digest") == subject:
            validate(MANIFEST, document)
            found["sha256:" + name.split("/")[-1]] = document
    return found


def _listed(layout: Path) -> dict[str, str]:
    """The referrers a layout's index.json lists: digest → artifactType."""
    index = json.loads((layout / "index.json").read_text())
    return {m["digest"]: m["artifactType"] for m in index["manifests"] if "artifactType" in m}


def _inspected(capsys: pytest.CaptureFixture[str], source: str) -> list[tuple[str, str]]:
    capsys.readouterr()
    assert main(["inspect", "--json", source]) == 0
    shown = json.loads(capsys.readouterr().out)
    (image,) = shown["images"]
    return sorted((r["digest"], r["artifactType"]) for r in image["referrers"])


def test_oci_archive_keeps_the_referrers_and_stays_loadable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], podman: list[str]
) -> None:
    private, public = make_key(tmp_path, "p256")
    tagged, plain = tmp_path / "tagged.tar", tmp_path / "plain.tar"
    built: dict[Path, tuple[str, dict[str, str]]] = {}
    for archive, extra in ((tagged, 'tags = ["v1"]'), (plain, "")):
        spec = _spec(tmp_path / archive.stem, extra)
        layout = tmp_path / archive.stem / "oci"
        args = ["build", "-q", "-f", str(spec), "--sign-key", str(private)]
        assert main([*args, "-o", f"oci:{layout}:v1", "-o", f"oci-archive:{archive}"]) == 0
        assert len(check_layout(layout)) == 1
        built[archive] = (capsys.readouterr().out.split()[-1], _listed(layout))
    digest, listed = built[tagged]
    assert built[plain][0] == digest, "tags change the provenance, never the image"
    kinds = ["application/spdx+json", "application/vnd.in-toto+json", SIG, DSSE]
    assert sorted(set(listed.values())) == sorted(kinds)
    for archive, (_, expected) in built.items():
        members = _members(archive)
        (entry,) = json.loads(members["index.json"])["manifests"]
        assert entry["digest"] == digest
        stored = _archive_referrers(archive, digest)
        assert {d: m["artifactType"] for d, m in stored.items()} == expected
        for document in stored.values():
            for layer in [document["config"], *document["layers"]]:
                assert f"blobs/sha256/{layer['digest'].split(':')[1]}" in members
        source = f"oci-archive:{archive}"
        assert _inspected(capsys, source) == sorted(expected.items())
        assert main(["check-signatures", "-q", source, "--key", str(public)]) == 0

    skopeo = require_tool("skopeo")
    refs = (f"oci-archive:{tagged}", f"oci-archive:{tagged}:v1", f"oci-archive:{plain}")
    for number, ref in enumerate(refs):
        out = tmp_path / f"copy{number}"
        copy = subprocess.run(
            [skopeo, "copy", ref, f"oci:{out}:x"], capture_output=True, text=True, check=False
        )
        assert copy.returncode == 0, (ref, copy.stderr)
        (entry,) = json.loads((out / "index.json").read_text())["manifests"]
        assert entry["digest"] == digest
    load = subprocess.run(
        [*podman, "load", "-i", str(tagged)], capture_output=True, text=True, check=False
    )
    assert load.returncode == 0, load.stderr
    listing = subprocess.run(
        [*podman, "images", "--no-trunc", "--format", "{{.Digest}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert digest in listing.stdout.split()
    unpacked = tmp_path / "unpacked"
    for name, data in _members(tagged).items():
        (unpacked / name).parent.mkdir(parents=True, exist_ok=True)
        (unpacked / name).write_bytes(data)
    rootfs = umoci_unpack(unpacked, "v1", tmp_path / "bundle")
    assert (rootfs / "etc/hello").read_text() == "referrers"


def test_untagged_layout_with_referrers_is_tagged_latest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path)
    layout = tmp_path / "oci"
    assert main(["build", "-f", str(spec), "-o", f"oci:{layout}"]) == 0
    captured = capsys.readouterr()
    digest = captured.out.split()[-1]
    notes = [line for line in captured.err.splitlines() if "note:" in line]
    assert len(notes) == 1 and "'latest'" in notes[0] and f"oci:{layout}:latest" in notes[0]
    index = json.loads((layout / "index.json").read_text())["manifests"]
    (image,) = [m for m in index if "artifactType" not in m]
    assert image["digest"] == digest
    assert image["annotations"] == {"org.opencontainers.image.ref.name": "latest"}
    assert len(_listed(layout)) == 2
    skopeo = require_tool("skopeo")
    raw = subprocess.run(
        [skopeo, "inspect", "--raw", f"oci:{layout}:latest"], capture_output=True, check=True
    ).stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest

    bare = tmp_path / "bare"
    args = ["build", "-f", str(spec), "--no-sbom", "--no-provenance", "-o", f"oci:{bare}"]
    assert main(args) == 0
    assert "note:" not in capsys.readouterr().err
    (entry,) = json.loads((bare / "index.json").read_text())["manifests"]
    assert "annotations" not in entry, "nothing to tell apart: left untagged"
    subprocess.run([skopeo, "inspect", f"oci:{bare}"], capture_output=True, check=True)


def test_docker_archive_says_once_it_cannot_hold_referrers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path, 'tags = ["v1"]')
    archive, layout = tmp_path / "d.tar", tmp_path / "oci"
    args = ["build", "-f", str(spec), "-o", f"docker-archive:{archive}", "-o", f"oci:{layout}"]
    assert main(args) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "note:" in line]
    assert len(notes) == 1 and f"docker-archive:{archive}" in notes[0]
    assert "left out" in notes[0]
    members = _members(archive)
    for digest in _listed(layout):
        assert f"blobs/sha256/{digest.split(':')[1]}" not in members
    assert _inspected(capsys, f"docker-archive:{archive}") == []
    subprocess.run(
        [require_tool("skopeo"), "inspect", f"docker-archive:{archive}"],
        capture_output=True,
        check=True,
    )
