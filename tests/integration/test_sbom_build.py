"""SBOM and provenance of a build, judged by spdx-tools, cyclonedx-python-lib, the OCI
schemas, umoci and skopeo; reproducible across copies of the context."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from builder.cli.main import main
from tests.conftest import require_tool
from tests.helpers import check_layout, umoci_unpack, write_toml
from tests.integration.sbom_judges import (
    CYCLONEDX,
    IN_TOTO,
    SPDX,
    artifacts,
    cyclonedx_valid,
    packages,
    spdx_valid,
)

IMAGE = """
[image]
tags = ["v1"]
platforms = ["linux/amd64"]
created = "2024-05-01T12:00:00Z"
compression = "gzip"
repository = "registry.example/team/app"
{extra}
[[layers]]
name = "app"
files = [{{ src = "app/", dst = "/app/" }}]
content = [
  {{ dst = "/usr/lib/python3/dist-packages/demo_pkg-1.2.dist-info/METADATA", text = "Metadata-Version: 2.4\\nName: demo_pkg\\nVersion: 1.2\\nLicense-Expression: MIT\\n" }},
  {{ dst = "/app/node_modules/@acme/util/package.json", text = '{{"name": "@acme/util", "version": "3.1.0", "license": "Apache-2.0"}}' }},
  {{ dst = "/var/lib/dpkg/status.d/tzdata", text = "Package: tzdata\\nVersion: 2024a-0+deb12u1\\nArchitecture: all\\n" }},
  {{ dst = "/usr/share/doc/tzdata/copyright", text = "Files: *\\nLicense: public-domain\\n" }},
]
"""


def context(root: Path, extra: str = "") -> Path:
    (root / "app" / "bin").mkdir(parents=True)
    (root / "app" / "bin" / "run").write_text("#!/bin/sh\necho run\n")
    (root / "app" / "data.txt").write_bytes(bytes(range(256)) * 40)
    return write_toml(root, IMAGE.format(extra=extra))


def build(spec: Path, *args: str) -> str:
    assert main(["build", "-q", "-f", str(spec), *args]) == 0
    return ""


def test_sboms_and_provenance_are_valid_and_true(tmp_path: Path) -> None:
    spec = context(tmp_path / "ctx", 'sbom = ["spdx", "cyclonedx"]')
    out = tmp_path / "out"
    build(spec, "-o", f"oci:{out}")
    (image,) = check_layout(out)  # the OCI schemas accept every manifest, artifacts included
    found = artifacts(out)
    assert sorted(found) == sorted([SPDX, CYCLONEDX, IN_TOTO])
    index = json.loads((out / "index.json").read_text())
    subject = next(m for m in index["manifests"] if "artifactType" not in m)
    for kind, [(manifest, _)] in found.items():
        assert manifest["subject"]["digest"] == subject["digest"], kind
    (_, spdx), (_, cdx) = found[SPDX][0], found[CYCLONEDX][0]
    spdx_valid(spdx, tmp_path)
    cyclonedx_valid(cdx)

    assert packages(spdx, "pypi") == {("demo_pkg", "1.2")}
    assert packages(spdx, "npm") == {("@acme/util", "3.1.0")}
    assert packages(spdx, "deb") == {("tzdata", "2024a-0+deb12u1")}
    layer_diff_id = json.loads((out / "blobs/sha256" / image["config"]["digest"][7:]).read_bytes())[
        "rootfs"
    ]["diff_ids"][0]
    document = json.loads(spdx)
    for package in document["packages"][1:]:
        assert layer_diff_id in package["sourceInfo"]

    # The files listed are exactly the image's regular files, hashes as umoci unpacks them.
    rootfs = umoci_unpack(out, "v1", tmp_path / "bundle")
    unpacked = {
        "./" + str(p.relative_to(rootfs)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in rootfs.rglob("*")
        if p.is_file() and not p.is_symlink()
    }
    listed = {
        f["fileName"]: next(
            c["checksumValue"] for c in f["checksums"] if c["algorithm"] == "SHA256"
        )
        for f in document["files"]
    }
    assert listed == unpacked
    components = json.loads(cdx)["components"]
    assert {c["name"] for c in components if c["type"] == "file"} == {n[1:] for n in listed}

    skopeo = require_tool("skopeo")
    raw = subprocess.run(
        [skopeo, "inspect", "--raw", f"oci:{out}:v1"], check=True, capture_output=True
    ).stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == subject["digest"]


def test_provenance_names_the_image_the_spec_and_the_inputs(tmp_path: Path) -> None:
    spec = context(tmp_path / "ctx")
    out = tmp_path / "out"
    build(spec, "-o", f"oci:{out}")
    [(manifest, payload)] = artifacts(out)[IN_TOTO]
    statement = json.loads(payload)
    assert manifest["annotations"]["in-toto.io/predicate-type"] == "https://slsa.dev/provenance/v1"
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    [subject] = statement["subject"]
    assert "sha256:" + subject["digest"]["sha256"] == manifest["subject"]["digest"]
    assert subject["name"].startswith("pkg:oci/app@sha256:")
    definition = statement["predicate"]["buildDefinition"]
    spec_digest = hashlib.sha256(spec.read_bytes()).hexdigest()
    assert definition["externalParameters"]["spec"]["digest"] == {"sha256": spec_digest}
    assert definition["externalParameters"]["options"]["platform"] == "linux/amd64"
    assert [d["name"] for d in definition["resolvedDependencies"]] == ["inputs"]


def test_two_copies_of_the_context_give_the_same_artifacts(tmp_path: Path) -> None:
    first = context(tmp_path / "a", 'sbom = ["spdx", "cyclonedx"]')
    second_root = tmp_path / "elsewhere" / "b"
    shutil.copytree(first.parent, second_root)
    outs = []
    for n, spec in enumerate((first, second_root / "image.toml")):
        out = tmp_path / f"out{n}"
        build(spec, "-o", f"oci:{out}")
        outs.append(out)
    assert (outs[0] / "index.json").read_bytes() == (outs[1] / "index.json").read_bytes()
    assert artifacts(outs[0]) == artifacts(outs[1])
    assert len(artifacts(outs[0])) == 3


def test_json_summary_lists_the_referrers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = context(tmp_path / "ctx")
    out = tmp_path / "out"
    assert main(["build", "--json", "-f", str(spec), "-o", f"oci:{out}"]) == 0
    summary = json.loads(capsys.readouterr().out)
    listed = [m for m in json.loads((out / "index.json").read_text())["manifests"]]
    by_digest = {m["digest"]: m for m in listed if "artifactType" in m}
    assert len(summary["referrers"]) == 2
    for referrer in summary["referrers"]:
        assert by_digest[referrer["digest"]]["artifactType"] == referrer["artifactType"]
        assert referrer["subject"] == summary["images"][0]["manifest"]


def test_switches_from_image_toml_and_the_command_line(tmp_path: Path) -> None:
    spec = context(tmp_path / "ctx", "sbom = false\nprovenance = false")
    build(spec, "-o", f"oci:{tmp_path / 'none'}")
    assert artifacts(tmp_path / "none") == {}
    build(spec, "--sbom", "cyclonedx", "--provenance", "-o", f"oci:{tmp_path / 'cli'}")
    assert sorted(artifacts(tmp_path / "cli")) == sorted([CYCLONEDX, IN_TOTO])
    plain = context(tmp_path / "ctx2")
    build(plain, "--no-sbom", "-o", f"oci:{tmp_path / 'nosbom'}")
    assert sorted(artifacts(tmp_path / "nosbom")) == [IN_TOTO]


def test_bad_sbom_settings_are_usage_and_spec_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = context(tmp_path / "ctx", 'sbom = "swid"')
    out = tmp_path / "out"
    assert main(["build", "-q", "-f", str(spec), "-o", f"oci:{out}"]) == 1
    err = capsys.readouterr().err.strip()
    assert "unknown SBOM format 'swid'" in err and "image.toml" in err
    assert len(err.splitlines()) == 1
    plain = context(tmp_path / "ctx2")
    assert main(["build", "-f", str(plain), "--sbom", "spdx", "--no-sbom"]) == 2
    assert "contradict" in capsys.readouterr().err
    assert not out.exists()


def spec_on_base(tmp_path: Path, extra: str = "") -> Path:
    """A base built from ``context`` without SBOM, and a spec of one layer on it."""
    base = tmp_path / "base-out"
    build(context(tmp_path / "base"), "--no-sbom", "-o", f"oci:{base}")
    top_dir = tmp_path / "top"
    (top_dir / "app").mkdir(parents=True)
    (top_dir / "app" / "extra.txt").write_text("extra")
    return write_toml(
        top_dir,
        f"""
        [image]
        tags = ["t"]
        base = "oci:{base}:v1"
        created = "2024-05-01T12:00:00Z"
        [[layers]]
        files = [{{ src = "app/", dst = "/srv/" }}]
        {extra}
        """,
    )


def test_cached_scans_and_hashes_give_the_same_artifacts(tmp_path: Path) -> None:
    spec = spec_on_base(
        tmp_path, 'delete = ["/usr/lib/python3/dist-packages/demo_pkg-1.2.dist-info"]'
    )
    build(spec, "--no-cache", "-o", f"oci:{tmp_path / 'fresh'}")
    build(spec, "-o", f"oci:{tmp_path / 'first'}")
    cache = Path(os.environ["BALE_CACHE_DIR"])
    assert list((cache / "layer-scans").glob("*.json"))
    assert list((cache / "file-hashes").glob("*.json"))
    build(spec, "-o", f"oci:{tmp_path / 'again'}")
    fresh = artifacts(tmp_path / "fresh")
    assert artifacts(tmp_path / "first") == fresh == artifacts(tmp_path / "again")
    [(_, spdx)] = fresh[SPDX]
    # The base's package is found through the cache, the deleted one is gone.
    assert packages(spdx, "deb") == {("tzdata", "2024a-0+deb12u1")}
    assert packages(spdx, "pypi") == set()
    assert {f["fileName"] for f in json.loads(spdx)["files"]} == {"./srv/extra.txt"}


@pytest.mark.parametrize(
    "damage",
    [b"[" * 100_000, b'{"./srv/extra.txt": [', b'"not rows"'],
    ids=["deep", "cut", "shape"],
)
def test_damaged_cached_scans_and_hashes_are_read_again(tmp_path: Path, damage: bytes) -> None:
    """A damaged ``layer-scans/`` or ``file-hashes/`` record (deep nesting included,
    which json would fail on with a RecursionError) only costs the reading it saved."""
    spec = spec_on_base(tmp_path)
    build(spec, "-o", f"oci:{tmp_path / 'first'}")
    cache = Path(os.environ["BALE_CACHE_DIR"])
    records = [*(cache / "layer-scans").glob("*.json"), *(cache / "file-hashes").glob("*.json")]
    assert len(records) >= 2
    for record in records:
        record.write_bytes(damage)
    build(spec, "-o", f"oci:{tmp_path / 'again'}")
    assert artifacts(tmp_path / "again") == artifacts(tmp_path / "first")


def test_verify_compares_the_artifacts_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = context(tmp_path / "ctx", 'sbom = ["spdx", "cyclonedx"]')
    assert main(["verify", "--json", "-f", str(spec)]) == 0
    report = json.loads(capsys.readouterr().out)
    first, second = report["referrers"]
    assert len(first) == 3 and first == second
    assert report["reproducible"] and report["differingReferrers"] == []


@pytest.mark.parametrize(
    ("extra", "written"),
    [
        ('format = "docker"', "docker"),
        ('format = "docker"\n[annotations]\n"org.example.a" = "1"', "oci"),
        ("", "oci"),
    ],
)
def test_provenance_records_the_format_written(tmp_path: Path, extra: str, written: str) -> None:
    """[annotations] make a format = "docker" build write OCI media types: the statement
    says what the manifest is, not what image.toml asked for."""
    out = tmp_path / "out"
    build(context(tmp_path / "ctx", extra), "-o", f"oci:{out}")
    [(manifest, payload)] = artifacts(out)[IN_TOTO]
    index = json.loads((out / "index.json").read_text())
    subject = next(m for m in index["manifests"] if m["digest"] == manifest["subject"]["digest"])
    kinds = {
        "application/vnd.oci.image.manifest.v1+json": "oci",
        "application/vnd.docker.distribution.manifest.v2+json": "docker",
    }
    assert kinds[subject["mediaType"]] == written
    options = json.loads(payload)["predicate"]["buildDefinition"]["externalParameters"]["options"]
    assert options["format"] == written
