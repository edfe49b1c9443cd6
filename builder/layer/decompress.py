"""Reading compressed tar streams: by media type (base layers) or by content (imports)."""

from __future__ import annotations

import bz2
import gzip
import lzma
import zlib
from typing import BinaryIO, cast

import zstandard

from builder.errors import SourceError
from builder.layer.libmagic import describe

# python-magic MIME names → the codec names bale uses.
_BY_MIME = {
    "application/gzip": "gzip",
    "application/x-gzip": "gzip",
    "application/zstd": "zstd",
    "application/x-zstd": "zstd",
    "application/x-bzip2": "bzip2",
    "application/x-xz": "xz",
    "application/x-tar": "none",
}

# What a damaged or truncated compressed stream raises, whatever its codec.
DECODE_ERRORS = (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError, zstandard.ZstdError)
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_RLE_BLOCK = 1


class _ZstdFrames:
    """Follows zstd frame and block headers (RFC 8878) through the compressed bytes.

    zstandard's stream reader decompresses at full speed but ends a stream cut
    inside a frame silently; walking the headers (a few operations per block
    of up to 128 KiB) tells whether the bytes ended exactly at a frame's end.
    """

    def __init__(self) -> None:
        self.head = b""
        self.skip = 0
        self.in_frame = False
        self.checksum = 0

    def feed(self, data: bytes) -> None:
        view, pos = memoryview(data), 0
        while pos < len(view):
            if self.skip:
                step = min(self.skip, len(view) - pos)
                self.skip -= step
                pos += step
                continue
            take = bytes(view[pos : pos + self._need() - len(self.head)])
            self.head += take
            pos += len(take)
            if len(self.head) == self._need():
                self._header()

    def complete(self) -> bool:
        """True when the bytes so far end at the end of a frame (or hold none)."""
        return not (self.in_frame or self.head or self.skip)

    def _need(self) -> int:
        """How many bytes the header being read has, as far as its first bytes tell."""
        head = self.head
        if self.in_frame:
            return 3
        if len(head) < 4:
            return 4
        if head[:4] == _ZSTD_MAGIC:
            if len(head) < 5:
                return 5
            single = head[4] >> 5 & 1
            window = 1 - single
            dictionary = (0, 1, 2, 4)[head[4] & 3]
            content_size = (single, 2, 4, 8)[head[4] >> 6]
            return 5 + window + dictionary + content_size
        return 8 if _skippable(head) else 4

    def _header(self) -> None:
        head, self.head = self.head, b""
        if self.in_frame:
            value = int.from_bytes(head, "little")
            self.skip = 1 if value >> 1 & 3 == _RLE_BLOCK else value >> 3
            if value & 1:
                self.skip += self.checksum
                self.in_frame = False
        elif head[:4] == _ZSTD_MAGIC:
            self.checksum = 4 if head[4] & 4 else 0
            self.in_frame = True
        elif _skippable(head):
            self.skip = int.from_bytes(head[4:], "little")
        else:
            raise zstandard.ZstdError("not a zstd frame where one should start")


def _skippable(head: bytes) -> bool:
    return head[0] & 0xF0 == 0x50 and head[1:4] == b"\x2a\x4d\x18"


class _Followed:
    """The compressed source, each byte read passed to the frame walker."""

    def __init__(self, stream: BinaryIO, frames: _ZstdFrames) -> None:
        self.stream = stream
        self.frames = frames

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.frames.feed(data)
        return data


class _Zstd:
    """zstd frames one after another, refusing a stream that stops inside a frame."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.frames = _ZstdFrames()
        source = _Followed(stream, self.frames)
        self.reader = zstandard.ZstdDecompressor().stream_reader(
            cast(BinaryIO, source), read_across_frames=True
        )

    def read(self, size: int = -1) -> bytes:
        data: bytes = self.reader.read(size)
        if not data and size != 0 and not self.frames.complete():
            raise EOFError("the zstd stream ends inside a frame; it is truncated")
        return data

    def close(self) -> None:
        self.stream.close()

    def __enter__(self) -> _Zstd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sniff(head: bytes) -> str:
    """The compression of a stream from its first bytes: gzip, zstd, bzip2, xz or none."""
    if not head:
        return "none"
    mime = describe(head, mime=True)
    if mime in _BY_MIME:
        return _BY_MIME[mime]
    # A tar whose first member is small may not be recognised; its header says ustar.
    if head[257:262] == b"ustar":
        return "none"
    raise SourceError(f"not a tar archive or a compressed one (content looks like {mime})")


def decompressed(stream: BinaryIO, codec: str) -> BinaryIO:
    """A readable stream of the uncompressed bytes of ``stream``."""
    if codec == "gzip":
        return cast(BinaryIO, gzip.GzipFile(fileobj=stream, mode="rb"))
    if codec == "zstd":
        return cast(BinaryIO, _Zstd(stream))
    if codec == "bzip2":
        return cast(BinaryIO, bz2.BZ2File(stream))
    if codec == "xz":
        return cast(BinaryIO, lzma.LZMAFile(stream))
    return stream
