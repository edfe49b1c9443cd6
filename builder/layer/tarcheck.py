"""The limits every tar bale reads must respect, and the stream that enforces them.

Python's ``tarfile`` trusts what a header says: a long-name header claiming
2 GiB is read into memory, a member claiming 2^62 bytes is skipped block by
block forever, and a damaged header or a cut stream just ends the archive
early. ``BoundedTarInfo`` refuses oversized extended headers and malformed
members; ``TarStream`` hashes and counts the bytes, supplies the end-of-archive
blocks some writers leave out, and ``finish`` proves the archive really ended:
nothing but at most ``MAX_TRAILING`` zero bytes after its last member.
"""

from __future__ import annotations

import hashlib
import math
import tarfile
from typing import IO, Any

MAX_HEADER = 1 << 20
MAX_ID = 2**32 - 2
MAX_TRAILING = 1 << 20
BLOCK = 512
_EXTENDED = {
    tarfile.GNUTYPE_LONGNAME: "GNU long-name",
    tarfile.GNUTYPE_LONGLINK: "GNU long-link",
    tarfile.XHDTYPE: "PAX",
    tarfile.XGLTYPE: "PAX global",
    tarfile.SOLARIS_XHDTYPE: "Solaris extended",
}


class TarLimitError(tarfile.TarError):
    """A tar that is malformed, truncated, or beyond bale's limits (the message says which)."""


class BoundedTarInfo(tarfile.TarInfo):
    """A TarInfo whose extended headers are bounded and whose members are checked."""

    def _proc_member(self, tarfile: tarfile.TarFile) -> Any:
        kind = _EXTENDED.get(self.type)
        if kind is not None and not 0 <= self.size <= MAX_HEADER:
            raise TarLimitError(
                f"a {kind} header at byte {self.offset} claims {self.size} bytes; "
                f"bale reads extended headers of up to {MAX_HEADER} bytes"
            )
        member = super()._proc_member(tarfile)  # type: ignore[misc]
        check_member(member)
        return member


def check_member(info: tarfile.TarInfo) -> None:
    """Refuse what no filesystem can hold: NUL or empty names, '..', ids and times out of range."""
    where = f"member '{info.name}'"
    if not info.name and not info.isdir():
        # A directory named "/" or "./" (umoci writes one) is the root: readers skip it.
        raise TarLimitError(f"a member at byte {info.offset} has an empty name")
    if "\0" in info.name or "\0" in info.linkname:
        raise TarLimitError(f"{where} has a NUL byte in its name or link target")
    if ".." in info.name.split("/"):
        raise TarLimitError(f"{where} contains '..'")
    if info.size < 0:
        raise TarLimitError(f"{where} has a negative size")
    for label, value in (("uid", info.uid), ("gid", info.gid)):
        if not 0 <= value <= MAX_ID:
            raise TarLimitError(f"{where} has {label} {value}; ids range from 0 to {MAX_ID}")
    if not math.isfinite(info.mtime) or abs(info.mtime) >= 2**63:
        raise TarLimitError(f"{where} has an impossible modification time {info.mtime}")
    for key in info.pax_headers:
        if key.encode("utf-8", "surrogateescape") != key.encode("utf-8", "replace"):
            raise TarLimitError(f"{where} has an extended attribute name that is not UTF-8")


def _round_up(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


class TarStream:
    """A tar byte stream being read: hashed (sha256), counted, its zero tail tracked.

    At the end of the data it supplies the two zero blocks a writer may have
    left out (umoci 0.4.7 does); a read past those means a member claimed more
    bytes than the stream holds, which is refused rather than skipped forever.
    """

    def __init__(self, stream: IO[bytes] | Any) -> None:
        self.stream = stream
        self.hasher = hashlib.sha256()
        self.size = 0
        self.last_data = 0
        self.head = b""
        self._padding: int | None = None
        self._ended = False

    def _take(self, size: int) -> bytes:
        data: bytes = self.stream.read(size)
        if data:
            self.hasher.update(data)
            kept = len(data.rstrip(b"\0"))
            if kept:
                self.last_data = self.size + kept
            if len(self.head) < BLOCK:
                self.head += data[: BLOCK - len(self.head)]
                _check_head(self.head)
            self.size += len(data)
            if not self.last_data and self.size > MAX_TRAILING + 2 * BLOCK:
                raise TarLimitError(f"not a tar archive: its first {self.size} bytes are all zero")
        return data

    def read(self, size: int = -1) -> bytes:
        if self._padding is None:
            data = self._take(size)
            if data or size == 0:
                return data
            self._padding = -self.size % BLOCK + 2 * BLOCK
        if not self._padding:
            if self._ended:
                raise TarLimitError(
                    f"the archive ends at byte {self.size}, inside a member that claims more; "
                    "it is truncated or its size field is wrong"
                )
            self._ended = True
            return b""
        take = self._padding if size < 0 else min(size, self._padding)
        self._padding -= take
        return bytes(take)

    def drain(self) -> None:
        """Read to the end, unchecked (to measure a layer's size and diff_id)."""
        while self._padding is None and self._take(1 << 20):
            pass

    def finish(self, stop: int) -> str:
        """Read the rest (bounded), check the archive ended at ``stop``; the sha256 hex."""
        while self._padding is None:
            if self.size > stop + MAX_TRAILING + 2 * BLOCK:
                raise TarLimitError(
                    f"more than {MAX_TRAILING} bytes follow the end of the archive at byte {stop}"
                )
            if not self._take(1 << 20):
                break
        if stop > _round_up(self.size):
            raise TarLimitError(
                f"the archive ends at byte {self.size}, inside its last member; it is truncated"
            )
        if self.last_data > stop:
            raise TarLimitError(
                f"the header at byte {stop} is damaged or cut short; "
                "the archive is truncated or corrupt"
            )
        return self.hasher.hexdigest()


def _check_head(head: bytes) -> None:
    """The first block must be a tar header (or zeros): a gzip'd non-tar fails at once."""
    if len(head) < BLOCK or not head.strip(b"\0"):
        return
    try:
        tarfile.TarInfo.frombuf(head, "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        raise TarLimitError("not a tar archive: its first 512 bytes are not a tar header") from None
