"""Signed builds in layouts and archives, ``bale check-signatures``, and bad keys.

The signatures themselves are judged by openssl and securesystemslib in
test_sign.py; here the layout is judged by skopeo and the OCI schemas.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from builder.cli.main import main
from builder.formats.layout import write_layout
from builder.image.assemble import JsonBlob
from builder.model import OCI_MANIFEST, Descriptor, Digest
from builder.supply.attachment import Attachment, Referrer, attach, referrer_blobs
from builder.supply.attest import sign_attachment
from builder.supply.cosign import sign_manifest
from builder.supply.sign import load_signing_key
from builder.supply.signing import signatures
from tests.conftest import require_tool
from tests.helpers import check_layout, referrers, write_toml
from tests.supply.keys import make_key

IMAGE = """
[image]
tags = ["v1"]
[[layers]]
content = [{ dst = "/etc/hello", text = "signed" }]
"""
CREATED = "1970-01-01T00:00:00Z"
SPDX = "application/spdx+json"
SIG = "application/vnd.dev.cosign.artifact.sig.v1+json"
DSSE = "application/vnd.dsse.envelope.v1+json"


def _spec(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return write_toml(directory, IMAGE)


def _check(
    source: str, public: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main(["check-signatures", "--json", source, "--key", str(public)])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("kind", ["p256", "ed25519"])
def test_signed_layout_checks_out_and_the_archive_stays_loadable(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    private, public = make_key(tmp_path, kind)
    layout, archive = tmp_path / "oci", tmp_path / "image.tar"
    args = ["build", "-q", "-f", str(_spec(tmp_path / "ctx")), "--sign-key", str(private)]
    assert main([*args, "-o", f"oci:{layout}", "-o", f"oci-archive:{archive}"]) == 0
    assert len(check_layout(layout)) == 1
    ((entry, signature, payload),) = [r for r in referrers(layout) if r[0]["artifactType"] == SIG]
    assert entry["artifactType"] == "application/vnd.dev.cosign.artifact.sig.v1+json"
    assert signature["subject"]["digest"] == index_entry(layout)["digest"]
    assert json.loads(payload)["critical"]["image"]["docker-manifest-digest"] == entry_subject(
        signature
    )
    inspect = subprocess.run(
        [require_tool("skopeo"), "inspect", f"oci:{layout}:v1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert inspect.returncode == 0, inspect.stderr
    for source in (f"oci:{layout}:v1", f"oci:{layout}"):
        code, report = _check(source, public, capsys)
        assert code == 0 and report["verified"], report
        assert {c["status"] for c in report["checks"]} == {"ok"}
        assert [c["digest"] for c in report["checks"] if c["kind"] == "signature"] == [
            entry["digest"]
        ]
    # The oci-archive lists the image alone (so podman load and skopeo take it) and keeps
    # its referrers unlisted in blobs/, where check-signatures finds them by subject.
    loaded = subprocess.run(
        [require_tool("skopeo"), "inspect", f"oci-archive:{archive}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert loaded.returncode == 0, loaded.stderr
    for source in (f"oci-archive:{archive}:v1", f"oci-archive:{archive}"):
        code, report = _check(source, public, capsys)
        assert code == 0 and report["verified"], report
        assert [c["digest"] for c in report["checks"] if c["kind"] == "signature"] == [
            entry["digest"]
        ]
    capsys.readouterr()
    assert main(["inspect", f"oci:{layout}:v1"]) == 0
    shown = capsys.readouterr().out.splitlines()
    (at,) = [n for n, line in enumerate(shown) if line.startswith("  referrers: ")]
    listed = [line.split() for line in shown[at + 1 : at + 1 + int(shown[at].split()[-1])]]
    assert [entry["artifactType"], entry["digest"], str(entry["size"]), "bytes"] in listed
    other = make_key(tmp_path / "other", kind)[1]
    code, report = _check(f"oci:{layout}:v1", other, capsys)
    assert code == 1 and not report["verified"]
    assert {c["status"] for c in report["checks"]} == {"other key", "failed"}


def test_unsigned_image_fails_the_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, public = make_key(tmp_path, "p256")
    layout = _unsigned(tmp_path)
    code, report = _check(f"oci:{layout}:v1", public, capsys)
    assert code == 1
    (missing,) = report["checks"]
    assert missing["status"] == "failed" and missing["digest"] == ""


def index_entry(layout: Path) -> dict[str, Any]:
    entry: dict[str, Any] = json.loads((layout / "index.json").read_text())["manifests"][0]
    return entry


def entry_subject(manifest: dict[str, Any]) -> str:
    return str(manifest["subject"]["digest"])


def _unsigned(tmp_path: Path) -> Path:
    """An unsigned build's layout, holding the image alone (no attachments of the build)."""
    layout = tmp_path / "oci"
    spec = str(_spec(tmp_path / "ctx"))
    args = ["build", "-q", "-f", spec, "--no-sbom", "--no-provenance", "-o", f"oci:{layout}"]
    assert main(args) == 0
    return layout


def _with_sbom(tmp_path: Path, signed_by: Path | None, tamper: bool = False) -> Path:
    """A layout whose image carries an SBOM referrer and, if asked, its DSSE and cosign signature."""
    layout = _unsigned(tmp_path)
    entry = json.loads((layout / "index.json").read_text())["manifests"][0]
    subject = Descriptor.from_json(entry)
    sbom = attach(
        Attachment(SPDX, SPDX, b'{"spdxVersion":"SPDX-2.3","name":"x"}'), subject, CREATED
    )
    referrers: list[Referrer] = [sbom]
    if signed_by is not None:
        key = load_signing_key(signed_by.read_bytes(), "key", {})
        referrers += signatures(key, [subject], [sbom], "", CREATED)
        if tamper:
            envelope = json.loads(referrers[-1].blobs[-1].data)
            envelope["payload"] = envelope["payload"][:-4] + "AAAA"
            forged = Attachment(
                "application/vnd.dsse.envelope.v1+json",
                "application/vnd.dsse.envelope.v1+json",
                json.dumps(envelope).encode(),
            )
            referrers[-1] = attach(forged, subject, CREATED)
    blobs = referrer_blobs(referrers)
    write_layout(layout, blobs, subject, ["v1"], [r.descriptor for r in referrers])
    return layout


def test_sbom_with_its_dsse_attestation_checks_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private, public = make_key(tmp_path, "p256")
    layout = _with_sbom(tmp_path, private)
    code, report = _check(f"oci:{layout}:v1", public, capsys)
    assert code == 0, report
    kinds = sorted((c["kind"], c["status"]) for c in report["checks"])
    assert kinds == [("attestation", "ok"), ("attestation signature", "ok"), ("signature", "ok")]


def test_sbom_without_a_signed_statement_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, public = make_key(tmp_path, "p256")
    code, report = _check(f"oci:{_with_sbom(tmp_path, None)}:v1", public, capsys)
    assert code == 1
    failed = {c["artifactType"] for c in report["checks"] if c["status"] == "failed"}
    assert failed == {SPDX, "application/vnd.dev.cosign.artifact.sig.v1+json"}


def test_tampered_dsse_envelope_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    private, public = make_key(tmp_path, "ed25519")
    code, report = _check(f"oci:{_with_sbom(tmp_path, private, tamper=True)}:v1", public, capsys)
    assert code == 1
    statuses = {c["kind"]: c["status"] for c in report["checks"]}
    assert statuses == {
        "signature": "ok",
        "attestation signature": "failed",
        "attestation": "failed",
    }


def test_sign_attachment_statement_is_about_the_subject(tmp_path: Path) -> None:
    private, _ = make_key(tmp_path, "p256")
    key = load_signing_key(private.read_bytes(), "k", {})
    subject = Descriptor.from_json(
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:" + "0" * 64,
            "size": 1,
        }
    )
    signed = sign_attachment(key, Attachment(SPDX, SPDX, b"{}"), subject, "r/app", CREATED)
    assert json.loads(signed.manifest.data)["subject"]["digest"] == "sha256:" + "0" * 64


def test_build_json_lists_the_signatures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private, _ = make_key(tmp_path, "p256")
    layout = tmp_path / "oci"
    args = ["build", "--json", "-f", str(_spec(tmp_path / "ctx")), "-o", f"oci:{layout}"]
    capsys.readouterr()
    assert main([*args, "--sign-key", str(private)]) == 0
    summary = json.loads(capsys.readouterr().out)
    listed = [(e["artifactType"], e["digest"], e["size"]) for e, _, _ in referrers(layout)]
    assert [(r["artifactType"], r["digest"], r["size"]) for r in summary["referrers"]] == listed
    assert {r["subject"] for r in summary["referrers"]} == {summary["images"][0]["manifest"]}
    assert [r["artifactType"] for r in summary["referrers"]].count(SIG) == 1


@pytest.mark.parametrize("kind", ["p256", "ed25519"])
def test_signed_builds_are_reproducible(tmp_path: Path, kind: str) -> None:
    private, _ = make_key(tmp_path, kind)
    first = _spec(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    indexes = []
    for spec, out in ((first, tmp_path / "one"), (tmp_path / "b" / "image.toml", tmp_path / "two")):
        assert (
            main(["build", "-q", "-f", str(spec), "-o", f"oci:{out}", "--sign-key", str(private)])
            == 0
        )
        indexes.append((out / "index.json").read_bytes())
    assert indexes[0] == indexes[1]
    kinds = [m.get("artifactType") for m in json.loads(indexes[0])["manifests"]]
    assert kinds.count(SIG) == 1


def _one_error(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_bad_keys_are_one_line_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(tmp_path / "ctx")
    out = tmp_path / "out"
    not_a_key = tmp_path / "notes.txt"
    not_a_key.write_text("hello\n")
    encrypted, _ = make_key(tmp_path / "enc", "p256", passphrase="Hunter2-secret")
    rsa, _ = make_key(tmp_path / "rsa", "rsa")
    cases = [
        (not_a_key, None, "not a PEM private key"),
        (encrypted, None, "set its passphrase in the environment variable BALE_SIGN_PASSWORD"),
        (encrypted, "wrong-guess", "wrong passphrase"),
        (rsa, None, "RSA key cannot sign"),
        (tmp_path / "missing.pem", None, "cannot read it"),
    ]
    for key, password, message in cases:
        monkeypatch.delenv("COSIGN_PASSWORD", raising=False)
        if password is None:
            monkeypatch.delenv("BALE_SIGN_PASSWORD", raising=False)
        else:
            monkeypatch.setenv("BALE_SIGN_PASSWORD", password)
        capsys.readouterr()
        assert main(["build", "-f", str(spec), "-o", f"oci:{out}", "--sign-key", str(key)]) == 1
        line = _one_error(capsys)
        assert message in line and str(key) in line, line
        assert "Hunter2" not in line and "wrong-guess" not in line
        assert not out.exists()
    monkeypatch.setenv("BALE_SIGN_PASSWORD", "Hunter2-secret")
    assert (
        main(["build", "-q", "-f", str(spec), "-o", f"oci:{out}", "--sign-key", str(encrypted)])
        == 0
    )


def test_docker_archive_leaves_signatures_out_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private, _ = make_key(tmp_path, "p256")
    archive = tmp_path / "docker.tar"
    spec = _spec(tmp_path / "ctx")
    capsys.readouterr()
    assert (
        main(
            [
                "build",
                "-f",
                str(spec),
                "-o",
                f"docker-archive:{archive}",
                "--sign-key",
                str(private),
            ]
        )
        == 0
    )
    assert "docker-archive" in (err := capsys.readouterr().err) and "has no place for" in err
    assert archive.is_file()


def test_check_with_a_bad_public_key_is_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private, _ = make_key(tmp_path, "p256")
    layout = tmp_path / "oci"
    args = ["build", "-q", "-f", str(_spec(tmp_path / "ctx")), "-o", f"oci:{layout}"]
    assert main([*args, "--sign-key", str(private)]) == 0
    capsys.readouterr()
    # A private key where the public one belongs: not a public key, and nothing about its bytes.
    assert main(["check-signatures", f"oci:{layout}:v1", "--key", str(private)]) == 1
    line = _one_error(capsys)
    assert "not a PEM public key" in line and "PRIVATE" not in line
    with pytest.raises(SystemExit) as usage:
        main(["check-signatures", f"oci:{layout}:v1"])
    assert usage.value.code == 2


def test_a_signature_of_another_image_replayed_onto_this_one_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private, public = make_key(tmp_path, "p256")
    layout = _unsigned(tmp_path)
    subject = Descriptor.from_json(index_entry(layout))
    elsewhere = Descriptor(subject.media_type, Digest.of(b"another image"), 13)
    key = load_signing_key(private.read_bytes(), "key", {})
    genuine = sign_manifest(key, elsewhere, "", CREATED)
    document = json.loads(genuine.manifest.data)
    document["subject"] = {
        **document["subject"],
        "digest": str(subject.digest),
        "size": subject.size,
    }
    replayed = Referrer(
        subject, genuine.artifact_type, JsonBlob.of(OCI_MANIFEST, document), genuine.blobs
    )
    write_layout(layout, referrer_blobs([replayed]), subject, ["v1"], [replayed.descriptor])
    code, report = _check(f"oci:{layout}:v1", public, capsys)
    assert code == 1
    (replay, missing) = report["checks"]
    assert replay["status"] == "failed" and str(elsewhere.digest) in replay["detail"]
    assert missing["status"] == "failed" and missing["digest"] == ""


def test_platform_picks_one_image_of_an_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private, public = make_key(tmp_path, "ed25519")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    spec = write_toml(
        ctx, IMAGE.replace("[image]\n", '[image]\nplatforms = ["linux/amd64", "linux/arm64"]\n')
    )
    layout = tmp_path / "oci"
    assert (
        main(["build", "-q", "-f", str(spec), "-o", f"oci:{layout}", "--sign-key", str(private)])
        == 0
    )
    capsys.readouterr()
    args = ["check-signatures", "--json", f"oci:{layout}:v1", "--key", str(public)]
    assert main([*args, "--platform", "linux/arm64"]) == 0
    images = {c["image"] for c in json.loads(capsys.readouterr().out)["checks"]}
    assert images == {"index", "linux/arm64"}
    assert main(args) == 0
    images = {c["image"] for c in json.loads(capsys.readouterr().out)["checks"]}
    assert images == {"index", "linux/amd64", "linux/arm64"}


def test_build_signs_its_sbom_and_provenance_judged_by_securesystemslib(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    private, public = make_key(tmp_path, "p256")
    layout = tmp_path / "oci"
    spec = _spec(tmp_path / "ctx")
    args = ["build", "-q", "-f", str(spec), "-o", f"oci:{layout}", "--sign-key", str(private)]
    assert main([*args, "--sbom", "spdx", "--sbom", "cyclonedx"]) == 0
    found = referrers(layout)
    attachments = [r for r in found if r[0]["artifactType"] not in (SIG, DSSE)]
    assert {r[0]["artifactType"] for r in attachments} >= {SPDX, "application/vnd.in-toto+json"}
    statements = []
    for _entry, _, payload in (r for r in found if r[0]["artifactType"] == DSSE):
        keyid = json.loads(payload)["signatures"][0]["keyid"]
        judge = SSlibKey.from_crypto(
            serialization.load_pem_public_key(public.read_bytes()),  # type: ignore[arg-type]
            keyid=keyid,
        )
        envelope = Envelope.from_dict(json.loads(payload))
        assert keyid in envelope.verify([judge], 1)
        statements.append(json.loads(envelope.payload))
    assert len(statements) == len(attachments)
    for entry, manifest, payload in attachments:
        document = json.loads(payload)
        subject = manifest["subject"]["digest"].split(":")[1]
        assert any(
            s == document
            or (
                s["predicate"] == document
                and subject in [d["digest"]["sha256"] for d in s["subject"]]
            )
            for s in statements
        ), entry["artifactType"]
