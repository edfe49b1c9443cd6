"""cosign's own private key file: ``ENCRYPTED SIGSTORE PRIVATE KEY`` → PKCS#8 DER.

What ``cosign generate-key-pair`` writes (``ENCRYPTED COSIGN PRIVATE KEY`` in
cosign before 2.0) is a PEM block whose body is a JSON document from
go-securesystemslib's ``encrypted`` package: the PKCS#8 DER key sealed with
NaCl secretbox (XSalsa20-Poly1305) under a key derived from the passphrase by
scrypt. Read here with ``hashlib.scrypt`` and PyNaCl; pure, no file I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from builder.errors import SigningError

LABELS = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")
_PEM = re.compile(
    rb"-----BEGIN (ENCRYPTED (?:SIGSTORE|COSIGN) PRIVATE KEY)-----\s*(.*?)\s*-----END \1-----",
    re.DOTALL,
)
# The parameter sets cosign's reader (go-securesystemslib) accepts: r=8, p=1 and
# N = 2^15 (cosign before 2.0), 2^16 (cosign 2.x), 2^17 (the OWASP strength).
SCRYPT_COSTS = (1 << 15, 1 << 16, 1 << 17)
SCRYPT_R, SCRYPT_P, KEY_BYTES, NONCE_BYTES = 8, 1, 32, 24
_MAX_DOCUMENT = 64 * 1024


@dataclass(frozen=True, slots=True)
class Sealed:
    """The parts of one cosign key document, checked but still encrypted."""

    cost: int
    salt: bytes
    nonce: bytes
    ciphertext: bytes


def is_cosign_key(pem: bytes) -> bool:
    return any(b"BEGIN " + label.encode() in pem for label in LABELS)


def open_cosign_key(pem: bytes, where: str, password: bytes | None) -> bytes:
    """The PKCS#8 DER key inside; ``password`` None means unset (an empty one is tried)."""
    sealed = parse(pem, where)
    der = _decrypt(sealed, password or b"")
    if der is None and password is None:
        raise SigningError(
            f"{where}: the cosign key is encrypted; set its passphrase in the environment "
            "variable BALE_SIGN_PASSWORD (or COSIGN_PASSWORD)"
        )
    if der is None:
        raise SigningError(
            f"{where}: wrong passphrase (from BALE_SIGN_PASSWORD/COSIGN_PASSWORD) for this "
            "cosign key"
        )
    return der


def parse(pem: bytes, where: str) -> Sealed:
    """The checked document of a cosign key PEM; SigningError says what is damaged."""
    match = _PEM.search(pem)
    if match is None:
        raise _damaged(where, "no complete BEGIN/END block")
    try:
        body = base64.b64decode(b"".join(match.group(2).split()), validate=True)
    except binascii.Error:
        raise _damaged(where, "the PEM body is not base64") from None
    if len(body) > _MAX_DOCUMENT:
        raise _damaged(where, f"the key document is over {_MAX_DOCUMENT} bytes")
    try:
        document: Any = json.loads(body)
        return _sealed(document, where)
    except (ValueError, KeyError, TypeError, binascii.Error, AttributeError, RecursionError):
        raise _damaged(where, "the key document is not the JSON cosign writes") from None


def _sealed(document: Any, where: str) -> Sealed:
    kdf, cipher = document["kdf"], document["cipher"]
    if kdf["name"] != "scrypt":
        raise _unsupported(where, f"key derivation {str(kdf['name'])[:40]!r}", "scrypt")
    if cipher["name"] != "nacl/secretbox":
        raise _unsupported(where, f"cipher {str(cipher['name'])[:40]!r}", "nacl/secretbox")
    params = kdf["params"]
    cost, r, p = (params[k] for k in ("N", "r", "p"))
    if cost not in SCRYPT_COSTS or r != SCRYPT_R or p != SCRYPT_P:
        raise _unsupported(
            where, "scrypt parameters", "N = 32768, 65536 or 131072 with r = 8, p = 1"
        )
    sealed = Sealed(
        cost=int(cost),
        salt=base64.b64decode(kdf["salt"], validate=True),
        nonce=base64.b64decode(cipher["nonce"], validate=True),
        ciphertext=base64.b64decode(document["ciphertext"], validate=True),
    )
    if not sealed.salt or len(sealed.nonce) != NONCE_BYTES or len(sealed.ciphertext) <= 16:
        raise _damaged(where, "its salt, nonce or ciphertext has the wrong length")
    return sealed


def _decrypt(sealed: Sealed, password: bytes) -> bytes | None:
    """The plaintext, or None when the secretbox does not open (wrong passphrase)."""
    from nacl.exceptions import CryptoError
    from nacl.secret import SecretBox

    key = hashlib.scrypt(
        password,
        salt=sealed.salt,
        n=sealed.cost,
        r=SCRYPT_R,
        p=SCRYPT_P,
        dklen=KEY_BYTES,
        maxmem=256 * SCRYPT_R * max(SCRYPT_COSTS),
    )
    try:
        return bytes(SecretBox(key).decrypt(sealed.ciphertext, sealed.nonce))
    except CryptoError:
        return None


def _damaged(where: str, what: str) -> SigningError:
    return SigningError(
        f"{where}: damaged cosign key ({what}); restore the file from your copy, or give "
        "a PKCS#8 PEM key"
    )


def _unsupported(where: str, what: str, supported: str) -> SigningError:
    return SigningError(
        f"{where}: unsupported {what} in the cosign key; bale reads {supported}, what cosign writes"
    )
