"""Alpine packages: apk's installed database (``lib/apk/db/installed``)."""

from __future__ import annotations

from collections.abc import Iterator

from packageurl import PackageURL

from builder.supply.packages import Distro, Package
from builder.supply.rootfs import Rootfs

INSTALLED = "lib/apk/db/installed"


def wanted(path: str) -> bool:
    return path == INSTALLED


def _records(text: str) -> Iterator[dict[str, str]]:
    """Each package's ``K:value`` lines (the first of each key; ``R:`` file lines skipped)."""
    fields: dict[str, str] = {}
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if fields:
                yield fields
            fields = {}
            continue
        key, sep, value = line.partition(":")
        if sep and len(key) == 1:
            fields.setdefault(key, value.strip())


def apk_packages(rootfs: Rootfs, distro: Distro) -> Iterator[Package]:
    data = rootfs.read(INSTALLED)
    if data is None:
        return
    for fields in _records(data.decode("utf-8", "replace")):
        name, version = fields.get("P", ""), fields.get("V", "")
        if not name:
            continue
        qualifiers = {"arch": fields.get("A", ""), "distro": distro.qualifier}
        purl = PackageURL(
            "apk",
            distro.id or "alpine",
            name,
            version or None,
            {k: v for k, v in qualifiers.items() if v},
        )
        layer = rootfs.origin[INSTALLED]
        yield Package("apk", name, version, purl.to_string(), fields.get("L", ""), INSTALLED, layer)
