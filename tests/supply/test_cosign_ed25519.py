"""An Ed25519 key inside cosign's key file: bale signs pure Ed25519 with it.

The key is cosign's own Ed25519 test key (tests/supply/cosign/, see its
README), sealed in cosign's format. Judges: openssl and libsodium (PyNaCl)
for the cosign signature, securesystemslib and libsodium for the DSSE
envelopes, all against the vendored ``ed25519.pub``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from nacl.exceptions import BadSignatureError
from nacl.secret import SecretBox
from nacl.signing import VerifyKey
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

from builder.cli.main import main
from builder.supply.sign import load_signing_key
from tests.helpers import referrers, write_toml
from tests.supply.keys import openssl_verifies
from tests.supply.test_cosign_key import DSSE, FIXTURE, IMAGE, SIG

KEY, PUBLIC, PKCS8 = (FIXTURE / n for n in ("ed25519.key", "ed25519.pub", "ed25519-pkcs8.pem"))
PASSPHRASE = "hello"


def _published() -> ed25519.Ed25519PublicKey:
    key = serialization.load_pem_public_key(PUBLIC.read_bytes())
    assert isinstance(key, ed25519.Ed25519PublicKey)
    return key


def _sodium_verifies(data: bytes, signature: bytes) -> bool:
    """libsodium's verdict (pure Ed25519, RFC 8032) against the vendored public key."""
    raw = _published().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    try:
        VerifyKey(raw).verify(data, signature)
    except BadSignatureError:
        return False
    return True


def _build(tmp_path: Path, key: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    tmp_path.mkdir(parents=True)
    layout = tmp_path / "oci"
    spec = write_toml(tmp_path, IMAGE)
    args = ["build", "-q", "-f", str(spec), "-o", f"oci:{layout}", "--sign-key", str(key)]
    assert main([*args, "--sbom", "spdx"]) == 0, capsys.readouterr().err
    return layout


def _cosign_signature(layout: Path) -> tuple[bytes, bytes]:
    ((_, manifest, payload),) = [r for r in referrers(layout) if r[0]["artifactType"] == SIG]
    (layer,) = manifest["layers"]
    return payload, base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])


def test_the_fixture_is_cosigns_ed25519_test_key_sealed_as_cosign_seals() -> None:
    """ed25519.key opens (scrypt + secretbox, done here) to the vendored PKCS#8 key."""
    document = json.loads(base64.b64decode(b"".join(KEY.read_bytes().splitlines()[1:-1])))
    params = document["kdf"]["params"]
    assert (params["N"], params["r"], params["p"]) == (65536, 8, 1)
    secret = hashlib.scrypt(
        PASSPHRASE.encode(),
        salt=base64.b64decode(document["kdf"]["salt"]),
        n=params["N"],
        r=8,
        p=1,
        dklen=32,
        maxmem=1 << 28,
    )
    der = SecretBox(secret).decrypt(
        base64.b64decode(document["ciphertext"]), base64.b64decode(document["cipher"]["nonce"])
    )
    private = serialization.load_pem_private_key(PKCS8.read_bytes(), password=None)
    assert der == private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_the_key_loads_with_its_passphrase_and_is_the_published_one(
    no_passwords: pytest.MonkeyPatch,
) -> None:
    key = load_signing_key(KEY.read_bytes(), str(KEY), {"COSIGN_PASSWORD": PASSPHRASE})
    assert key.algorithm == "ed25519"
    spki = _published().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert key.keyid == hashlib.sha256(spki).hexdigest()
    assert _sodium_verifies(b"payload", key.sign(b"payload"))
    assert key.sign(b"payload") == key.sign(b"payload")


@pytest.mark.parametrize("passphrase", [None, "hello-not", "Hunter2-guess"])
def test_a_missing_or_wrong_passphrase_is_one_line_without_the_secret(
    tmp_path: Path,
    no_passwords: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    passphrase: str | None,
) -> None:
    if passphrase is not None:
        no_passwords.setenv("BALE_SIGN_PASSWORD", passphrase)
    out = tmp_path / "out"
    spec = write_toml(tmp_path, IMAGE)
    capsys.readouterr()
    assert main(["build", "-f", str(spec), "-o", f"oci:{out}", "--sign-key", str(KEY)]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    expected = "wrong passphrase" if passphrase else "set its passphrase in the environment"
    assert expected in line and str(KEY) in line, line
    assert "Hunter2" not in line and "hello" not in line
    assert not out.exists()


def test_a_build_signed_with_it_verifies_against_the_published_key(
    tmp_path: Path, no_passwords: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    no_passwords.setenv("BALE_SIGN_PASSWORD", PASSPHRASE)
    layout = _build(tmp_path / "a", KEY, capsys)
    payload, signature = _cosign_signature(layout)
    judge = tmp_path / "judge" / "ed25519.pub"
    judge.parent.mkdir()
    judge.write_bytes(PUBLIC.read_bytes())
    assert openssl_verifies(judge, payload, signature, ed25519=True)
    assert _sodium_verifies(payload, signature)
    tampered = payload.replace(b"sha256:", b"sha256:0")
    assert not openssl_verifies(judge, tampered, signature, ed25519=True)
    assert not _sodium_verifies(tampered, signature)
    envelopes = [json.loads(p) for e, _, p in referrers(layout) if e["artifactType"] == DSSE]
    assert envelopes
    for document in envelopes:
        ((keyid, sig),) = [(s["keyid"], s["sig"]) for s in document["signatures"]]
        envelope = Envelope.from_dict(document)
        assert keyid in envelope.verify([SSlibKey.from_crypto(_published(), keyid=keyid)], 1)
        assert _sodium_verifies(envelope.pae(), base64.b64decode(sig))
        assert not _sodium_verifies(envelope.pae() + b" ", base64.b64decode(sig))
    capsys.readouterr()
    assert main(["check-signatures", "-q", f"oci:{layout}:v1", "--key", str(judge)]) == 0


def test_signatures_are_byte_equal_across_builds_and_key_formats(
    tmp_path: Path, no_passwords: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    no_passwords.setenv("BALE_SIGN_PASSWORD", PASSPHRASE)
    first = _cosign_signature(_build(tmp_path / "a", KEY, capsys))
    assert _cosign_signature(_build(tmp_path / "b", KEY, capsys)) == first
    # The same key as plain PKCS#8 PEM signs the same bytes: Ed25519 is deterministic.
    no_passwords.delenv("BALE_SIGN_PASSWORD")
    assert _cosign_signature(_build(tmp_path / "c", PKCS8, capsys)) == first
