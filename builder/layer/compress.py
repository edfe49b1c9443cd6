"""Layer compression: gzip, zstd or none, byte-identical on every machine.

The stream is cut into fixed-size chunks of the uncompressed tar; each chunk
becomes one independent gzip member or zstd frame (both formats allow
concatenation, and every OCI runtime reads them). The chunking makes the
output independent of the thread count, and the backends (libdeflate through
the ``deflate`` wheel, libzstd through the ``zstandard`` wheel) are pinned, so
the system's zlib never decides the bytes.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import deflate
import zstandard

from builder.errors import LayerError
from builder.model import Codec

Chunk = bytes | bytearray | memoryview


def compress(codec: Codec, chunk: Chunk) -> Chunk:
    """One independent gzip member or zstd frame (the GIL is released inside)."""
    if codec.name == "gzip":
        return deflate.gzip_compress(chunk, codec.level)
    if codec.name == "zstd":
        return _zstd_compressor(codec.level).compress(chunk)
    return chunk


_PER_THREAD = threading.local()


def _zstd_compressor(level: int) -> zstandard.ZstdCompressor:
    """One reusable compressor per thread and level (a fresh one allocates its tables)."""
    cache: dict[int, zstandard.ZstdCompressor] | None = getattr(_PER_THREAD, "zstd", None)
    if cache is None:
        cache = _PER_THREAD.zstd = {}
    if level not in cache:
        cache[level] = zstandard.ZstdCompressor(level=level, write_content_size=True)
    return cache[level]


class SerialLane:
    """One thread that runs submitted calls in order.

    The bounded queue gives back-pressure (memory stays flat); the first
    error is kept, later calls are skipped (their ``cleanup`` still runs, so
    a producer waiting for a released buffer never hangs), and ``close``
    re-raises it.
    """

    def __init__(self, depth: int, name: str) -> None:
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(
        self, call: Callable[..., object], *args: Any, cleanup: Callable[[], object] | None = None
    ) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put((call, args, cleanup))

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            call, args, cleanup = item
            try:
                if self._error is None:
                    call(*args)
            except BaseException as exc:
                self._error = exc
            finally:
                if cleanup is not None:
                    cleanup()

    def close(self) -> None:
        """Wait for every submitted call; raise the first error, if any."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


_Item = tuple[Callable[..., object], tuple[Any, ...], Callable[[], object] | None]
Output = Callable[[Chunk, Chunk], object]


class ParallelCompressor:
    """Compresses chunks on a thread pool; a writer thread hands them to ``out`` in order.

    ``out(raw, compressed)`` runs on the writer thread, so hashing and writing
    happen beside the caller's thread, which only fills chunks. At most about
    ``2 * threads`` chunks are in flight, so memory stays bounded; after a
    chunk went out (or was dropped after an error) its ``release`` runs, so the
    caller may reuse the buffer.
    """

    def __init__(self, codec: Codec, out: Output, threads: int) -> None:
        self._codec = codec
        self._out = out
        threads = max(1, threads)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bale-z")
        self._writer = SerialLane(2 * threads, "bale-out")

    def submit(self, chunk: Chunk, release: Callable[[], object] | None = None) -> None:
        """Queue a chunk; it must not be modified until ``release`` runs."""
        if self._codec.name == "none":
            self._writer.submit(self._out, chunk, chunk, cleanup=release)
            return
        future = self._pool.submit(compress, self._codec, chunk)
        self._writer.submit(self._deliver, chunk, future, cleanup=release)

    def _deliver(self, chunk: Chunk, future: Future[Chunk]) -> None:
        try:
            compressed = future.result()
        except (deflate.DeflateError, zstandard.ZstdError) as exc:
            raise LayerError(f"{self._codec.name} compression failed: {exc}") from exc
        self._out(chunk, compressed)

    def close(self) -> None:
        """Wait until every chunk went out."""
        try:
            self._writer.close()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def abort(self) -> None:
        """Stop after an error elsewhere: drop pending work, keep the original error."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        with contextlib.suppress(BaseException):
            self._writer.close()
