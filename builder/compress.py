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
from dataclasses import dataclass
from typing import Any

import deflate
import zstandard

from builder.errors import LayerError, SpecError
from builder.model import OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD

CODECS = ("gzip", "zstd", "none")
_LEVELS = {"gzip": (1, 12, 4), "zstd": (1, 19, 3), "none": (0, 0, 0)}
_CHUNK = {"gzip": 1 << 20, "zstd": 4 << 20, "none": 1 << 20}
_MEDIA = {"gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD, "none": OCI_LAYER}


@dataclass(frozen=True, slots=True)
class Codec:
    """A compression choice; part of every layer's cache key."""

    name: str = "gzip"
    level: int = 4

    @classmethod
    def of(cls, name: str, level: int | None = None) -> Codec:
        if name not in CODECS:
            raise SpecError(f"unknown compression '{name}': choose one of {', '.join(CODECS)}")
        low, high, default = _LEVELS[name]
        level = default if level is None else level
        if name != "none" and not low <= level <= high:
            raise SpecError(
                f"compression_level {level} is out of range for {name}: use {low} to {high}"
            )
        return cls(name, level if name != "none" else 0)

    @property
    def media_type(self) -> str:
        return _MEDIA[self.name]

    @property
    def chunk_size(self) -> int:
        return _CHUNK[self.name]

    def compress(self, chunk: bytes | bytearray) -> bytes:
        """One independent gzip member or zstd frame (the GIL is released inside)."""
        if self.name == "gzip":
            return bytes(deflate.gzip_compress(chunk, self.level))
        if self.name == "zstd":
            return zstandard.ZstdCompressor(level=self.level, write_content_size=True).compress(
                chunk
            )
        return bytes(chunk)


class SerialLane:
    """One thread that runs submitted calls in order.

    The bounded queue gives back-pressure (memory stays flat); the first
    error is kept, later calls are skipped, and ``close`` re-raises it.
    """

    def __init__(self, depth: int, name: str) -> None:
        self._queue: queue.Queue[tuple[Callable[..., object], tuple[Any, ...]] | None]
        self._queue = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, call: Callable[..., object], *args: Any) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put((call, args))

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    item[0](*item[1])
                except BaseException as exc:
                    self._error = exc

    def close(self) -> None:
        """Wait for every submitted call; raise the first error, if any."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


class ParallelCompressor:
    """Compresses chunks on a thread pool; a writer thread hands results to ``out`` in order.

    At most about ``2 * threads`` chunks are in flight, so memory stays bounded,
    and the caller's thread only cuts chunks: hashing and writing the
    compressed bytes happen on the writer thread.
    """

    def __init__(self, codec: Codec, out: Callable[[bytes], object], threads: int) -> None:
        self._codec = codec
        self._out = out
        threads = max(1, threads)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bale-z")
        self._writer = SerialLane(2 * threads, "bale-out")

    def submit(self, chunk: bytes | bytearray) -> None:
        """Queue a chunk; it must not be modified afterwards."""
        if self._codec.name == "none":
            self._writer.submit(self._out, chunk)
            return
        self._writer.submit(self._deliver, self._pool.submit(self._codec.compress, chunk))

    def _deliver(self, future: Future[bytes]) -> None:
        try:
            self._out(future.result())
        except (deflate.DeflateError, zstandard.ZstdError) as exc:
            raise LayerError(f"{self._codec.name} compression failed: {exc}") from exc

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
