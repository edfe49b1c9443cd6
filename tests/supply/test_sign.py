"""Signing keys and signatures, judged by openssl and securesystemslib."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

from builder.errors import SigningError
from builder.model import OCI_MANIFEST, Descriptor, Digest
from builder.supply.attachment import Attachment
from builder.supply.attest import about, sign_attachment, statement_of
from builder.supply.cosign import (
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING,
    parse_simple_signing,
    sign_manifest,
    signed_by,
)
from builder.supply.sign import (
    SigningKey,
    VerifyKey,
    dsse_envelope,
    load_signing_key,
    load_verify_key,
    open_envelope,
)
from tests.helpers import validate
from tests.supply.keys import make_key, openssl_verifies

SUBJECT = Descriptor(OCI_MANIFEST, Digest.of(b"an image manifest"), 17)
CREATED = "2024-01-01T00:00:00Z"


def _keys(tmp_path: Path, kind: str) -> tuple[SigningKey, VerifyKey, Path]:
    private, public = make_key(tmp_path, kind)
    signing = load_signing_key(private.read_bytes(), str(private), {})
    return signing, load_verify_key(public.read_bytes(), str(public)), public


def _sslib_key(public: Path, keyid: str) -> SSlibKey:
    """securesystemslib's own key object, under the keyid the envelope names."""
    key = serialization.load_pem_public_key(public.read_bytes())
    return SSlibKey.from_crypto(key, keyid=keyid)  # type: ignore[arg-type]


def _judge(envelope: bytes, key: SSlibKey) -> bytes:
    """The payload securesystemslib verified, or its exception."""
    parsed = Envelope.from_dict(json.loads(envelope))
    assert key.keyid in parsed.verify([key], 1)
    return parsed.payload


@pytest.mark.parametrize("kind", ["p256", "ed25519"])
def test_dsse_envelope_verifies_with_securesystemslib(tmp_path: Path, kind: str) -> None:
    signing, _, public = _keys(tmp_path, kind)
    statement = b'{"_type":"https://in-toto.io/Statement/v1","predicateType":"x"}'
    data = dsse_envelope(signing, statement)
    keyid = json.loads(data)["signatures"][0]["keyid"]
    assert _judge(data, _sslib_key(public, keyid)) == statement
    assert json.loads(data)["payloadType"] == "application/vnd.in-toto+json"


@pytest.mark.parametrize("kind", ["p256", "ed25519"])
def test_tampered_envelope_or_wrong_key_fails_the_judge(tmp_path: Path, kind: str) -> None:
    signing, verify_key, public = _keys(tmp_path, kind)
    good = dsse_envelope(signing, b'{"a":1}')
    data = json.loads(good)
    keyid = data["signatures"][0]["keyid"]
    tampered = json.dumps(dict(data, payload=base64.b64encode(b'{"a":2}').decode())).encode()
    other = _sslib_key(make_key(tmp_path / "other", kind)[1], keyid)
    assert _judge(good, _sslib_key(public, keyid)) == b'{"a":1}'
    for envelope, key in [(tampered, _sslib_key(public, keyid)), (good, other)]:
        with pytest.raises(VerificationError):
            _judge(envelope, key)
    assert open_envelope(verify_key, tampered) is None
    assert open_envelope(verify_key, good) is not None


@pytest.mark.parametrize("kind", ["p256", "ed25519"])
def test_cosign_signature_checks_with_openssl_over_the_payload_bytes(
    tmp_path: Path, kind: str
) -> None:
    signing, verify_key, public = _keys(tmp_path, kind)
    referrer = sign_manifest(signing, SUBJECT, "registry.test/app", CREATED)
    manifest = json.loads(referrer.manifest.data)
    validate(OCI_MANIFEST, manifest)
    assert manifest["artifactType"] == "application/vnd.dev.cosign.artifact.sig.v1+json"
    assert manifest["subject"]["digest"] == str(SUBJECT.digest)
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == SIMPLE_SIGNING
    payload = next(b.data for b in referrer.blobs if str(b.descriptor.digest) == layer["digest"])
    claims = json.loads(payload)["critical"]
    assert claims["image"]["docker-manifest-digest"] == str(SUBJECT.digest)
    assert claims["identity"]["docker-reference"] == "registry.test/app"
    signature = base64.b64decode(layer["annotations"][SIGNATURE_ANNOTATION])
    assert openssl_verifies(public, payload, signature, kind == "ed25519")
    assert not openssl_verifies(public, payload + b" ", signature, kind == "ed25519")
    descriptor = Descriptor.from_json(layer)
    assert signed_by(verify_key, descriptor, payload)
    assert not signed_by(
        verify_key, descriptor, payload.replace(b"registry.test", b"registry.evil")
    )


@pytest.mark.parametrize("kind", ["p256", "ed25519"])
def test_signatures_are_deterministic(tmp_path: Path, kind: str) -> None:
    signing, _, _ = _keys(tmp_path, kind)
    first = sign_manifest(signing, SUBJECT, "r/app", CREATED)
    assert first == sign_manifest(signing, SUBJECT, "r/app", CREATED)
    assert dsse_envelope(signing, b"{}") == dsse_envelope(signing, b"{}")


def test_sbom_is_wrapped_in_a_statement_about_the_subject(tmp_path: Path) -> None:
    signing, verify_key, _ = _keys(tmp_path, "p256")
    sbom = Attachment("application/spdx+json", "application/spdx+json", b'{"spdxVersion":"2.3"}')
    referrer = sign_attachment(signing, sbom, SUBJECT, "r/app", CREATED)
    manifest = json.loads(referrer.manifest.data)
    validate(OCI_MANIFEST, manifest)
    assert manifest["annotations"]["in-toto.io/predicate-type"] == "https://spdx.dev/Document"
    envelope = referrer.blobs[-1].data
    opened = open_envelope(verify_key, envelope)
    assert opened is not None
    statement = json.loads(opened[1])
    assert statement["subject"][0]["digest"] == {"sha256": SUBJECT.digest.encoded}
    assert statement["predicate"] == {"spdxVersion": "2.3"}
    assert opened[1] == statement_of(sbom, SUBJECT, "r/app")[1]


def test_a_statement_is_signed_unchanged(tmp_path: Path) -> None:
    payload = b'{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://slsa.dev/provenance/v1"}'
    provenance = Attachment("application/vnd.in-toto+json", "application/vnd.in-toto+json", payload)
    assert statement_of(provenance, SUBJECT, "x") == ("https://slsa.dev/provenance/v1", payload)


def test_encrypted_key_needs_its_passphrase_from_the_environment(tmp_path: Path) -> None:
    private, _ = make_key(tmp_path, "p256", passphrase="s3cret-phrase")
    pem = private.read_bytes()
    key = load_signing_key(pem, "k.pem", {"BALE_SIGN_PASSWORD": "s3cret-phrase"})
    assert key.algorithm == "ecdsa-p256"
    with pytest.raises(SigningError, match="BALE_SIGN_PASSWORD") as missing:
        load_signing_key(pem, "k.pem", {})
    with pytest.raises(SigningError, match="wrong passphrase") as wrong:
        load_signing_key(pem, "k.pem", {"BALE_SIGN_PASSWORD": "guess"})
    for error in (missing, wrong):
        assert "s3cret" not in str(error.value) and "guess" not in str(error.value)


def _padding_collision(pem: bytes) -> str:
    """A wrong passphrase whose decryption has valid padding (about 1 in 256)."""
    for attempt in range(20000):
        guess = f"guess-{attempt}"
        try:
            serialization.load_pem_private_key(pem, password=guess.encode())
        except ValueError as exc:
            if "password" not in str(exc).lower():
                return guess
    raise AssertionError("no wrong passphrase reached the key parser")


def test_a_wrong_passphrase_that_decrypts_to_garbage_is_still_named(tmp_path: Path) -> None:
    private, _ = make_key(tmp_path, "p256", passphrase="s3cret-phrase")
    guess = _padding_collision(private.read_bytes())
    with pytest.raises(SigningError, match="wrong passphrase") as wrong:
        load_signing_key(private.read_bytes(), "k.pem", {"BALE_SIGN_PASSWORD": guess})
    assert guess not in str(wrong.value) and "s3cret" not in str(wrong.value)


@pytest.mark.parametrize(
    ("kind", "message"), [("rsa", "RSA key cannot sign"), ("p384", "secp384r1 key cannot sign")]
)
def test_unsupported_key_types_are_named(tmp_path: Path, kind: str, message: str) -> None:
    private, public = make_key(tmp_path, kind)
    with pytest.raises(SigningError, match=message):
        load_signing_key(private.read_bytes(), "k.pem", {})
    with pytest.raises(SigningError, match="not supported"):
        load_verify_key(public.read_bytes(), "k.pub")


def test_not_a_key_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SigningError, match=r"k\.pem: not a PEM private key"):
        load_signing_key(b"hello, not a key", "k.pem", {})
    cosign = b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nabc\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
    with pytest.raises(SigningError, match="damaged cosign key"):
        load_signing_key(cosign, "cosign.key", {})
    with pytest.raises(SigningError, match="not a PEM public key"):
        load_verify_key(b"nope", "k.pub")


def test_simple_signing_parser_rejects_other_documents() -> None:
    assert parse_simple_signing(b"{}") is None
    assert parse_simple_signing(b"not json") is None


def test_documents_nested_past_the_parser_are_not_signed(tmp_path: Path) -> None:
    """A registry's envelope, payload or statement nested deeper than json can parse
    (a RecursionError, not a ValueError) is simply not a valid signature."""
    _, verify_key, _ = _keys(tmp_path, "p256")
    deep = b"[" * 100_000
    assert open_envelope(verify_key, deep) is None
    assert parse_simple_signing(deep) is None
    subject = Descriptor(OCI_MANIFEST, Digest.of(b"image"), 5)
    assert not about(deep, subject)
