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
# Compressed bytes fed to zstd at a time: at most ~32,000:1 expansion, so at most 64 MiB out.
_ZSTD_FEED = 2048


class _Zstd:
    """zstd frames one after another, refusing a stream that stops inside a frame.

    (zstandard's own stream reader returns a silently shorter stream then.)
    """

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.frame = zstandard.ZstdDecompressor().decompressobj()
        self.pending = b""
        self.offset = 0
        self.started = False

    def read(self, size: int = -1) -> bytes:
        chunks = [self.pending[self.offset :]]
        have = len(chunks[0])
        while size < 0 or have < size:
            data = self.stream.read(_ZSTD_FEED)
            if not data:
                if self.started and not self.frame.eof:
                    raise EOFError("the zstd stream ends inside a frame; it is truncated")
                break
            out = self._feed(data)
            chunks.append(out)
            have += len(out)
        buffer = b"".join(chunks)
        end = len(buffer) if size < 0 else min(size, len(buffer))
        self.pending, self.offset = buffer, end
        return buffer[:end]

    def _feed(self, data: bytes) -> bytes:
        out = []
        while data:
            if self.frame.eof:
                self.frame = zstandard.ZstdDecompressor().decompressobj()
            self.started = True
            out.append(self.frame.decompress(data))
            data = self.frame.unused_data if self.frame.eof else b""
        return b"".join(out)

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
