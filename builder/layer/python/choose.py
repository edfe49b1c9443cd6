"""Which locked file installs a distribution on a target: the best-fitting wheel, else an sdist."""

from __future__ import annotations

from dataclasses import dataclass

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_version,
    parse_sdist_filename,
    parse_wheel_filename,
)

from builder.errors import PackageError
from builder.layer.python.fetch import IndexFile
from builder.layer.python.locked import Locked
from builder.layer.python.target import Target, ranks


@dataclass(frozen=True, slots=True)
class Choice:
    """The file to install and whether it is an sdist (to be built into a pure wheel)."""

    file: IndexFile
    sdist: bool = False


def candidates(dist: Locked, listed: list[IndexFile]) -> list[IndexFile]:
    """Files of the locked version whose listed sha256 the lock allows.

    An index must list each file's sha256 (PEP 503's URL fragment or PEP 691's
    hashes), as PyPI and the common private indexes do.
    """
    allowed = {f.sha256 for f in dist.files}
    version = canonicalize_version(dist.version)
    result = []
    for item in listed:
        if item.sha256 in allowed and _version(item.filename) == version:
            result.append(item)
    if not result:
        names = ", ".join(sorted({f.filename for f in listed if _version(f.filename) == version}))
        raise PackageError(
            f"{dist.where}: no file of {dist} on the index has a hash the lock allows "
            f"(files of that version: {names or 'none'}); the lock is wrong or the index "
            "serves other files: lock again against this index"
        )
    return result


def _version(filename: str) -> str | None:
    try:
        if filename.endswith(".whl"):
            return canonicalize_version(parse_wheel_filename(filename)[1])
        return canonicalize_version(parse_sdist_filename(filename)[1])
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None


def choose(dist: Locked, files: list[IndexFile], target: Target) -> Choice:
    """The wheel whose best tag ranks highest for ``target``; an sdist when no wheel fits."""
    rank = ranks(target.python, tuple(target.platform_tags()))
    best: tuple[int, IndexFile] | None = None
    sdist = None
    for item in files:
        if not item.filename.endswith(".whl"):
            sdist = sdist or item
            continue
        tags = parse_wheel_filename(item.filename)[3]
        score = min((rank[t] for t in tags if t in rank), default=None)
        if score is not None and (best is None or score < best[0]):
            best = (score, item)
    if best is not None:
        return Choice(best[1])
    if sdist is not None:
        return Choice(sdist, sdist=True)
    names = ", ".join(sorted(f.filename for f in files)) or "none"
    raise PackageError(
        f"{dist.where}: {dist} has no wheel for {target.describe()} and no sdist; the locked "
        f"files are: {names}. Lock a version that ships a wheel for "
        f"{target.platform_tags()[0]} (or an older manylinux), or drop this platform"
    )
