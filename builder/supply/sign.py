"""Keys and signatures: load PEM keys, sign bytes, wrap statements in DSSE envelopes.

Pure crypto with the ``cryptography`` library; no file is written here.
Supported keys: ECDSA P-256 (signed over SHA-256 with RFC 6979 deterministic
nonces, so the same key and payload give the same signature bytes) and
Ed25519 (deterministic by design). A private key is PKCS#8 or traditional
PEM, optionally encrypted, or cosign's own encrypted key file (ECDSA P-256
or Ed25519, the latter signed pure, not Ed25519ph as cosign signs it); its
passphrase comes only from the environment.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from builder.errors import SigningError
from builder.model import canonical_json
from builder.supply.cosignkey import is_cosign_key, open_cosign_key

PASSWORD_ENV = ("BALE_SIGN_PASSWORD", "COSIGN_PASSWORD")
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO_PAYLOAD = "application/vnd.in-toto+json"
_SUPPORTED = "an ECDSA P-256 or Ed25519 key"
_ENCRYPTED_PEM = (b"-----BEGIN ENCRYPTED PRIVATE KEY-----", b"Proc-Type: 4,ENCRYPTED")

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key that bale can sign with, and the id of its public half."""

    key: PrivateKey
    keyid: str

    @property
    def algorithm(self) -> str:
        return algorithm_of(self.key.public_key())

    def sign(self, data: bytes) -> bytes:
        """The signature of ``data``: DER ECDSA over SHA-256 (RFC 6979), or raw Ed25519."""
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            return self.key.sign(data)
        return self.key.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))


@dataclass(frozen=True, slots=True)
class VerifyKey:
    """A public key and its id; ``verify`` says whether a signature is good."""

    key: PublicKey
    keyid: str

    @property
    def algorithm(self) -> str:
        return algorithm_of(self.key)

    def verify(self, data: bytes, signature: bytes) -> bool:
        try:
            if isinstance(self.key, ed25519.Ed25519PublicKey):
                self.key.verify(signature, data)
            else:
                self.key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


def algorithm_of(key: PublicKey) -> str:
    return "ed25519" if isinstance(key, ed25519.Ed25519PublicKey) else "ecdsa-p256"


def keyid_of(key: PublicKey) -> str:
    """The key's id: sha256 of its DER SubjectPublicKeyInfo, in hex."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def password_from(env: Mapping[str, str]) -> bytes | None:
    """The passphrase of an encrypted key: BALE_SIGN_PASSWORD, else COSIGN_PASSWORD."""
    for name in PASSWORD_ENV:
        if env.get(name):
            return env[name].encode()
    return None


def load_signing_key(pem: bytes, where: str, env: Mapping[str, str]) -> SigningKey:
    """Parse a PEM private key; ``where`` names it in errors (never its bytes or passphrase)."""
    key = _cosign_key(pem, where, env) if is_cosign_key(pem) else _pem_key(pem, where, env)
    return SigningKey(key, keyid_of(key.public_key()))


def _pem_key(pem: bytes, where: str, env: Mapping[str, str]) -> PrivateKey:
    password = password_from(env)
    try:
        key = serialization.load_pem_private_key(pem, password=password)
    except TypeError:
        if password is None:
            raise SigningError(
                f"{where}: the key is encrypted; set its passphrase in the environment "
                f"variable {PASSWORD_ENV[0]}"
            ) from None
        key = serialization.load_pem_private_key(pem, password=None)
    except ValueError as exc:
        raise SigningError(_unreadable(where, exc, password is not None, pem)) from None
    except UnsupportedAlgorithm:
        raise SigningError(f"{where}: unsupported key type; give {_SUPPORTED}") from None
    if not isinstance(key, PrivateKey) or not _p256(key):
        raise SigningError(f"{where}: a {_kind(key)} key cannot sign here; give {_SUPPORTED}")
    return key


def _cosign_key(pem: bytes, where: str, env: Mapping[str, str]) -> PrivateKey:
    """The ECDSA P-256 or Ed25519 key of a cosign key file, signed as a PEM key is."""
    der = open_cosign_key(pem, where, password_from(env))
    try:
        key = serialization.load_der_private_key(der, password=None)
    except (ValueError, UnsupportedAlgorithm):
        raise SigningError(
            f"{where}: the cosign key decrypts to something that is not a PKCS#8 key"
        ) from None
    if isinstance(key, PrivateKey) and _p256(key):
        return key
    raise SigningError(
        f"{where}: the cosign key holds a {_kind(key)} key; give {_SUPPORTED} "
        "('cosign generate-key-pair' makes ECDSA P-256 keys)"
    )


def _unreadable(where: str, exc: ValueError, had_password: bool, pem: bytes) -> str:
    """Why an encrypted or plain PEM key did not load, in words the user can act on."""
    text = str(exc).lower()
    if had_password and ("password" in text or "decrypt" in text or "bad decrypt" in text):
        return f"{where}: wrong passphrase (from {'/'.join(PASSWORD_ENV)}) for this key"
    if had_password and any(mark in pem for mark in _ENCRYPTED_PEM):
        # About 1 wrong passphrase in 256 decrypts to bytes with valid padding
        # that then fail to parse: still a wrong passphrase, or a damaged file.
        return (
            f"{where}: wrong passphrase (from {'/'.join(PASSWORD_ENV)}) for this key, "
            "or the key file is damaged"
        )
    return (
        f"{where}: not a PEM private key; give {_SUPPORTED} in PEM, as "
        "'openssl genpkey' or 'openssl ecparam -genkey' writes it"
    )


def load_verify_key(pem: bytes, where: str) -> VerifyKey:
    """Parse a PEM public key (SubjectPublicKeyInfo, as ``cosign.pub`` and openssl write it)."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm):
        raise SigningError(
            f"{where}: not a PEM public key; give the public half of {_SUPPORTED} "
            "('openssl pkey -in key.pem -pubout', or cosign.pub)"
        ) from None
    if not isinstance(key, PublicKey) or not _p256(key):
        raise SigningError(f"{where}: a {_kind(key)} key is not supported; give {_SUPPORTED}")
    return VerifyKey(key, keyid_of(key))


def _p256(key: object) -> bool:
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return isinstance(key.curve, ec.SECP256R1)
    return True


def _kind(key: object) -> str:
    curve = getattr(key, "curve", None)
    if curve is not None:
        return f"ECDSA {curve.name}"
    return type(key).__name__.removesuffix("PrivateKey").removesuffix("PublicKey").lstrip("_")


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature actually covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def dsse_envelope(key: SigningKey, payload: bytes, payload_type: str = IN_TOTO_PAYLOAD) -> bytes:
    """A DSSE envelope (canonical JSON) holding ``payload`` signed by ``key``."""
    signature = key.sign(pae(payload_type, payload))
    return canonical_json(
        {
            "payloadType": payload_type,
            "payload": _b64(payload),
            "signatures": [{"keyid": key.keyid, "sig": _b64(signature)}],
        }
    )


def open_envelope(key: VerifyKey, envelope: bytes) -> tuple[str, bytes] | None:
    """(payloadType, payload) when one of the envelope's signatures is ``key``'s, else None."""
    try:
        document: Any = json.loads(envelope)
        payload_type = str(document["payloadType"])
        payload = base64.b64decode(document["payload"], validate=True)
        signatures = [base64.b64decode(s["sig"], validate=True) for s in document["signatures"]]
    except (ValueError, KeyError, TypeError, binascii.Error, RecursionError):
        return None
    signed = pae(payload_type, payload)
    if any(key.verify(signed, signature) for signature in signatures):
        return payload_type, payload
    return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
