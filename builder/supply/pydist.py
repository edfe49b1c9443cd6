"""Python distributions: ``*.dist-info/METADATA``, ``*.egg-info/PKG-INFO`` and ``*.egg-info`` files.

These are the records ``importlib.metadata`` reads. A licence is the
``License-Expression`` (PEP 639) when present, else a one-line ``License``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.parser import HeaderParser

from packageurl import PackageURL

from builder.supply.packages import Distro, Package
from builder.supply.rootfs import Rootfs

_NORMALISE = re.compile(r"[-_.]+")


def wanted(path: str) -> bool:
    parent, _, name = path.rpartition("/")
    if name == "METADATA":
        return parent.endswith(".dist-info")
    if name == "PKG-INFO":
        return parent.endswith(".egg-info")
    return name.endswith(".egg-info")


def _license(headers: dict[str, str]) -> str:
    expression = headers.get("License-Expression", "").strip()
    if expression:
        return expression
    text = headers.get("License", "").strip()
    if "\n" in text or len(text) > 100 or text.upper() in ("UNKNOWN", "NONE"):
        return ""
    return text


def python_packages(rootfs: Rootfs, distro: Distro) -> Iterator[Package]:
    del distro  # a Python distribution's identity does not depend on the OS
    for path in rootfs.kept(wanted):
        text = (rootfs.read(path) or b"").decode("utf-8", "replace")
        message = HeaderParser().parsestr(text, headersonly=True)
        headers = {key: str(value) for key, value in message.items()}
        name, version = headers.get("Name", "").strip(), headers.get("Version", "").strip()
        if not name:
            continue
        purl = PackageURL("pypi", None, _NORMALISE.sub("-", name).lower(), version or None)
        yield Package(
            "pypi", name, version, purl.to_string(), _license(headers), path, rootfs.origin[path]
        )
