"""Stable identifiers for SBOM elements: derived from what they name, never random."""

from __future__ import annotations

import hashlib
import uuid

from builder.supply.packages import Package
from builder.supply.rootfs import FileRecord

NAMESPACE = uuid.UUID("6f1c2a5e-0b7d-5c4e-9a31-6b616c650000")


def short_hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def package_id(package: Package) -> str:
    """Unique per (ecosystem, name, version, record path): SPDX ids allow ``[A-Za-z0-9.-]``."""
    key = short_hash(package.ecosystem, package.name, package.version, package.path)
    return f"SPDXRef-Package-{package.ecosystem}-{key}"


def file_id(record: FileRecord) -> str:
    return f"SPDXRef-File-{short_hash(record.path)}"


def document_uuid(kind: str, manifest_digest: str) -> uuid.UUID:
    """One document per format and image manifest: a name-based (v5) UUID."""
    return uuid.uuid5(NAMESPACE, f"{kind}:{manifest_digest}")
