"""What an SBOM lists: packages found in the final filesystem.

Each catalog (dpkg, apk, Python, npm) reads the records it knows from a
``Rootfs`` and yields ``Package`` values; ``find_packages`` runs them all and
sorts the result, so the same filesystem always gives the same list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from builder.model import Digest
from builder.supply.rootfs import Rootfs

OS_RELEASE = ("etc/os-release", "usr/lib/os-release")


@dataclass(frozen=True, slots=True, order=True)
class Package:
    """One installed package: its ecosystem, identity, declared licence and origin.

    ``license`` is the declaration as found (empty when none); ``path`` is the
    record it was read from and ``layer`` the diff_id of the layer that wrote it.
    """

    ecosystem: str
    name: str
    version: str
    purl: str
    license: str
    path: str
    layer: Digest


@dataclass(frozen=True, slots=True)
class Distro:
    """The distribution named by os-release (``ID`` and ``VERSION_ID``), empty if none."""

    id: str = ""
    version_id: str = ""

    @property
    def qualifier(self) -> str:
        """purl's ``distro`` qualifier, e.g. ``debian-12``."""
        return "-".join(part for part in (self.id, self.version_id) if part)


def distro_of(rootfs: Rootfs) -> Distro:
    """The image's distribution from /etc/os-release (else /usr/lib/os-release)."""
    for path in OS_RELEASE:
        data = rootfs.read(path)
        if data is None:
            continue
        fields = {}
        for line in data.decode("utf-8", "replace").splitlines():
            key, sep, value = line.partition("=")
            if sep:
                fields[key.strip()] = value.strip().strip("\"'")
        return Distro(fields.get("ID", "").lower(), fields.get("VERSION_ID", ""))
    return Distro()


Catalog = Callable[[Rootfs, Distro], Iterable[Package]]


def find_packages(rootfs: Rootfs, catalogs: Iterable[Catalog]) -> tuple[Package, ...]:
    """Every package each catalog finds, sorted and without repeats."""
    distro = distro_of(rootfs)
    found = {package for catalog in catalogs for package in catalog(rootfs, distro)}
    return tuple(sorted(found))
