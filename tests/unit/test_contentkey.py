"""Content keys: equal for equal bytes wherever the checkout lives, different for any change."""

from __future__ import annotations

import gzip
import lzma
import os
import shutil
from hashlib import sha1, sha256
from pathlib import Path

import pytest
from blake3 import blake3

from builder.layer.build import build_layer
from builder.layer.contentkey import content_key, hash_host_files, stat_key
from builder.layer.entries import Entry, HostFile, InlineContent, Kind
from builder.layer.filebody import Body, Reading
from builder.layer.tarimport import import_tar
from builder.model import Codec
from tests.fuzz.images import plain_tar

GZIP = Codec.of("gzip")


def checkout(root: Path, data: bytes = b"print('hi')\n" * 500) -> list[Entry]:
    """A small context in ``root``: one file, one inline file, one symlink."""
    root.mkdir(parents=True)
    path = root / "app.py"
    path.write_bytes(data)
    return [
        Entry("app", Kind.DIR, 0o755),
        Entry("app/app.py", Kind.FILE, 0o644, content=HostFile.of(str(path), path.stat())),
        Entry("app/conf", Kind.FILE, 0o644, content=InlineContent(b"x=1")),
        Entry("app/link", Kind.SYMLINK, 0o777, linkname="app.py"),
    ]


def key(entries: list[Entry], codec: Codec = GZIP, mtime: int = 0) -> str | None:
    return content_key(entries, codec, mtime, hash_host_files(entries))


def test_two_checkouts_share_the_content_key_but_not_the_stat_key(tmp_path: Path) -> None:
    one = checkout(tmp_path / "one")
    two = checkout(tmp_path / "two")
    os.utime(tmp_path / "two" / "app.py", ns=(10**18, 10**18))
    two = checkout_again(tmp_path / "two", two)
    assert key(one) == key(two) is not None
    assert stat_key(one, GZIP, 0) != stat_key(two, GZIP, 0)


def checkout_again(root: Path, entries: list[Entry]) -> list[Entry]:
    """The entries re-read after the files' stat data changed."""
    path = root / "app.py"
    fresh = HostFile.of(str(path), path.stat())
    return [
        e if not isinstance(e.content, HostFile) else Entry(e.path, e.kind, e.mode, content=fresh)
        for e in entries
    ]


@pytest.mark.parametrize("change", ["bytes", "mode", "owner", "codec", "mtime"])
def test_any_change_to_the_layer_changes_the_content_key(tmp_path: Path, change: str) -> None:
    base = checkout(tmp_path / "base")
    data = b"print('ho')\n" * 500 if change == "bytes" else b"print('hi')\n" * 500
    entries = checkout(tmp_path / "other", data)
    codec, mtime = GZIP, 0
    if change == "mode":
        entries[1] = Entry(entries[1].path, Kind.FILE, 0o755, content=entries[1].content)
    if change == "owner":
        entries[1] = Entry(entries[1].path, Kind.FILE, 0o644, 1000, 1000, entries[1].content)
    codec = Codec.of("zstd") if change == "codec" else codec
    mtime = 1 if change == "mtime" else mtime
    assert key(entries, codec, mtime) != key(base)


@pytest.mark.parametrize("sbom", [False, True], ids=["plain", "with-sbom-hashes"])
def test_the_build_pass_hashes_exactly_what_it_read(tmp_path: Path, sbom: bool) -> None:
    """With or without an SBOM reading, the build pass's hashes are the files' own."""
    data = os.urandom(3 << 20)
    entries = checkout(tmp_path / "ctx", data)
    hashes: dict[str, str] = {}
    reading = Reading(hash_files=True) if sbom else None
    bodies: dict[str, Body] = {}
    build_layer(entries, GZIP, 0, tmp_path / "out", hashes=hashes, reading=reading, bodies=bodies)
    assert hashes == hash_host_files(entries)
    assert content_key(entries, GZIP, 0, hashes) == key(entries)
    if sbom:
        big = next(e for e in entries if e.size == len(data))
        assert bodies[big.path][1:] == (sha256(data).hexdigest(), sha1(data).hexdigest())


def test_small_and_big_files_are_all_hashed(tmp_path: Path) -> None:
    """Files of 64 KiB and more go to a second thread: every hash is still the file's."""
    entries = []
    for number, size in enumerate((0, 10, (64 << 10) - 1, 64 << 10, 3 << 20, 100)):
        path = tmp_path / f"f{number}"
        path.write_bytes(os.urandom(size))
        entries.append(
            Entry(f"f{number}", Kind.FILE, 0o644, content=HostFile.of(str(path), path.stat()))
        )
    found = hash_host_files(entries)
    judged = {
        str(tmp_path / f"f{n}"): blake3((tmp_path / f"f{n}").read_bytes()).hexdigest()
        for n in range(6)
    }
    assert found == judged


def test_a_file_without_a_hash_has_no_content_key(tmp_path: Path) -> None:
    entries = checkout(tmp_path / "ctx")
    assert content_key(entries, GZIP, 0, {}) is None
    shutil.rmtree(tmp_path / "ctx")


def tarball(path: Path, data: bytes, compress: str) -> Path:
    """A tarball of one directory and one file, compressed as asked."""
    raw = plain_tar({"etc/motd": data})
    path.write_bytes(
        {"none": raw, "gz": gzip.compress(raw, mtime=1), "xz": lzma.compress(raw)}[compress]
    )
    return path


def imported(tmp_path: Path, name: str, data: bytes, compress: str) -> list[Entry]:
    work = tmp_path / f"work-{name}"
    work.mkdir()
    return list(import_tar(tarball(tmp_path / name, data, compress), work, name).entries)


def test_a_tarball_member_is_named_by_the_tarball_whatever_its_compression(tmp_path: Path) -> None:
    plain = imported(tmp_path, "a.tar", b"hello\n", "none")
    gz = imported(tmp_path, "b.tar.gz", b"hello\n", "gz")
    xz = imported(tmp_path, "c.tar.xz", b"hello\n", "xz")
    assert {key(plain), key(gz), key(xz)} == {key(plain)} and key(plain) is not None
    assert stat_key(plain, GZIP, 0) == stat_key(xz, GZIP, 0) is not None
    changed = imported(tmp_path, "d.tar.gz", b"hellO\n", "gz")
    assert key(changed) != key(gz) and stat_key(changed, GZIP, 0) != stat_key(gz, GZIP, 0)
    assert key(gz, Codec.of("zstd")) != key(gz)
