"""Reading compressed tar streams: by media type (base layers) or by content (imports)."""

from __future__ import annotations

import bz2
import gzip
import lzma
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
        reader = zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True)
        return cast(BinaryIO, reader)
    if codec == "bzip2":
        return cast(BinaryIO, bz2.BZ2File(stream))
    if codec == "xz":
        return cast(BinaryIO, lzma.LZMAFile(stream))
    return stream
