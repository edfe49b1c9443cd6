"""What one platform image's SBOM says: the image, its base, packages and bale's files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from packageurl import PackageURL

from builder.errors import InvalidReference
from builder.model import Descriptor, Digest, Platform
from builder.reference import parse_reference
from builder.supply.packages import Package
from builder.supply.rootfs import FileRecord

LOCAL_TRANSPORTS = ("oci:", "oci-archive:", "docker-archive:")


@dataclass(frozen=True, slots=True)
class Named:
    """An image named as the user named it, with its manifest digest and package URL."""

    name: str
    digest: Digest
    purl: str


@dataclass(frozen=True, slots=True)
class Inventory:
    """Everything an SBOM document is written from; ``created`` is RFC 3339."""

    image: Named
    manifest: Descriptor
    platform: Platform
    created: str
    base: Named | None
    packages: tuple[Package, ...]
    files: tuple[FileRecord, ...]


def oci_purl(
    short: str, digest: Digest, platform: Platform | None, repository_url: str = "", tag: str = ""
) -> str:
    """``pkg:oci/SHORT@DIGEST`` with ``arch``, ``repository_url`` and ``tag`` when known."""
    qualifiers = {"arch": platform.architecture if platform else ""}
    qualifiers |= {"repository_url": repository_url, "tag": tag}
    kept = {key: value for key, value in qualifiers.items() if value}
    return PackageURL("oci", None, short.lower() or "image", str(digest), kept).to_string()


def named(name: str, digest: Digest, platform: Platform | None = None) -> Named:
    """An image named as in image.toml or on the command line.

    A registry reference gives ``repository_url`` and ``tag``; a local image
    (``oci:DIR``, an archive) is named by its file's stem, with no repository
    (its path says nothing to a reader elsewhere).
    """
    text = name.removeprefix("docker://")
    if text.startswith(LOCAL_TRANSPORTS):
        path = text.partition(":")[2].split(":")[0]
        return unpublished(name, PurePosixPath(path).name.split(".")[0], digest, platform)
    try:
        ref = parse_reference(text)
    except InvalidReference:
        return unpublished(name, "image", digest, platform)
    short = ref.repository.rpartition("/")[2]
    repository_url = f"{ref.registry}/{ref.repository}"
    purl = oci_purl(short, digest, platform, repository_url, ref.tag or "")
    return Named(name, digest, purl)


def unpublished(name: str, short: str, digest: Digest, platform: Platform | None) -> Named:
    """An image with no registry name: its purl has no ``repository_url``."""
    return Named(name, digest, oci_purl(short, digest, platform))
