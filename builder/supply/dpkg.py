"""Debian and Ubuntu packages: dpkg's status database and distroless ``status.d``.

A package's licence is what its machine-readable ``copyright`` file declares
(every distinct ``License:`` line, joined with AND); its layer is the one that
wrote its ``info/<name>.list`` (the layer that installed it), else the
layer of the status record.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from packageurl import PackageURL

from builder.errors import ImageError
from builder.supply.packages import Distro, Package
from builder.supply.rootfs import Rootfs

STATUS = "var/lib/dpkg/status"
STATUS_D = "var/lib/dpkg/status.d/"
INFO = "var/lib/dpkg/info/"
_FIELD = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*):(.*)$")
_COPYRIGHT = re.compile(r"^usr/share/doc/[^/]+/copyright$")
_LICENSE_LINE = re.compile(r"^License:[ \t]*(\S.*)$", re.MULTILINE)


def wanted(path: str) -> bool:
    """The files this catalog reads."""
    if path == STATUS or _COPYRIGHT.match(path):
        return True
    return path.startswith(STATUS_D) and "/" not in path[len(STATUS_D) :]


def stanzas(text: str, where: str) -> Iterator[dict[str, str]]:
    """The paragraphs of a deb822 file as field → value (continuations joined)."""
    fields: dict[str, str] = {}
    last = ""
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            if fields:
                yield fields
            fields, last = {}, ""
        elif line[0] in " \t":
            if not last:
                raise _corrupt(where, number, "a continuation line with no field before it")
            fields[last] += "\n" + line.strip()
        else:
            match = _FIELD.match(line)
            if match is None:
                raise _corrupt(where, number, f"'{line[:60]}' is not a 'Field: value' line")
            last = match.group(1).lower()
            fields[last] = match.group(2).strip()
    if fields:
        yield fields


def _corrupt(where: str, line: int, what: str) -> ImageError:
    return ImageError(
        f"{where} line {line}: {what}; the dpkg database is corrupt. Fix or rebuild the "
        "base image, or turn the SBOM off ([image] sbom = false or --no-sbom)"
    )


def _records(rootfs: Rootfs) -> Iterator[tuple[str, str]]:
    paths = [STATUS] if rootfs.read(STATUS) is not None else []
    paths += [p for p in rootfs.kept(wanted) if p.startswith(STATUS_D) and ".md5sums" not in p]
    for path in paths:
        data = rootfs.read(path) or b""
        try:
            yield path, data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ImageError(
                f"{rootfs.where}: /{path} is not UTF-8 ({exc.reason} at byte {exc.start}); "
                "the dpkg database is corrupt. Fix or rebuild the base image, or turn the "
                "SBOM off ([image] sbom = false or --no-sbom)"
            ) from None


def dpkg_packages(rootfs: Rootfs, distro: Distro) -> Iterator[Package]:
    """Every installed package of the status database and of ``status.d``."""
    for path, text in _records(rootfs):
        where = f"{rootfs.where}: /{path}"
        for fields in stanzas(text, where):
            name = fields.get("package", "")
            if not name:
                raise ImageError(
                    f"{where}: a record has no Package field; the dpkg database is corrupt. "
                    "Fix or rebuild the base image, or turn the SBOM off (--no-sbom)"
                )
            status = fields.get("status", "install ok installed").split()
            if status[-1:] != ["installed"]:
                continue
            yield _package(rootfs, distro, path, fields)


def _package(rootfs: Rootfs, distro: Distro, path: str, fields: dict[str, str]) -> Package:
    name, version, arch = fields["package"], fields.get("version", ""), fields.get("architecture")
    qualifiers = {"arch": arch or "", "distro": distro.qualifier}
    source = fields.get("source", "").split(" ")[0]
    if source and source != name:
        qualifiers["upstream"] = source
    purl = PackageURL(
        "deb",
        distro.id or "debian",
        name,
        version or None,
        {k: v for k, v in qualifiers.items() if v},
    )
    layer = rootfs.origin[path]
    for info in (f"{INFO}{name}:{arch}.list", f"{INFO}{name}.list"):
        if info in rootfs.origin:
            layer = rootfs.origin[info]
            break
    return Package("deb", name, version, purl.to_string(), _license(rootfs, name), path, layer)


def _license(rootfs: Rootfs, name: str) -> str:
    data = rootfs.read(f"usr/share/doc/{name}/copyright")
    if data is None:
        return ""
    found = _LICENSE_LINE.findall(data.decode("utf-8", "replace"))
    terms = sorted({" ".join(line.split()) for line in found})
    return " AND ".join(t if len(terms) == 1 or " " not in t else f"({t})" for t in terms)
