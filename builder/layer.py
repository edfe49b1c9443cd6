"""Entries → a layer blob in one streaming pass.

The tar bytes are hashed (diff_id) and compressed chunk by chunk; the
compressed bytes are hashed (digest) and written to a temporary file as they
come back, so memory stays flat whatever the layer size.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from builder.compress import Codec, ParallelCompressor
from builder.entries import Entry
from builder.model import Descriptor, Digest
from builder.tarwriter import write_tar

Progress = Callable[[int], object]


@dataclass(frozen=True, slots=True)
class Layer:
    """A finished layer blob on disk; ``descriptor`` covers the stored bytes."""

    descriptor: Descriptor
    diff_id: Digest
    path: Path
    created_by: str = ""

    def open(self) -> BinaryIO:
        return open(self.path, "rb")


class _Chunker:
    """Collects tar bytes into codec-sized chunks, hashing them for the diff_id."""

    def __init__(self, codec: Codec, compressor: ParallelCompressor) -> None:
        self.size = codec.chunk_size
        self.buffer = bytearray()
        self.compressor = compressor
        self.hasher = hashlib.sha256()
        self.total = 0

    def write(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) >= self.size:
            self.flush(all_but_tail=True)

    def flush(self, all_but_tail: bool = False) -> None:
        view = memoryview(self.buffer)
        start = 0
        while len(self.buffer) - start >= self.size or (not all_but_tail and start < len(view)):
            chunk = bytes(view[start : start + self.size])
            start += len(chunk)
            self.hasher.update(chunk)
            self.total += len(chunk)
            self.compressor.submit(chunk)
        view.release()
        del self.buffer[:start]


def build_layer(
    entries: Sequence[Entry],
    codec: Codec,
    mtime: int,
    directory: Path,
    *,
    threads: int = 0,
    created_by: str = "",
    progress: Progress | None = None,
) -> Layer:
    """Write the layer blob into ``directory`` (a temp file renamed to its digest)."""
    directory.mkdir(parents=True, exist_ok=True)
    digest_hasher = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=".layer-", dir=directory)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            stored = 0

            def emit(blob: bytes) -> None:
                nonlocal stored
                digest_hasher.update(blob)
                out.write(blob)
                stored += len(blob)

            compressor = ParallelCompressor(codec, emit, threads or (os.cpu_count() or 1))
            chunker = _Chunker(codec, compressor)
            try:
                write = chunker.write if progress is None else _counting(chunker.write, progress)
                write_tar(entries, mtime, write)
                chunker.flush()
            finally:
                compressor.close()
        digest = Digest("sha256", digest_hasher.hexdigest())
        final = directory / digest.encoded
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Layer(
        descriptor=Descriptor(codec.media_type, digest, stored),
        diff_id=Digest("sha256", chunker.hasher.hexdigest()),
        path=final,
        created_by=created_by,
    )


def _counting(write: Callable[[bytes], None], progress: Progress) -> Callable[[bytes], None]:
    def counted(data: bytes) -> None:
        write(data)
        progress(len(data))

    return counted
