"""Skipping an ELF file's bytes before its data segment: the Go record is still found,
the skipped bytes are never read, and a base layer's check still sees every byte."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest

from builder.layer.excerpt import HEAD
from builder.layer.filebody import ACCOUNTS, FileBody, Reading, feed_bodies
from builder.layer.lower import tar_readings
from builder.layer.tarcheck import TarStream
from builder.supply.gobuild import PICKER, parse_build_info
from tests.unit.test_gobuild import EXPECTED, elf, record

FAR = (3 << 20) + 12345  # the data segment past the first MiB, not block-aligned
SEGMENT = 1 << 16  # the data segment's size in ``elf``
GO_ONLY = Reading(keep=lambda _: False, picker=PICKER)


class _Spy:
    """A file read through ``read``/``skip``, counting the bytes read."""

    def __init__(self, data: bytes) -> None:
        self.stream = io.BytesIO(data)
        self.read_bytes = 0

    def read(self, size: int) -> bytes:
        chunk = self.stream.read(size)
        self.read_bytes += len(chunk)
        return chunk

    def skip(self, size: int) -> int:
        start = self.stream.tell()
        end = min(start + size, len(self.stream.getbuffer()))
        self.stream.seek(end)
        return end - start


@pytest.mark.parametrize("data_at", [8192, FAR])
def test_the_bytes_before_the_data_segment_are_skipped_unread(data_at: int) -> None:
    data = elf(record(), data_at=data_at)
    spy = _Spy(data)
    body = FileBody(GO_ONLY, "usr/bin/app", len(data))
    feed_bodies(spy.read, [body], spy.skip)
    found = body.result()[0]
    assert found is not None and parse_build_info(found) == EXPECTED
    assert spy.read_bytes <= HEAD + SEGMENT


def test_without_skip_every_byte_up_to_the_record_is_read() -> None:
    data = elf(record(), data_at=FAR)
    spy = _Spy(data)
    body = FileBody(GO_ONLY, "usr/bin/app", len(data))
    feed_bodies(spy.read, [body])
    found = body.result()[0]
    assert found is not None and parse_build_info(found) == EXPECTED
    assert spy.read_bytes >= FAR


def test_a_reading_that_hashes_gets_every_byte_beside_a_skipping_one() -> None:
    data = elf(record(), data_at=FAR)
    spy = _Spy(data)
    hashing = FileBody(Reading(hash_files=True, picker=PICKER), "usr/bin/app", len(data))
    picking = FileBody(GO_ONLY, "usr/bin/app", len(data))
    feed_bodies(spy.read, [hashing, picking], spy.skip)
    assert hashing.result()[1] == hashlib.sha256(data).hexdigest()
    found = picking.result()[0]
    assert found is not None and parse_build_info(found) == EXPECTED


def _tar(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_a_base_layer_yields_the_far_record_and_every_member_after_it() -> None:
    """The members after a skipped one are read from the right place, and the layer's
    diff_id still covers every byte (the check reads what the SBOM skips)."""
    far, near = elf(record(), data_at=FAR), elf(record(), data_at=8192)
    passwd = b"root:x:0:0:root:/root:/bin/sh\n"
    blob = _tar([("usr/bin/far", far), ("etc/passwd", passwd), ("usr/bin/near", near)])
    stream = TarStream(io.BytesIO(blob))
    found = dict(tar_readings(stream, "test", (ACCOUNTS, GO_ONLY)))
    assert stream.hasher.hexdigest() == hashlib.sha256(blob).hexdigest()
    assert found["etc/passwd"][0].data == passwd
    for name in ("usr/bin/far", "usr/bin/near"):
        excerpt = found[name][1].data
        assert excerpt is not None and parse_build_info(excerpt) == EXPECTED


def _sparse(
    name: str, data: bytes, regions: list[tuple[int, int]]
) -> tuple[tarfile.TarInfo, bytes]:
    """A PAX 1.0 sparse member holding ``regions`` of ``data`` (the rest a hole of zeros)."""
    info = tarfile.TarInfo(f"{name}.sparse")
    info.pax_headers = {
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": name,
        "GNU.sparse.realsize": str(len(data)),
    }
    table = f"{len(regions)}\n" + "".join(f"{at}\n{size}\n" for at, size in regions)
    stored = table.encode().ljust(512, b"\0") + b"".join(data[a : a + n] for a, n in regions)
    info.size = len(stored)
    return info, stored


def test_a_sparse_member_is_read_through_its_map() -> None:
    """tarfile maps a sparse member's holes (it cannot skip one on a stream): read, not skipped."""
    far = elf(record(), data_at=FAR)
    assert not far[4096:FAR].strip(b"\0")  # the bytes between head and data segment: a hole
    info, stored = _sparse("usr/bin/far", far, [(0, 4096), (FAR, len(far) - FAR)])
    passwd = b"root:x:0:0:root:/root:/bin/sh\n"
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(stored))
        plain = tarfile.TarInfo("etc/passwd")
        plain.size = len(passwd)
        tar.addfile(plain, io.BytesIO(passwd))
    found = dict(tar_readings(TarStream(io.BytesIO(out.getvalue())), "test", (ACCOUNTS, GO_ONLY)))
    excerpt = found["usr/bin/far"][1].data
    assert excerpt is not None and parse_build_info(excerpt) == EXPECTED
    assert found["etc/passwd"][0].data == passwd
