"""Entries → a layer blob in one streaming pass.

The tar bytes are hashed (diff_id) and compressed chunk by chunk; the
compressed bytes are hashed (digest) and written to a temporary file as they
come back, so memory stays flat whatever the layer size.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from builder.compress import Codec, ParallelCompressor, SerialLane
from builder.entries import Entry
from builder.model import Descriptor, Digest
from builder.tarwriter import read_into, write_tar

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
    """Cuts the tar stream into codec-sized chunks, reading file content straight into them.

    Each full chunk goes to the diff_id lane (sha256 releases the GIL) and to
    the compressor; a fresh buffer is allocated for the next, so a shipped
    chunk is never modified.
    """

    def __init__(self, size: int, ship: Callable[[bytearray], None]) -> None:
        self.size = size
        self.ship = ship
        self.pos = 0
        self.buf = bytearray(size)
        self.view = memoryview(self.buf)

    def write(self, data: bytes) -> None:
        source = memoryview(data)
        while source:
            take = min(self.size - self.pos, len(source))
            self.view[self.pos : self.pos + take] = source[:take]
            source = source[take:]
            self._advance(take)

    def copy(self, stream: BinaryIO, size: int) -> int:
        readinto = getattr(stream, "readinto", None)
        if readinto is None:
            return read_into(self.write)(stream, size)
        done = 0
        while done < size:
            want = min(self.size - self.pos, size - done)
            got = readinto(self.view[self.pos : self.pos + want])
            if not got:
                break
            done += got
            self._advance(got)
        return done

    def _advance(self, n: int) -> None:
        self.pos += n
        if self.pos == self.size:
            self.flush()

    def flush(self) -> None:
        if not self.pos:
            return
        self.view.release()
        chunk = self.buf if self.pos == self.size else self.buf[: self.pos]
        self.ship(chunk)
        self.pos = 0
        self.buf = bytearray(self.size)
        self.view = memoryview(self.buf)


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
    """Write the layer blob into ``directory`` (a temp file renamed to its digest).

    Threads: the caller's thread walks entries and fills chunks; one lane
    hashes the tar (diff_id); a pool compresses chunks; a writer lane hashes
    (digest) and writes the compressed bytes in order.
    """
    directory.mkdir(parents=True, exist_ok=True)
    digest_hasher = hashlib.sha256()
    diff_hasher = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=".layer-", dir=directory)
    tmp = Path(tmp_name)
    sizes = [0, 0]
    try:
        with os.fdopen(fd, "wb", buffering=0) as out:

            def emit(blob: bytes) -> None:
                digest_hasher.update(blob)
                out.write(blob)
                sizes[1] += len(blob)

            workers = threads or (os.cpu_count() or 1)
            compressor = ParallelCompressor(codec, emit, workers)
            differ = SerialLane(2 * workers, "bale-diff")

            def ship(chunk: bytearray) -> None:
                differ.submit(diff_hasher.update, chunk)
                compressor.submit(chunk)
                sizes[0] += len(chunk)
                if progress is not None:
                    progress(len(chunk))

            chunker = _Chunker(codec.chunk_size, ship)
            try:
                write_tar(entries, mtime, chunker.write, chunker.copy)
                chunker.flush()
            except BaseException:
                compressor.abort()
                with contextlib.suppress(BaseException):
                    differ.close()
                raise
            compressor.close()
            differ.close()
        digest = Digest("sha256", digest_hasher.hexdigest())
        final = directory / digest.encoded
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Layer(
        descriptor=Descriptor(codec.media_type, digest, sizes[1]),
        diff_id=Digest("sha256", diff_hasher.hexdigest()),
        path=final,
        created_by=created_by,
    )
