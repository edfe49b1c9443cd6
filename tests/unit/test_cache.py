from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import pytest

from builder.cachedir import cache_dir
from builder.layer import cache as cache_mod
from builder.layer.build import BUILT, LOCAL_CACHE, Layer, build_layer
from builder.layer.cache import LayerCache, layer_key, prune
from builder.layer.entries import Entry, HostFile, InlineContent, Kind
from builder.model import Codec

GZIP = Codec.of("gzip")
HOST = HostFile("/ctx/a", 5, 10, 20, 30, 40)
BASE = (
    Entry("app", Kind.DIR, 0o755),
    Entry("app/a", Kind.FILE, 0o644, 0, 0, HOST),
    Entry("app/b", Kind.FILE, 0o644, 0, 0, InlineContent(b"hi")),
    Entry("app/l", Kind.SYMLINK, 0o777, linkname="a"),
)
FUTURE = 10**10  # tests pin the clock 10 s ahead: the files they just wrote are not racy


def _future() -> int:
    return time.time_ns() + FUTURE


def _changed(index: int, **changes: object) -> tuple[Entry, ...]:
    entries = list(BASE)
    entries[index] = dataclasses.replace(entries[index], **changes)  # type: ignore[arg-type]
    return tuple(entries)


@pytest.mark.parametrize(
    ("entries", "codec", "mtime"),
    [
        (_changed(1, path="app/c"), GZIP, 0),
        (_changed(1, mode=0o755), GZIP, 0),
        (_changed(1, uid=1), GZIP, 0),
        (_changed(1, gid=1), GZIP, 0),
        (_changed(1, xattrs=(("user.x", b"1"),)), GZIP, 0),
        (_changed(3, linkname="b"), GZIP, 0),
        (_changed(2, content=InlineContent(b"ho")), GZIP, 0),
        (_changed(1, content=dataclasses.replace(HOST, size=6)), GZIP, 0),
        (_changed(1, content=dataclasses.replace(HOST, mtime_ns=11)), GZIP, 0),
        (_changed(1, content=dataclasses.replace(HOST, ctime_ns=21)), GZIP, 0),
        (_changed(1, content=dataclasses.replace(HOST, inode=31)), GZIP, 0),
        (_changed(1, content=dataclasses.replace(HOST, device=41)), GZIP, 0),
        (BASE, Codec.of("gzip", 9), 0),
        (BASE, Codec.of("zstd"), 0),
        (BASE, GZIP, 1),
        (BASE[:-1], GZIP, 0),
    ],
)
def test_every_input_of_the_bytes_changes_the_key(
    entries: tuple[Entry, ...], codec: Codec, mtime: int
) -> None:
    base = layer_key(BASE, GZIP, 0)
    assert base == layer_key(BASE, GZIP, 0)
    assert layer_key(entries, codec, mtime) not in {None, base}


def test_content_without_a_cheap_identity_is_not_cached() -> None:
    class Stream:
        size = 1

        def open(self) -> object:
            raise AssertionError

    assert layer_key([Entry("x", Kind.FILE, 0o644, content=Stream())], GZIP, 0) is None


def test_cache_dir_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BALE_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("BALE_CACHE_DIR")
    assert cache_dir().name == "bale"


class Counter:
    """A layer builder that counts its calls."""

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries
        self.calls = 0

    def __call__(self, directory: Path) -> Layer:
        self.calls += 1
        return build_layer(self.entries, GZIP, 0, directory)


def _file_entries(tmp_path: Path, data: bytes = b"hello world") -> list[Entry]:
    path = tmp_path / "ctx" / "f"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return [Entry("f", Kind.FILE, 0o644, content=HostFile.of(str(path), path.stat()))]


def test_second_lookup_reuses_the_verified_blob(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path / "cache", _future)
    entries = _file_entries(tmp_path)
    build = Counter(entries)
    first = cache.layer(entries, GZIP, 0, build, "by")
    second = cache.layer(entries, GZIP, 0, build, "by")
    assert build.calls == 1
    assert (first.source, second.source) == (BUILT, LOCAL_CACHE)
    assert dataclasses.replace(second, source=BUILT) == first
    assert first.path == tmp_path / "cache" / "blobs" / "sha256" / first.descriptor.digest.encoded
    records = list((tmp_path / "cache" / "layers").glob("*.json"))
    assert [json.loads(r.read_bytes())["digest"] for r in records] == [str(first.descriptor.digest)]


def test_an_unchanged_stamp_skips_rehashing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = LayerCache(tmp_path / "cache", _future)
    entries = _file_entries(tmp_path)
    build = Counter(entries)
    cache.layer(entries, GZIP, 0, build)

    def no_hash(path: Path) -> tuple[str, int]:
        raise AssertionError("a blob with an unchanged stamp was re-hashed")

    monkeypatch.setattr(cache_mod, "hash_file", no_hash)
    cache.layer(entries, GZIP, 0, build)
    assert build.calls == 1


@pytest.mark.parametrize("how", ["in-place", "replaced", "truncated", "deleted"])
def test_a_damaged_cached_blob_is_detected_and_rebuilt(tmp_path: Path, how: str) -> None:
    cache = LayerCache(tmp_path / "cache", _future)
    entries = _file_entries(tmp_path)
    build = Counter(entries)
    layer = cache.layer(entries, GZIP, 0, build)
    good = layer.path.read_bytes()
    st = layer.path.stat()
    time.sleep(0.05)  # past the file system's timestamp tick, so ctime moves
    bad = bytes(len(good) - 1) + b"\x01"
    if how == "in-place":
        with open(layer.path, "r+b") as f:
            f.write(bad)
        os.utime(layer.path, ns=(st.st_atime_ns, st.st_mtime_ns))
    elif how == "replaced":
        (tmp_path / "other").write_bytes(bad)
        os.utime(tmp_path / "other", ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(tmp_path / "other", layer.path)
    elif how == "truncated":
        layer.path.write_bytes(good[:-3])
    else:
        layer.path.unlink()
    again = cache.layer(entries, GZIP, 0, build)
    assert build.calls == 2
    assert again.descriptor == layer.descriptor
    assert again.path.read_bytes() == good


def test_files_changed_just_before_the_build_are_not_recorded(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path / "cache")  # the real clock: the file was written just now
    entries = _file_entries(tmp_path)
    build = Counter(entries)
    cache.layer(entries, GZIP, 0, build)
    cache.layer(entries, GZIP, 0, build)
    assert build.calls == 2
    assert not list((tmp_path / "cache" / "layers").glob("*.json"))


def test_a_garbled_record_is_a_miss(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path / "cache", _future)
    entries = _file_entries(tmp_path)
    build = Counter(entries)
    cache.layer(entries, GZIP, 0, build)
    (record,) = (tmp_path / "cache" / "layers").glob("*.json")
    record.write_text("{not json")
    cache.layer(entries, GZIP, 0, build)
    assert build.calls == 2
    assert json.loads(record.read_bytes())["size"] > 0


def test_prune_keeps_recent_records_and_their_blobs(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    cache = LayerCache(root, _future)
    entries = _file_entries(tmp_path)
    layer = cache.layer(entries, GZIP, 0, Counter(entries))
    stray = root / "blobs" / "sha256" / ("0" * 64)
    stray.write_bytes(b"pulled long ago")
    os.utime(stray, (0, 0))
    assert prune(root, 86400) == cache_mod.Pruned(0, 1, len(b"pulled long ago"))
    assert layer.path.exists()
    (record,) = (root / "layers").glob("*.json")
    os.utime(record, (0, 0))
    os.utime(layer.path, (0, 0))
    result = prune(root, 86400)
    assert (result.records, result.blobs) == (1, 1)
    assert not layer.path.exists()


def test_prune_all_empties_the_cache(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    cache = LayerCache(root, _future)
    entries = _file_entries(tmp_path)
    cache.layer(entries, GZIP, 0, Counter(entries))
    assert prune(root, None).records == 1
    assert not list((root / "blobs" / "sha256").iterdir())
    assert prune(tmp_path / "missing", None) == cache_mod.Pruned(0, 0, 0)


def test_prune_drops_old_rebuild_records(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    (root / "rebuilds").mkdir(parents=True)
    old, new = root / "rebuilds" / "old.json", root / "rebuilds" / "new.json"
    old.write_text("{}")
    new.write_text("{}")
    os.utime(old, (0, 0))
    prune(root, 86400)
    assert [p.name for p in (root / "rebuilds").iterdir()] == ["new.json"]
    prune(root, None)
    assert not list((root / "rebuilds").iterdir())


def test_prune_forgets_blob_locations_by_age_and_with_all(tmp_path: Path) -> None:
    """The blob-location hints (pushes' mount sources) age out like every other cache file."""
    locations = tmp_path / "blob-locations.json"
    locations.write_text("{}")
    now = time.time()
    prune(tmp_path, 3600, now=now)
    assert locations.exists()
    os.utime(locations, (now - 7200, now - 7200))
    prune(tmp_path, 3600, now=now)
    assert not locations.exists()
    locations.write_text("{}")
    prune(tmp_path, None)
    assert not locations.exists()


def test_a_registry_hit_note_is_kept_for_quiet_files_and_aged_out(tmp_path: Path) -> None:
    """Notes of hits not downloaded (content-keys/): kept only for files that are not racy,
    read back as written, a garbled one is no note, and prune ages them out."""
    root = tmp_path / "cache"
    entries = _file_entries(tmp_path)
    note = {"contentKey": "c" * 64, "cache": "registry.test/app-cache:main"}
    LayerCache(root).note("racy", note, entries, time.time_ns())  # just written: racy
    assert LayerCache(root).noted("racy") is None
    cache = LayerCache(root, _future)
    cache.note("quiet", note, entries, _future())
    assert cache.noted("quiet") == note
    moved = entries[0].content
    assert isinstance(moved, HostFile)
    Path(moved.path).write_bytes(b"changed since the walk")
    cache.note("changed", note, entries, _future())
    assert cache.noted("changed") is None
    garbled = root / "content-keys" / "garbled.json"
    garbled.write_bytes(b"[" * 100_000)
    assert cache.noted("garbled") is None
    os.utime(root / "content-keys" / "quiet.json", (0, 0))
    prune(root, 86400)
    assert cache.noted("quiet") is None and (root / "content-keys" / "garbled.json").exists()
