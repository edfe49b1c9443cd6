"""The one error hierarchy bale raises.

Every message says what was wrong, where, and how to fix it; the CLI prints
it and exits with ``exit_code`` (1 for a failed build, 2 for bad usage).
"""

from __future__ import annotations


class BaleError(Exception):
    """Base of every error a user may see."""

    exit_code = 1


class UsageError(BaleError):
    """The command line itself is wrong (unknown option, bad flag value)."""

    exit_code = 2


class SpecError(BaleError):
    """image.toml is malformed or asks for something impossible."""


class SourceError(BaleError):
    """A build-context input cannot be used (missing, escaping, wrong type)."""


class PackageError(BaleError):
    """A Python distribution cannot be locked, fetched, chosen or installed."""


class LayerError(BaleError):
    """A layer cannot be encoded or compressed."""


class ImageError(BaleError):
    """An image, manifest or index is invalid or cannot be read."""


class LayoutError(BaleError):
    """An OCI layout or archive cannot be read or written."""


class DigestMismatch(BaleError):
    """Bytes do not hash to the digest that names them."""


class InvalidReference(BaleError):
    """An image reference (registry/repo:tag@digest) is invalid."""


class RegistryError(BaleError):
    """A registry refused or failed a request."""


class AuthError(RegistryError):
    """Credentials are missing, wrong, or cannot be obtained."""


class LockError(BaleError):
    """image.lock is missing, unreadable or disagrees with image.toml (``--locked``)."""


class SigningError(BaleError):
    """A signing or verification key cannot be used (not a key, wrong passphrase, wrong type)."""
