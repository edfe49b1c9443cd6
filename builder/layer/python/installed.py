"""Remembered installs: a wheel's entries for one install location, kept in the cache.

A rebuild with the same wheel (by sha256), target paths, shebang and options
reads one small JSON file instead of running ``installer`` again. Files that
come unchanged from the wheel are stored as its member names and RECORD hashes;
generated ones (scripts, RECORD, INSTALLER, pycs) as their bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import installer

from builder.atomic import atomic_write
from builder.layer.entries import Entry, InlineContent, Kind, ZipMember

# Bump whenever bale installs a wheel differently (paths, modes, generated files).
FORMAT = 2


def install_key(wheel_sha256: str, parts: tuple[object, ...]) -> str:
    """The record name: the wheel, everything that decides its entries, and the tool versions."""
    head = ["bale-python-install", FORMAT, installer.__version__, wheel_sha256, *map(str, parts)]
    return hashlib.sha256(json.dumps(head).encode()).hexdigest()


def _row(entry: Entry) -> dict[str, Any]:
    content = entry.content
    if isinstance(content, ZipMember):
        return {
            "p": entry.path,
            "m": entry.mode,
            "z": content.member,
            "s": content.size,
            "h": content.sha256,
        }
    assert isinstance(content, InlineContent)
    return {"p": entry.path, "m": entry.mode, "d": base64.b64encode(content.data).decode()}


def _entry(row: dict[str, Any], wheel: Path) -> Entry:
    if "z" in row:
        content: ZipMember | InlineContent = ZipMember(
            str(wheel), row["z"], int(row["s"]), row["h"]
        )
    else:
        content = InlineContent(base64.b64decode(row["d"]))
    return Entry(row["p"], Kind.FILE, int(row["m"]), content=content)


def remembered(record: Path, wheel: Path, install: Callable[[], list[Entry]]) -> list[Entry]:
    """The entries kept in ``record``, else ``install()`` kept there for next time."""
    try:
        rows = json.loads(record.read_bytes())
        return [_entry(row, wheel) for row in rows]
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        record.unlink(missing_ok=True)
    entries = install()
    record.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(record, sync=False) as out:
        out.write(json.dumps([_row(e) for e in entries], separators=(",", ":")).encode())
    return entries
