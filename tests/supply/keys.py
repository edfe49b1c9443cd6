"""Keys made by openssl (an independent tool) for the signing tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import require_tool

GENPKEY = {
    "p256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    "p384": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    "ed25519": ["-algorithm", "ed25519"],
    "ed448": ["-algorithm", "ed448"],
    "rsa": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
}


def openssl(*args: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [require_tool("openssl"), *args], input=data, capture_output=True, check=False
    )


def make_key(directory: Path, kind: str, passphrase: str = "") -> tuple[Path, Path]:
    """(private PEM, public PEM) of a new key; PKCS#8, encrypted with AES-256 if asked."""
    directory.mkdir(parents=True, exist_ok=True)
    private, public = directory / f"{kind}.key", directory / f"{kind}.pub"
    extra = ["-aes256", "-pass", f"pass:{passphrase}"] if passphrase else []
    done = openssl("genpkey", *GENPKEY[kind], *extra, "-out", str(private))
    assert done.returncode == 0, done.stderr
    password = ["-passin", f"pass:{passphrase}"] if passphrase else []
    done = openssl("pkey", "-in", str(private), *password, "-pubout", "-out", str(public))
    assert done.returncode == 0, done.stderr
    return private, public


def openssl_verifies(public: Path, data: bytes, signature: bytes, ed25519: bool) -> bool:
    """openssl's verdict on a signature: ECDSA over SHA-256, or pure Ed25519."""
    folder = public.parent
    (folder / "signed.bin").write_bytes(data)
    (folder / "signature.bin").write_bytes(signature)
    if ed25519:
        args = ["pkeyutl", "-verify", "-pubin", "-inkey", str(public), "-rawin"]
        args += ["-in", str(folder / "signed.bin"), "-sigfile", str(folder / "signature.bin")]
    else:
        args = ["dgst", "-sha256", "-verify", str(public)]
        args += ["-signature", str(folder / "signature.bin"), str(folder / "signed.bin")]
    return openssl(*args).returncode == 0
