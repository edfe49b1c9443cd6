from __future__ import annotations

import io
import tarfile

import pytest

from builder.errors import LayerError
from builder.layer.entries import Entry, InlineContent, Kind, sort_key
from builder.layer.tarwriter import tar_size, write_tar


def _tar(entries: list[Entry], mtime: int = 1_700_000_000) -> bytes:
    out = io.BytesIO()
    write_tar(entries, mtime, out.write)
    return out.getvalue()


def _members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()


def test_members_carry_normalised_metadata() -> None:
    data = _tar(
        [
            Entry("app", Kind.DIR, 0o755),
            Entry("app/run", Kind.FILE, 0o4755, 1000, 1001, InlineContent(b"#!/bin/sh\n")),
            Entry("app/link", Kind.SYMLINK, 0o777, linkname="run"),
            Entry("app/hard", Kind.HARDLINK, 0o755, linkname="app/run"),
        ]
    )
    assert len(data) % 512 == 0
    assert data.endswith(bytes(1024))
    members = {m.name: m for m in _members(data)}
    run = members["app/run"]
    assert (run.mode, run.uid, run.gid, run.size) == (0o4755, 1000, 1001, 10)
    assert (run.uname, run.gname, run.mtime) == ("", "", 1_700_000_000)
    assert members["app"].isdir()
    assert members["app/link"].issym() and members["app/link"].linkname == "run"
    assert members["app/hard"].islnk() and members["app/hard"].linkname == "app/run"
    assert all(not m.pax_headers for m in members.values())


def test_long_and_non_ascii_names_and_xattrs_use_pax() -> None:
    long_name = "d/" + "x" * 200
    entries = [
        Entry(long_name, Kind.FILE, 0o644, content=InlineContent(b"")),
        Entry("caf\u00e9", Kind.FILE, 0o644, content=InlineContent(b"")),
        Entry(
            "cap",
            Kind.FILE,
            0o755,
            content=InlineContent(b""),
            xattrs=(("security.capability", b"\x01\x00\xff"),),
        ),
    ]
    members = {m.name: m for m in _members(_tar(entries))}
    assert long_name in members and "caf\u00e9" in members
    raw = members["cap"].pax_headers["SCHILY.xattr.security.capability"]
    assert raw.encode("utf-8", "surrogateescape") == b"\x01\x00\xff"
    assert "mtime" not in members[long_name].pax_headers


def test_output_is_a_pure_function_of_entries() -> None:
    entries = [Entry("a", Kind.FILE, 0o644, content=InlineContent(b"abc"))]
    assert _tar(entries) == _tar(entries)
    assert _tar(entries, 1) != _tar(entries, 2)


class _Shrinking:
    size = 10

    def open(self) -> io.BytesIO:
        return io.BytesIO(b"short")


def test_content_that_changes_size_is_an_error() -> None:
    with pytest.raises(LayerError, match="changed size"):
        _tar([Entry("f", Kind.FILE, 0o644, content=_Shrinking())])


def test_sort_key_puts_parents_first_and_whiteouts_before_siblings() -> None:
    paths = ["a/b", "a-b", "a", "a/.wh.z", "a/.wh..wh..opq", "b"]
    assert sorted(paths, key=sort_key) == ["a", "a/.wh..wh..opq", "a/.wh.z", "a/b", "a-b", "b"]


def test_sort_key_orders_like_component_tuples() -> None:
    import random

    rng = random.Random(7)
    names = ["a", "a-b", "ab", "b", ".wh.a", ".wh..wh..opq", "a.b", "A", "é", "a b"]
    paths = {"/".join(rng.choice(names) for _ in range(rng.randint(1, 4))) for _ in range(2000)}

    def reference(path: str) -> tuple[tuple[int, str], ...]:
        return tuple((0 if p.startswith(".wh.") else 1, p) for p in path.split("/"))

    assert sorted(paths, key=sort_key) == sorted(paths, key=reference)


def test_tar_size_is_the_length_of_the_stream_without_pax_headers() -> None:
    entries = [
        Entry("d", Kind.DIR, 0o755),
        Entry("d/empty", Kind.FILE, 0o644, content=InlineContent(b"")),
        Entry("d/one", Kind.FILE, 0o644, content=InlineContent(b"x" * 512)),
        Entry("d/odd", Kind.FILE, 0o644, content=InlineContent(b"y" * 513)),
        Entry("d/link", Kind.SYMLINK, 0o777, linkname="one"),
    ]
    assert tar_size(entries) == len(_tar(entries))
