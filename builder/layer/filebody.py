"""What a reader takes of one regular file's bytes as they stream past.

A ``Reading`` says what one consumer wants of each file (its bytes kept,
its hashes, an excerpt); a ``FileBody`` collects that from the file's chunks
in order, from whatever stream carries them: a base layer's tar member, or
a context file being copied into a layer. Several readings of one file are
served by one pass over its bytes (``read_bodies``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from builder.layer.excerpt import Excerpt, Picker

# Files whose content is kept while reading: the account databases, and the
# package databases that name the C library's version (Python wheel tags).
DPKG_STATUS = "var/lib/dpkg/status"
APK_INSTALLED = "lib/apk/db/installed"
KEEP_CONTENT = frozenset({"etc/passwd", "etc/group", "etc/shadow", DPKG_STATUS, APK_INSTALLED})
_MAX_KEPT = 4 << 20
READ_SIZE = 1 << 20

# The kept bytes (or an excerpt), sha256 and sha1 of a file; "" for a hash not asked for.
Body = tuple[bytes | None, str, str]
NO_BODY: Body = (None, "", "")


@dataclass(frozen=True, slots=True)
class Reading:
    """What to take from each regular file besides its header.

    ``keep`` names the regular files whose bytes are kept (up to ``max_kept``
    bytes each); with ``hash_files`` every regular file gets its sha256 and
    sha1 (an SPDX file needs both); a ``picker`` keeps an excerpt of the other
    regular files (see ``excerpt``), read only as far as it needs.
    """

    keep: Callable[[str], bool] = KEEP_CONTENT.__contains__
    max_kept: int = _MAX_KEPT
    hash_files: bool = False
    picker: Picker | None = None


ACCOUNTS = Reading()


class FileBody:
    """One reading's take of one file: ``feed`` its chunks in order, then ``result``."""

    def __init__(self, reading: Reading, path: str, size: int) -> None:
        self.kept = reading.keep(path) and size <= reading.max_kept
        picker = reading.picker
        self.excerpt = Excerpt(picker, size) if picker is not None and not self.kept else None
        self.hashers: tuple[Any, ...] = (
            (hashlib.sha256(), hashlib.sha1()) if reading.hash_files else ()
        )
        self.chunks: list[bytes] = []

    @property
    def whole(self) -> bool:
        """Whether every byte matters (kept or hashed), not only an excerpt's."""
        return self.kept or bool(self.hashers)

    @property
    def wanted(self) -> bool:
        """Whether more of the file's bytes matter to this reading."""
        return self.whole or (self.excerpt is not None and self.excerpt.wanted)

    def feed(self, chunk: bytes | memoryview) -> None:
        """The file's next bytes (copied if kept: a caller may reuse the buffer)."""
        for hasher in self.hashers:
            hasher.update(chunk)
        if self.kept:
            self.chunks.append(bytes(chunk))
        elif self.excerpt is not None:
            self.excerpt.feed(chunk)

    @property
    def gap(self) -> int:
        """How many of the next bytes this reading need not see (only an excerpt skips)."""
        return 0 if self.whole or self.excerpt is None else self.excerpt.gap

    @property
    def needed(self) -> int:
        """How many of the next bytes to read for it at most (READ_SIZE if all of them)."""
        if self.whole:
            return READ_SIZE
        return min(self.excerpt.needed, READ_SIZE) if self.excerpt is not None else 0

    def skip(self, count: int) -> None:
        """The next ``count`` bytes (at most ``gap``) passed without being fed."""
        if self.excerpt is not None:
            self.excerpt.skip(count)

    def result(self) -> Body:
        excerpt = self.excerpt
        data = b"".join(self.chunks) if self.kept else excerpt.result() if excerpt else None
        if not self.hashers:
            return data, "", ""
        return data, self.hashers[0].hexdigest(), self.hashers[1].hexdigest()


def read_bodies(
    read: Callable[[int], bytes], readings: Sequence[Reading], path: str, size: int
) -> list[Body]:
    """Each reading's body of one file, its bytes read once and only as far as one wants."""
    bodies = [FileBody(reading, path, size) for reading in readings]
    feed_bodies(read, bodies)
    return [body.result() for body in bodies]


def feed_bodies(
    read: Callable[[int], bytes],
    bodies: Sequence[FileBody],
    skip: Callable[[int], int] | None = None,
) -> None:
    """Feed one file's bytes to ``bodies``, read once and only as far as one wants.

    When only excerpts are wanted, no read goes past what they still need:
    the first is of the head alone (most files are not what a picker looks
    for, and the rest of them is skipped), a later one stops at the end of
    the wanted range. With ``skip`` (pass over up to n bytes, return how
    many), the bytes before every wanting excerpt's range (an ELF file's code
    before its data segment) are passed over, not read, copied and fed.
    """
    while True:
        wanting = [body for body in bodies if body.wanted]
        if not wanting:
            break
        gap = min(body.gap for body in wanting) if skip is not None else 0
        if gap and skip is not None:
            passed = skip(gap)
            for body in wanting:
                body.skip(passed)
            if passed < gap:
                break
            continue
        chunk = read(max(body.needed for body in wanting))
        if not chunk:
            break
        for body in wanting:
            body.feed(chunk)
