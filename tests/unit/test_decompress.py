"""The zstd reader: zstandard's speed, with a cut or trailing garbage refused."""

from __future__ import annotations

import io
import os

import pytest
import zstandard

from builder.layer.decompress import DECODE_ERRORS, decompressed

DATA = os.urandom(70_000) + bytes(300_000) + b"layer " * 20_000
SKIPPABLE = b"\x50\x2a\x4d\x18" + (5).to_bytes(4, "little") + b"hello"
OPTIONS = [
    {},
    {"write_checksum": True},
    {"write_content_size": False},
    {"write_dict_id": False, "level": 19},
]


def _read(data: bytes, size: int = 10240) -> bytes:
    reader = decompressed(io.BytesIO(data), "zstd")
    return b"".join(iter(lambda: reader.read(size), b""))


def _streamed(options: dict[str, object]) -> bytes:
    """As the zstd tool writes a pipe: no content size in the frame header."""
    out = io.BytesIO()
    with zstandard.ZstdCompressor(**options).stream_writer(out, closefd=False) as writer:  # type: ignore[arg-type]
        writer.write(DATA)
    return out.getvalue()


def _frames(options: dict[str, object]) -> bytes:
    compressor = zstandard.ZstdCompressor(**options)  # type: ignore[arg-type]
    return b"".join(
        compressor.compress(DATA[i : i + 100_000]) for i in range(0, len(DATA), 100_000)
    )


@pytest.mark.parametrize("options", OPTIONS)
def test_whole_streams_read_back(options: dict[str, object]) -> None:
    assert _read(_frames(options)) == DATA
    assert _read(_streamed(options), 1 << 20) == DATA
    assert _read(SKIPPABLE + _frames(options) + SKIPPABLE) == DATA
    assert decompressed(io.BytesIO(_frames(options)), "zstd").read() == DATA


@pytest.mark.parametrize("options", OPTIONS)
def test_a_stream_cut_anywhere_inside_a_frame_is_refused(options: dict[str, object]) -> None:
    """zstandard's own reader returns a shorter stream here, without an error."""
    whole = _streamed(options)
    for cut in sorted({*range(1, 40), *range(40, len(whole), 173), len(whole) - 1}):
        with pytest.raises(DECODE_ERRORS):
            _read(whole[:cut])


@pytest.mark.parametrize("tail", [b"junk", b"\x28\xb5\x2f", bytes(10), SKIPPABLE[:6]])
def test_trailing_bytes_that_are_no_frame_are_refused(tail: bytes) -> None:
    with pytest.raises(DECODE_ERRORS):
        _read(_frames({}) + tail)


def test_an_empty_stream_is_empty() -> None:
    assert _read(b"") == b""
