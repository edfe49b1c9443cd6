"""Locked input: a hash-pinned requirements.txt or a PEP 751 pylock.toml → ``Locked`` values.

Nothing is resolved here: every distribution must already be pinned to one
version with the hashes of its files, as ``pip-compile --generate-hashes``,
``uv pip compile --generate-hashes``, ``uv export --format pylock.toml`` and
``pip lock`` write them.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from builder.errors import PackageError

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

HOW_TO_LOCK = (
    "make a lock with `pip-compile --generate-hashes`, `uv pip compile --generate-hashes`, "
    "`uv export --format pylock.toml` or `pip lock`"
)
# Options pip-compile and uv may write that change nothing here: every file is
# hash-checked, wheels are preferred anyway, and the pins are the whole set.
_HARMLESS = frozenset(
    {
        "--no-binary",
        "--only-binary",
        "--prefer-binary",
        "--trusted-host",
        "--require-hashes",
        "--no-deps",
        "--pre",
    }
)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HASH_OPTION = re.compile(r"(?:^|\s)--hash(?:=|\s+)(\S+)")


@dataclass(frozen=True, slots=True)
class LockedFile:
    """One file a lock allows: its sha256, and its URL and name when the lock says them."""

    sha256: str
    url: str = ""
    filename: str = ""


@dataclass(frozen=True, slots=True)
class Locked:
    """One pinned distribution (``name`` canonical) and the files that may provide it."""

    name: str
    version: str
    files: tuple[LockedFile, ...]
    marker: Marker | None = None
    where: str = ""
    requires_python: str = ""

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True, slots=True)
class LockInput:
    """A lock file's distributions and the index options written in it."""

    dists: tuple[Locked, ...]
    index_url: str = ""
    extra_index_urls: tuple[str, ...] = ()
    environments: tuple[Marker, ...] = ()
    requires_python: str = ""


def read_requirements(path: Path, shown: str) -> LockInput:
    """A hash-pinned requirements.txt; ``shown`` names it in errors."""
    dists: list[Locked] = []
    index_url, extras = "", []
    for number, line in _logical_lines(path, shown):
        where = f"{shown}:{number}"
        if line.startswith("-"):
            option, _, value = line.partition(" ") if " " in line else line.partition("=")
            value = value.strip().lstrip("=").strip()
            if option in ("-i", "--index-url"):
                index_url = value
            elif option == "--extra-index-url":
                extras.append(value)
            elif option not in _HARMLESS:
                raise PackageError(f"{where}: '{option}' is not supported in a lock; {HOW_TO_LOCK}")
            continue
        dists.append(_requirement(line, where))
    _check_unique(dists, shown)
    return LockInput(tuple(dists), index_url, tuple(extras))


def _logical_lines(path: Path, shown: str) -> list[tuple[int, str]]:
    """Lines with comments removed and backslash continuations joined."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PackageError(f"{shown}: cannot read the lock: {exc}") from None
    lines: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined = (pending + line).strip()
        pending = ""
        if joined:
            lines.append((start, joined))
    return lines


def _requirement(line: str, where: str) -> Locked:
    hashes = _HASH_OPTION.findall(line)
    text = _HASH_OPTION.sub(" ", line).strip()
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise PackageError(f"{where}: '{text}' is not a requirement: {exc}") from None
    specs = list(req.specifier)
    if (
        req.url
        or len(specs) != 1
        or specs[0].operator not in ("==", "===")
        or "*" in specs[0].version
    ):
        raise PackageError(
            f"{where}: '{req}' is not pinned to one version (name==version); {HOW_TO_LOCK}"
        )
    files = tuple(LockedFile(_sha256(h, where)) for h in hashes)
    if not files:
        raise PackageError(f"{where}: '{req}' has no --hash=sha256:...; {HOW_TO_LOCK}")
    return Locked(canonicalize_name(req.name), specs[0].version, files, req.marker, where)


def _sha256(text: str, where: str) -> str:
    algorithm, _, value = text.partition(":")
    if algorithm != "sha256" or not _SHA256.match(value):
        raise PackageError(f"{where}: hash '{text}' is not sha256:<64 hex digits>; {HOW_TO_LOCK}")
    return value


def _check_unique(dists: list[Locked], shown: str) -> None:
    seen: dict[str, Locked] = {}
    for dist in dists:
        other = seen.get(dist.name)
        if other is not None and other.marker is None and dist.marker is None:
            raise PackageError(f"{dist.where}: {dist.name} is locked twice (also {other.where})")
        seen[dist.name] = dist


def read_pylock(path: Path, shown: str) -> LockInput:
    """A PEP 751 ``pylock.toml``: every package with its wheels (and sdist) and their hashes."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PackageError(f"{shown}: cannot read the lock: {exc}") from None
    if str(data.get("lock-version", "")).split(".")[0] != "1":
        raise PackageError(
            f"{shown}: lock-version {data.get('lock-version')!r} is not 1.x (PEP 751)"
        )
    packages = data.get("packages")
    if not isinstance(packages, list):
        raise PackageError(f"{shown}: no [[packages]]; {HOW_TO_LOCK}")
    dists = [_package(p, f"{shown}: packages[{i}]") for i, p in enumerate(packages)]
    _check_unique(dists, shown)
    try:
        environments = tuple(Marker(str(m)) for m in data.get("environments") or ())
        requires = str(data.get("requires-python") or "")
        SpecifierSet(requires)
    except (InvalidMarker, InvalidSpecifier) as exc:
        raise PackageError(f"{shown}: environments or requires-python: {exc}") from None
    return LockInput(tuple(dists), environments=environments, requires_python=requires)


def _package(package: object, where: str) -> Locked:
    if not isinstance(package, dict) or not package.get("name") or not package.get("version"):
        raise PackageError(f"{where}: a package needs a name and a version; {HOW_TO_LOCK}")
    name, version = str(package["name"]), str(package["version"])
    where = f"{where} ({name})"
    files = [
        _pylock_file(w, f"{where}.wheels[{i}]") for i, w in enumerate(package.get("wheels") or ())
    ]
    if package.get("sdist") is not None:
        files.append(_pylock_file(package["sdist"], f"{where}.sdist"))
    if not files:
        raise PackageError(
            f"{where}: no wheels or sdist (a VCS or directory package?); "
            "only files from an index can be locked"
        )
    marker = None
    if package.get("marker"):
        try:
            marker = Marker(str(package["marker"]))
        except InvalidMarker as exc:
            raise PackageError(f"{where}: marker: {exc}") from None
    requires = str(package.get("requires-python") or "")
    try:
        SpecifierSet(requires)
    except InvalidSpecifier as exc:
        raise PackageError(f"{where}: requires-python: {exc}") from None
    return Locked(canonicalize_name(name), version, tuple(files), marker, where, requires)


def _pylock_file(item: object, where: str) -> LockedFile:
    if not isinstance(item, dict):
        raise PackageError(f"{where}: expected a table")
    hashes = item.get("hashes") or {}
    sha = hashes.get("sha256", "") if isinstance(hashes, dict) else ""
    if not _SHA256.match(str(sha)):
        raise PackageError(f"{where}: no sha256 in 'hashes'; {HOW_TO_LOCK}")
    url = str(item.get("url", ""))
    if not url.startswith(("https://", "http://")):
        raise PackageError(
            f"{where}: only http(s) 'url's are supported (got {item.get('path') or 'none'})"
        )
    name = str(item.get("name") or url.rsplit("/", 1)[-1].split("#")[0])
    return LockedFile(str(sha), url, name)
