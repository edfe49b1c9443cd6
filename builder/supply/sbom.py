"""One platform image's SBOMs: read its filesystem, find its packages, write each format."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from builder import __version__
from builder.layer.lower import StoredLayer
from builder.model import Descriptor, Digest, Platform, canonical_json
from builder.supply import apk, cyclonedx, dpkg, gobuild, npm, pydist, spdx
from builder.supply.attachment import Attachment
from builder.supply.inventory import Inventory, Named
from builder.supply.packages import OS_RELEASE, find_packages
from builder.supply.rootfs import LayerMembers, merge, read_rootfs

WRITERS: dict[str, tuple[str, Callable[[Inventory], bytes]]] = {
    "spdx": (spdx.MEDIA_TYPE, spdx.spdx_document),
    "cyclonedx": (cyclonedx.MEDIA_TYPE, cyclonedx.cyclonedx_document),
}
CATALOGS = (
    dpkg.dpkg_packages,
    apk.apk_packages,
    pydist.python_packages,
    npm.npm_packages,
    gobuild.go_packages,
)
# What the catalogs take from files they do not keep whole: a Go binary's build info.
PICKER = gobuild.PICKER


def wanted(path: str) -> bool:
    """Whether any catalog (or the distro lookup) reads this file.

    Asked of every file of every layer (several times), so written out rather
    than looped over the catalogs.
    """
    return (
        path in OS_RELEASE
        or dpkg.wanted(path)
        or apk.wanted(path)
        or pydist.wanted(path)
        or npm.wanted(path)
    )


def inventory_of(
    image: Named,
    manifest: Descriptor,
    platform: Platform,
    created: str,
    base: Named | None,
    layers: Sequence[StoredLayer],
    own_from: int,
) -> Inventory:
    """Read ``layers`` (base first, bale's own from ``own_from``) into an inventory."""
    rootfs = read_rootfs(layers, own_from, wanted, f"{image.name} ({platform})", PICKER)
    packages = find_packages(rootfs, CATALOGS)
    return Inventory(image, manifest, platform, created, base, packages, rootfs.files)


def inventory_of_members(
    image: Named,
    manifest: Descriptor,
    platform: Platform,
    created: str,
    base: Named | None,
    layers: Sequence[LayerMembers],
    where: str,
) -> Inventory:
    """An inventory from layers already read (a build has its own layers' entries).

    ``where`` names the image in error messages.
    """
    rootfs = merge(layers, where)
    packages = find_packages(rootfs, CATALOGS)
    return Inventory(image, manifest, platform, created, base, packages, rootfs.files)


# Bump when an SBOM's bytes change while bale's version does not: kept ones go unused.
MEMO_VERSION = 1


def memo_key(
    image: Named,
    manifest: Descriptor,
    platform: Platform,
    created: str,
    base: Named | None,
    fmt: str,
) -> str:
    """The name a registry cache keeps an SBOM under: all it is written from but its
    packages and files, which the manifest digest fixes (its config lists every
    layer's diff_id), and the version of bale that wrote it."""
    names = [[n.name, str(n.digest), n.purl] if n is not None else None for n in (image, base)]
    head = [MEMO_VERSION, __version__, fmt, str(manifest.digest), str(platform), created, names]
    return f"{fmt}-{Digest.of(canonical_json(head)).encoded}"


def media_type(fmt: str) -> str:
    """The media type (and artifact type) of an SBOM of format ``fmt``."""
    return WRITERS[fmt][0]


def sbom_document(inventory: Inventory, fmt: str) -> bytes:
    return WRITERS[fmt][1](inventory)


def sbom_attachments(inventory: Inventory, formats: Sequence[str]) -> list[Attachment]:
    """One attachment per format, its artifact type the document's media type."""
    found = []
    for fmt in formats:
        media_type, write = WRITERS[fmt]
        found.append(Attachment(media_type, media_type, write(inventory)))
    return found
