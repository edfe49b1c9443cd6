"""A few bytes of a file, picked as its chunks stream past.

Some records live inside files too big to keep whole (a Go binary's build
info sits in its data segment). A ``Picker`` reads a file's first ``HEAD``
bytes and names the one byte range it wants, then keeps what matters of that
range; ``Excerpt`` feeds it from any stream of chunks (a tar member, a file
being hashed) and says when no more bytes are needed, so a reader can stop.
"""

from __future__ import annotations

from typing import Protocol

HEAD = 4096


class Picker(Protocol):
    def span(self, head: bytes, size: int) -> tuple[int, int] | None:
        """The (offset, length) wanted of a file starting with ``head``; None: nothing."""

    def pick(self, window: bytes) -> bytes | None:
        """What to keep of the wanted range (shorter if the file ended early)."""


class Excerpt:
    """One file's excerpt: ``feed`` its chunks in order, then ``result``."""

    def __init__(self, picker: Picker, size: int) -> None:
        self._picker, self._size = picker, size
        self._seen = bytearray()  # the head, then the bytes of the wanted range
        self._offset = 0  # bytes of the file fed so far
        self._span: tuple[int, int] | None = None
        self.wanted = size > 0

    def feed(self, chunk: bytes | memoryview) -> None:
        if not self.wanted:
            return
        if self._span is None:
            if self._seen or len(chunk) < min(HEAD, self._size):
                self._seen += chunk  # the head is in pieces: gather it (the range may start in it)
                if len(self._seen) < min(HEAD, self._size):
                    return
                chunk = bytes(self._seen)
                self._seen = bytearray()
            self._span = self._picker.span(bytes(chunk[:HEAD]), self._size)
            if self._span is None:
                self.wanted = False
                return
        start = self._offset
        self._offset += len(chunk)
        offset, length = self._span
        low, high = max(offset - start, 0), min(offset + length - start, len(chunk))
        if low < high:
            self._seen += chunk[low:high]
        self.wanted = self._offset < offset + length

    @property
    def gap(self) -> int:
        """How many of the next bytes lie before the wanted range (0 until the head is seen)."""
        if self._span is None or not self.wanted:
            return 0
        return max(self._span[0] - self._offset, 0)

    @property
    def needed(self) -> int:
        """How many of the next bytes it could use: to the end of the range, else the head."""
        if not self.wanted:
            return 0
        if self._span is None:
            return HEAD - len(self._seen)
        return self._span[0] + self._span[1] - self._offset

    def skip(self, count: int) -> None:
        """The next ``count`` bytes passed unseen; at most ``gap`` of them."""
        assert 0 <= count <= self.gap
        self._offset += count

    def result(self) -> bytes | None:
        if self._span is None:
            return None
        return self._picker.pick(bytes(self._seen))
