"""cosign's own encrypted key file as --sign-key: a real cosign key, and keys sealed here.

The real key (tests/supply/cosign/, from sigstore/policy-controller) was
written by cosign; its published cosign.pub judges the signatures, through
openssl and securesystemslib. ``seal`` below writes the same format from its
description (go-securesystemslib's ``encrypted`` package: scrypt, then NaCl
secretbox), independently of bale's reader.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from nacl.secret import SecretBox
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

from builder.cli.main import main
from tests.helpers import referrers, write_toml
from tests.supply.keys import make_key, openssl_verifies

FIXTURE = Path(__file__).parent / "cosign"
SIG = "application/vnd.dev.cosign.artifact.sig.v1+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
IMAGE = """
[image]
tags = ["v1"]
[[layers]]
content = [{ dst = "/etc/hello", text = "signed with a cosign key" }]
"""


def seal(
    der: bytes,
    password: bytes,
    *,
    label: str = "ENCRYPTED SIGSTORE PRIVATE KEY",
    params: dict[str, Any] | None = None,
    kdf: str = "scrypt",
    cipher: str = "nacl/secretbox",
) -> bytes:
    """A cosign key file holding ``der``, made from the format's description."""
    params = params or {"N": 32768, "r": 8, "p": 1}
    salt, nonce = os.urandom(32), os.urandom(24)
    key = hashlib.scrypt(
        password, salt=salt, n=params["N"], r=params["r"], p=params["p"], dklen=32, maxmem=1 << 28
    )
    document = {
        "kdf": {"name": kdf, "params": params, "salt": base64.b64encode(salt).decode()},
        "cipher": {"name": cipher, "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(SecretBox(key).encrypt(der, nonce).ciphertext).decode(),
    }
    return armour(json.dumps(document).encode(), label)


def armour(body: bytes, label: str = "ENCRYPTED SIGSTORE PRIVATE KEY") -> bytes:
    text = "\n".join(textwrap.wrap(base64.b64encode(body).decode(), 64))
    return f"-----BEGIN {label}-----\n{text}\n-----END {label}-----\n".encode()


def pkcs8(private: Path) -> bytes:
    """The DER PKCS#8 form of an openssl-made PEM key."""
    key = serialization.load_pem_private_key(private.read_bytes(), password=None)
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _build(tmp_path: Path, key: Path, *extra: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    layout = tmp_path / "oci"
    spec = write_toml(tmp_path, IMAGE)
    args = ["build", "-q", "-f", str(spec), "-o", f"oci:{layout}", "--sign-key", str(key)]
    assert main([*args, *extra]) == 0
    return layout


def _cosign_signature(layout: Path) -> tuple[bytes, bytes]:
    """(payload, signature) of the one cosign signature in the layout."""
    ((_, manifest, payload),) = [r for r in referrers(layout) if r[0]["artifactType"] == SIG]
    (layer,) = manifest["layers"]
    return payload, base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])


def test_a_real_cosign_key_signs_and_its_published_public_key_verifies(
    tmp_path: Path, no_passwords: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    public = tmp_path / "judge" / "cosign.pub"
    public.parent.mkdir()
    shutil.copy(FIXTURE / "cosign.pub", public)
    layout = _build(tmp_path / "ctx", FIXTURE / "cosign.key", "--sbom", "spdx")
    payload, signature = _cosign_signature(layout)
    assert openssl_verifies(public, payload, signature, ed25519=False)
    assert not openssl_verifies(public, payload + b" ", signature, ed25519=False)
    published = serialization.load_pem_public_key(public.read_bytes())
    envelopes = [json.loads(p) for e, _, p in referrers(layout) if e["artifactType"] == DSSE]
    assert envelopes
    for envelope in envelopes:
        keyid = envelope["signatures"][0]["keyid"]
        judge = SSlibKey.from_crypto(published, keyid=keyid)  # type: ignore[arg-type]
        assert keyid in Envelope.from_dict(envelope).verify([judge], 1)
    capsys.readouterr()
    assert main(["check-signatures", "-q", f"oci:{layout}:v1", "--key", str(public)]) == 0


@pytest.mark.parametrize(
    ("label", "cost", "variable"),
    [
        ("ENCRYPTED SIGSTORE PRIVATE KEY", 65536, "BALE_SIGN_PASSWORD"),
        ("ENCRYPTED COSIGN PRIVATE KEY", 32768, "COSIGN_PASSWORD"),
    ],
)
def test_a_key_sealed_from_the_format_description_round_trips(
    tmp_path: Path, no_passwords: pytest.MonkeyPatch, label: str, cost: int, variable: str
) -> None:
    private, public = make_key(tmp_path / "keys", "p256")
    sealed = tmp_path / "cosign.key"
    params = {"N": cost, "r": 8, "p": 1}
    sealed.write_bytes(seal(pkcs8(private), b"correct horse", label=label, params=params))
    no_passwords.setenv(variable, "correct horse")
    payload, signature = _cosign_signature(_build(tmp_path / "ctx", sealed))
    assert openssl_verifies(public, payload, signature, ed25519=False)
    # The same key as PEM signs the same bytes: ECDSA with RFC 6979 nonces.
    plain = _build(tmp_path / "plain", private)
    assert _cosign_signature(plain) == (payload, signature)


def _bad_keys(tmp_path: Path) -> list[tuple[bytes, str | None, str]]:
    """(key file bytes, passphrase set, what the one error line says)."""
    p256 = pkcs8(make_key(tmp_path / "p256", "p256")[0])
    good = seal(p256, b"Hunter2-secret")
    body = json.loads(base64.b64decode(b"".join(good.splitlines()[1:-1])))
    return [
        ((FIXTURE / "cosign.key").read_bytes(), "wrong-guess", "wrong passphrase"),
        (good, None, "set its passphrase in the environment variable BALE_SIGN_PASSWORD"),
        (good, "wrong-guess", "wrong passphrase"),
        (good.replace(b"-----END", b"-----FIN"), None, "no complete BEGIN/END block"),
        (armour(b"{not json"), None, "not the JSON cosign writes"),
        (armour(json.dumps({**body, "ciphertext": None}).encode()), None, "not the JSON"),
        (
            b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n%%%\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
            None,
            "not base64",
        ),
        (seal(p256, b"pw", kdf="argon2id"), "pw", "unsupported key derivation 'argon2id'"),
        (seal(p256, b"pw", cipher="aes-256-gcm"), "pw", "unsupported cipher 'aes-256-gcm'"),
        (seal(p256, b"pw", params={"N": 1024, "r": 8, "p": 1}), "pw", "scrypt parameters"),
        (seal(b"not a key", b"pw"), "pw", "decrypts to something that is not a PKCS#8 key"),
        (seal(pkcs8(make_key(tmp_path / "r", "rsa")[0]), b"pw"), "pw", "holds a RSA key"),
        (seal(pkcs8(make_key(tmp_path / "e", "p384")[0]), b"pw"), "pw", "ECDSA secp384r1"),
        (seal(pkcs8(make_key(tmp_path / "d", "ed448")[0]), b"pw"), "pw", "holds a Ed448 key"),
    ]


def test_bad_cosign_keys_are_one_line_and_write_nothing(
    tmp_path: Path, no_passwords: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_toml(tmp_path, IMAGE)
    out = tmp_path / "out"
    for number, (data, password, message) in enumerate(_bad_keys(tmp_path / "keys")):
        key = tmp_path / f"bad-{number}.key"
        key.write_bytes(data)
        if password is None:
            no_passwords.delenv("BALE_SIGN_PASSWORD", raising=False)
        else:
            no_passwords.setenv("BALE_SIGN_PASSWORD", password)
        capsys.readouterr()
        assert main(["build", "-f", str(spec), "-o", f"oci:{out}", "--sign-key", str(key)]) == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1, lines
        assert message in lines[0] and str(key) in lines[0], (message, lines[0])
        assert "Hunter2" not in lines[0] and "wrong-guess" not in lines[0]
        assert not out.exists()
