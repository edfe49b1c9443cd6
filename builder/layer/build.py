"""Entries → a layer blob in one streaming pass.

The tar is cut into chunks compressed in parallel; in order, each chunk is
hashed (diff_id) and its compressed bytes are hashed (digest) and written to
a temporary file, so memory stays flat whatever the layer size.
"""

from __future__ import annotations

import errno
import hashlib
import os
import queue
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from builder.atomic import temp_file
from builder.errors import LayerError
from builder.layer.compress import Chunk, ParallelCompressor
from builder.layer.contentkey import file_hasher
from builder.layer.entries import Content, Entry, HostFile
from builder.layer.filebody import Body, FileBody, Reading
from builder.layer.tarwriter import read_exactly, write_tar
from builder.model import Codec, Descriptor, Digest

Progress = Callable[[int], object]
# The history step of every layer bale builds: how a reader tells bale's layers from a base's.
CREATED_BY_PREFIX = "bale: layer "
# A context file is read as the walk saw it: a symlink swapped in since is refused.
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
# Where a layer of a build came from (``--json``'s ``source``).
BUILT = "built"
LOCAL_CACHE = "local-cache"
REGISTRY_CACHE = "registry-cache"


@dataclass(frozen=True, slots=True)
class Layer:
    """A finished layer blob on disk; ``descriptor`` covers the stored bytes."""

    descriptor: Descriptor
    diff_id: Digest
    path: Path
    created_by: str = ""
    source: str = BUILT
    content_key: str = ""

    @property
    def verified_file(self) -> Path:
        """Built or checked by bale in this run: its bytes match ``descriptor``."""
        return self.path

    def open(self) -> BinaryIO:
        return open(self.path, "rb")


class _Chunker:
    """Cuts the tar stream into codec-sized chunks, reading file content straight into them.

    Each full chunk is shipped (hashed and compressed on other threads); the
    buffers come from a fixed pool and return to it once their chunk went
    out, so memory is bounded and no fresh pages are touched per chunk.
    """

    def __init__(
        self,
        size: int,
        count: int,
        ship: Callable[[Chunk, bytearray], None],
        hashes: dict[str, str] | None = None,
        reading: Reading | None = None,
    ) -> None:
        self.size = size
        self.ship = ship
        self.hashes = hashes  # when given: path → content-key hash of each context file as read
        self.hasher: Any = None
        self.reading = reading  # when given: what ``bodies`` gets of each file, by entry path
        self.bodies: dict[str, Body] = {}
        self.body: FileBody | None = None
        self.free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        for _ in range(count):
            self.free.put(bytearray(size))
        self.pos = 0
        self.buf = self.free.get()
        self.view = memoryview(self.buf)

    def release(self, buf: bytearray) -> None:
        self.free.put(buf)

    def write(self, data: bytes | memoryview) -> None:
        pos, n = self.pos, len(data)
        if pos + n < self.size:
            self.view[pos : pos + n] = data
            self.pos = pos + n
            return
        source = memoryview(data)
        while source:
            take = min(self.size - self.pos, len(source))
            self.view[self.pos : self.pos + take] = source[:take]
            source = source[take:]
            self._advance(take)

    def copy(self, entry: Entry, content: Content) -> bool:
        """Move the content's bytes into the chunks; False if its size is not ``content.size``.

        With a ``reading``, the bytes are also taken as it asks, on the way.
        """
        if self.reading is None:
            return self._copy(content)
        self.body = FileBody(self.reading, entry.path, content.size)
        try:
            return self._copy(content)
        finally:
            self.bodies[entry.path] = self.body.result()
            self.body = None

    def _copy(self, content: Content) -> bool:
        if isinstance(content, HostFile):
            return self._copy_host(content)
        with content.open() as stream:
            readinto = getattr(stream, "readinto", None)
            if readinto is None:
                return read_exactly(stream, content.size, self._write_body)
            return self._fill(readinto, content.size)

    def _write_body(self, data: bytes | memoryview) -> None:
        if self.body is not None:
            self.body.feed(data)
        self.write(data)

    def _copy_host(self, content: HostFile) -> bool:
        """A context file: no file object, one ``readv`` into the chunk; never a symlink."""
        try:
            fd = os.open(content.path, _READ_FLAGS)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            raise LayerError(
                f"{content.path} became a symlink after bale read the build context; "
                "do not modify the build context during a build"
            ) from exc
        if self.hashes is not None:
            self.hasher = file_hasher()
        try:
            return self._fill(lambda view: os.readv(fd, (view,)), content.size)
        finally:
            os.close(fd)
            if self.hashes is not None:
                self.hashes[content.path] = self.hasher.hexdigest()
                self.hasher = None

    def _fill(self, readinto: Callable[[memoryview], int | None], size: int) -> bool:
        """Read exactly ``size`` bytes, then make sure the source has no more.

        When the rest fits with a byte to spare, the read asks for that extra
        byte: getting it means the file grew, falling short proves its end
        with no second call (most files fit: one read each).
        """
        while True:
            room = self.size - self.pos
            ask = size + 1 if size < room else room
            got = readinto(self.view[self.pos : self.pos + ask]) or 0
            if got > size:
                return False
            if self.hasher is not None:
                self.hasher.update(self.view[self.pos : self.pos + got])
            if self.body is not None:
                self.body.feed(self.view[self.pos : self.pos + got])
            size -= got
            self._advance(got)
            if got == 0 or (got < ask and size == 0):
                return size == 0
            if size == 0:
                return not readinto(memoryview(bytearray(1)))

    def _advance(self, n: int) -> None:
        self.pos += n
        if self.pos == self.size:
            self.flush()

    def flush(self) -> None:
        if not self.pos:
            return
        buf, n = self.buf, self.pos
        self.ship(buf if n == self.size else self.view[:n], buf)
        self.pos = 0
        self.buf = self.free.get()
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
    hashes: dict[str, str] | None = None,
    reading: Reading | None = None,
    bodies: dict[str, Body] | None = None,
) -> Layer:
    """Write the layer blob into ``directory`` (a temp file renamed to its digest).

    Threads: the caller's thread walks entries and fills chunks; a pool
    compresses them; a writer lane hashes each chunk (diff_id), hashes its
    compressed bytes (digest) and writes them, in order. ``hashes``, when
    given, receives the content-key hash (BLAKE3) of every context file's
    bytes exactly as they went into the tar. ``bodies``, when given with a
    ``reading``, receives what that reading takes of each regular file (by
    entry path), from the same bytes (the SBOM's hashes, without a second read).
    """
    directory.mkdir(parents=True, exist_ok=True)
    digest_hasher = hashlib.sha256()
    diff_hasher = hashlib.sha256()
    fd, tmp = temp_file(directory, "layer")
    sizes = [0, 0]
    try:
        with os.fdopen(fd, "wb", buffering=0) as out:

            def emit(raw: Chunk, blob: Chunk) -> None:
                diff_hasher.update(raw)
                digest_hasher.update(blob)
                out.write(blob)
                sizes[1] += len(blob)

            # More compression threads than cores gains nothing, and each holds
            # chunk buffers: -j above the core count (it also sets uploads) is capped here.
            cores = os.cpu_count() or 1
            workers = min(threads or cores, cores)
            compressor = ParallelCompressor(codec, emit, workers)

            def ship(chunk: Chunk, buf: bytearray) -> None:
                compressor.submit(chunk, lambda: chunker.release(buf))
                sizes[0] += len(chunk)
                if progress is not None:
                    progress(len(chunk))

            taking = reading if bodies is not None else None
            chunker = _Chunker(codec.chunk_size, 2 * workers + 2, ship, hashes, taking)
            try:
                write_tar(entries, mtime, chunker.write, chunker.copy)
                chunker.flush()
            except BaseException:
                compressor.abort()
                raise
            compressor.close()
            digest = Digest("sha256", digest_hasher.hexdigest())
            final = directory / digest.encoded
            os.replace(tmp, final)
            if bodies is not None:
                bodies.update(chunker.bodies)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Layer(
        descriptor=Descriptor(codec.media_type, digest, sizes[1]),
        diff_id=Digest("sha256", diff_hasher.hexdigest()),
        path=final,
        created_by=created_by,
    )
