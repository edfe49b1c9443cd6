"""The fast ustar header must be byte-identical to tarfile's PAX writer."""

from __future__ import annotations

import random

import pytest

from builder.layer.entries import Entry, InlineContent, Kind
from builder.layer.tarwriter import _pax_header, _ustar_header, header

CASES = [
    Entry("a", Kind.DIR, 0o755),
    Entry("a/b", Kind.FILE, 0o644, 1000, 1001, InlineContent(b"x" * 1000)),
    Entry("a/empty", Kind.FILE, 0o4755, content=InlineContent(b"")),
    Entry("a/nocontent", Kind.FILE, 0o600),
    Entry("l", Kind.SYMLINK, 0o777, linkname="../x/y"),
    Entry("h", Kind.HARDLINK, 0o644, linkname="a/b"),
    Entry("m", Kind.FILE, 0o17777, 8**7 - 1, 8**7 - 1),
    Entry("d" * 99, Kind.DIR, 0o700),
    Entry("n" * 100, Kind.FILE, 0o644),
    Entry("s", Kind.SYMLINK, 0o777, linkname="t" * 100),
]
FALLBACK = [
    Entry("d" * 100, Kind.DIR, 0o755),
    Entry("n" * 101, Kind.FILE, 0o644),
    Entry("caf\u00e9", Kind.FILE, 0o644),
    Entry("s", Kind.SYMLINK, 0o777, linkname="t" * 101),
    Entry("s", Kind.SYMLINK, 0o777, linkname="\u00e9"),
    Entry("big", Kind.FILE, 0o644, 8**7, 0),
    Entry("big", Kind.FILE, 0o644, 0, 8**7),
    Entry("x", Kind.FILE, 0o644, xattrs=(("user.a", b"1"),)),
]


@pytest.mark.parametrize("entry", CASES, ids=lambda e: e.path[:12])
@pytest.mark.parametrize("mtime", [0, 1_700_000_000, 8**11 - 1])
def test_fast_header_matches_tarfile(entry: Entry, mtime: int) -> None:
    fast = _ustar_header(entry, mtime)
    assert fast is not None
    assert fast == _pax_header(entry, mtime)
    assert len(fast) == 512


@pytest.mark.parametrize("entry", FALLBACK, ids=lambda e: e.path[:12])
def test_entries_needing_pax_records_fall_back(entry: Entry) -> None:
    assert _ustar_header(entry, 0) is None
    assert header(entry, 0) == _pax_header(entry, 0)
    assert _ustar_header(Entry("a", Kind.FILE, 0o644), 8**11) is None


def test_random_entries_match_tarfile() -> None:
    rng = random.Random(7)
    alphabet = "abcXYZ019._-/ "
    for _ in range(500):
        kind = rng.choice(list(Kind))
        path = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 110))).strip("/") or "p"
        link = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 105)))
        data = InlineContent(bytes(rng.randint(0, 3000)))
        entry = Entry(
            path,
            kind,
            rng.randint(0, 0o7777),
            rng.randint(0, 70000),
            rng.randint(0, 70000),
            data if kind is Kind.FILE else None,
            link if kind in (Kind.SYMLINK, Kind.HARDLINK) else "",
        )
        mtime = rng.randint(0, 2**34)
        assert header(entry, mtime) == _pax_header(entry, mtime), entry


class _Huge:
    """A 9 GiB content: only its size is read when encoding a header."""

    size = 9 << 30

    def open(self) -> object:
        raise AssertionError("the header needs no content")


def test_files_over_8_gib_get_a_pax_size_record() -> None:
    import io
    import tarfile

    entry = Entry("huge.bin", Kind.FILE, 0o644, content=_Huge())  # type: ignore[arg-type]
    encoded = header(entry, 0)
    assert _ustar_header(entry, 0) is None
    assert b"size=9663676416" in encoded
    info = tarfile.TarInfo.frombuf(encoded[-512:], "utf-8", "surrogateescape")
    with tarfile.open(fileobj=io.BytesIO(encoded + bytes(1024)), mode="r:") as pax:
        member = pax.next()
    assert member is not None and member.size == 9 << 30 and info.name == "huge.bin"
