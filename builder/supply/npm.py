"""npm packages: ``node_modules/[@scope/]name/package.json`` anywhere in the image."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from packageurl import PackageURL

from builder.supply.packages import Distro, Package
from builder.supply.rootfs import Rootfs

_MANIFEST = re.compile(r"(?:^|/)node_modules/(?:@[^/]+/)?[^/@.][^/]*/package\.json$")


def wanted(path: str) -> bool:
    return _MANIFEST.search(path) is not None


def _license(document: dict[str, Any]) -> str:
    """``license`` (a string or the old ``{"type": ...}``), else the old ``licenses`` list."""
    value = document.get("license")
    if isinstance(value, dict):
        value = value.get("type")
    if isinstance(value, str):
        return value
    listed = document.get("licenses")
    if isinstance(listed, list):
        names = [str(item.get("type", "")) for item in listed if isinstance(item, dict)]
        return " OR ".join(name for name in names if name)
    return ""


def npm_packages(rootfs: Rootfs, distro: Distro) -> Iterator[Package]:
    del distro  # an npm package's identity does not depend on the OS
    for path in rootfs.kept(wanted):
        try:
            document = json.loads(rootfs.read(path) or b"")
        except (ValueError, RecursionError):
            continue  # a broken package.json is not a package record
        if not isinstance(document, dict) or not isinstance(document.get("name"), str):
            continue
        name, version = document["name"], str(document.get("version") or "")
        scope, _, short = name.rpartition("/")
        purl = PackageURL("npm", scope or None, short, version or None)
        yield Package(
            "npm", name, version, purl.to_string(), _license(document), path, rootfs.origin[path]
        )
