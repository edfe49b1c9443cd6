"""Layer compression: gzip, zstd or none, byte-identical on every machine.

The stream is cut into fixed-size chunks of the uncompressed tar; each chunk
becomes one independent gzip member or zstd frame (both formats allow
concatenation, and every OCI runtime reads them). The chunking makes the
output independent of the thread count, and the backends (libdeflate through
the ``deflate`` wheel, libzstd through the ``zstandard`` wheel) are pinned, so
the system's zlib never decides the bytes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import deflate
import zstandard

from builder.errors import LayerError, SpecError
from builder.model import OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD

CODECS = ("gzip", "zstd", "none")
_LEVELS = {"gzip": (1, 12, 6), "zstd": (1, 19, 3), "none": (0, 0, 0)}
_CHUNK = {"gzip": 1 << 20, "zstd": 4 << 20, "none": 1 << 20}
_MEDIA = {"gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD, "none": OCI_LAYER}


@dataclass(frozen=True, slots=True)
class Codec:
    """A compression choice; part of every layer's cache key."""

    name: str = "gzip"
    level: int = 6

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

    def compress(self, chunk: bytes) -> bytes:
        """One independent gzip member or zstd frame (the GIL is released inside)."""
        if self.name == "gzip":
            return bytes(deflate.gzip_compress(chunk, self.level))
        if self.name == "zstd":
            return zstandard.ZstdCompressor(level=self.level, write_content_size=True).compress(
                chunk
            )
        return chunk


class ParallelCompressor:
    """Compresses chunks on a thread pool and hands results on in order.

    At most ``2 * threads`` chunks are in flight, so memory stays bounded.
    """

    def __init__(self, codec: Codec, out: Callable[[bytes], object], threads: int) -> None:
        self._codec = codec
        self._out = out
        self._limit = max(1, threads) * 2
        self._pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="bale-z")
        self._pending: deque[Future[bytes]] = deque()

    def submit(self, chunk: bytes) -> None:
        if self._codec.name == "none":
            self._out(chunk)
            return
        self._pending.append(self._pool.submit(self._codec.compress, chunk))
        while len(self._pending) >= self._limit:
            self._drain_one()

    def _drain_one(self) -> None:
        try:
            self._out(self._pending.popleft().result())
        except (deflate.DeflateError, zstandard.ZstdError) as exc:
            raise LayerError(f"{self._codec.name} compression failed: {exc}") from exc

    def close(self) -> None:
        try:
            while self._pending:
                self._drain_one()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
