from __future__ import annotations

import gzip
import os

import pytest
import zstandard

from builder.errors import SpecError
from builder.layer.compress import ParallelCompressor, compress
from builder.model import Codec


def _compress(codec: Codec, data: bytes, threads: int) -> bytes:
    out: list[bytes] = []
    released: list[int] = []
    compressor = ParallelCompressor(codec, lambda raw, blob: out.append(bytes(blob)), threads)
    for start in range(0, len(data), codec.chunk_size):
        compressor.submit(
            data[start : start + codec.chunk_size], lambda s=start: released.append(s)
        )
    compressor.close()
    assert released == list(range(0, len(data), codec.chunk_size))
    return b"".join(out)


DATA = (os.urandom(1 << 20) + b"text " * 400_000) * 3


@pytest.mark.parametrize("name", ["gzip", "zstd", "none"])
def test_round_trip_and_thread_count_independence(name: str) -> None:
    codec = Codec.of(name)
    outputs = {threads: _compress(codec, DATA, threads) for threads in (1, 2, 5)}
    assert len(set(outputs.values())) == 1
    blob = outputs[1]
    if name == "gzip":
        assert gzip.decompress(blob) == DATA
    elif name == "zstd":
        reader = zstandard.ZstdDecompressor().stream_reader(blob, read_across_frames=True)
        assert reader.read() == DATA
    else:
        assert blob == DATA


def test_gzip_members_carry_no_timestamp_or_name() -> None:
    blob = compress(Codec.of("gzip"), b"hello")
    assert blob[:4] == b"\x1f\x8b\x08\x00"
    assert blob[4:8] == b"\x00\x00\x00\x00"


@pytest.mark.parametrize(
    ("name", "level", "message"),
    [
        ("brotli", None, "unknown compression"),
        ("gzip", 13, "out of range"),
        ("zstd", 0, "out of range"),
    ],
)
def test_bad_codec_choices(name: str, level: int | None, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        Codec.of(name, level)


def test_media_types() -> None:
    assert Codec.of("gzip").media_type.endswith("tar+gzip")
    assert Codec.of("zstd").media_type.endswith("tar+zstd")
    assert Codec.of("none").media_type.endswith(".tar")
