"""Cache keys of a layer: one from stat data (fast, local), one from content (shared).

Both hash the same head (bale's layer format, the compression backends, the
codec and the tar mtime) and every entry's path, type, mode, owner, link
target and xattrs; they differ in how a context file's bytes are named. The
stat key names them by stat data, as git's index does; the content key by
the sha256 of the bytes, so two CI runners with fresh clones of the same
commit (new inodes, new mtimes) compute the same key. A wheel member is named
by its RECORD sha256 and a ``tar =`` member by its tarball's hash, in both keys.
sha256 was chosen by measurement (``benchmarks/registry_cache.py``,
docs/performance.md): with the CPU's SHA extensions it hashes several times
faster than gzip compresses.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import deflate
import zstandard

from builder.layer.entries import Content, Entry, HostFile, InlineContent, TarMember, ZipMember
from builder.model import Codec

# Bump whenever the tar encoding or the chunking changes the bytes of a layer.
LAYER_FORMAT = 1
HASH_READ = 1 << 20
BIG_FILE = 64 << 10
Identity = Callable[[Content], "tuple[Any, ...] | None"]


def stat_identity(content: Content) -> tuple[Any, ...] | None:
    """A context file named by its path and stat data; inline bytes by their hash."""
    if isinstance(content, HostFile):
        st = (content.size, content.mtime_ns, content.ctime_ns, content.inode, content.device)
        return ("host", content.path, *st)
    if isinstance(content, InlineContent):
        return ("inline", hashlib.sha256(content.data).hexdigest())
    if isinstance(content, ZipMember):
        return ("zip", content.sha256, content.size)
    return tar_identity(content)


def content_identity(hashes: Mapping[str, str]) -> Identity:
    """A context file named by the sha256 of its bytes (``hashes``: path → hex), not its path."""

    def identity(content: Content) -> tuple[Any, ...] | None:
        if isinstance(content, HostFile):
            digest = hashes.get(content.path)
            return None if digest is None else ("bytes", content.size, digest)
        if isinstance(content, InlineContent):
            return ("bytes", content.size, hashlib.sha256(content.data).hexdigest())
        if isinstance(content, ZipMember):  # a wheel member: its RECORD's sha256
            return ("bytes", content.size, content.sha256)
        return tar_identity(content)

    return identity


def tar_identity(content: Content) -> tuple[Any, ...] | None:
    """A tarball member named by the hash of the uncompressed tarball and its place in it.

    The same in both keys: the tarball was read whole to import it, so its hash
    costs nothing more, and it names the bytes whatever the tarball's compression.
    """
    if isinstance(content, TarMember):
        return ("tar", content.tar_sha256, content.offset, content.size)
    return None


def key_of(
    entries: Iterable[Entry], codec: Codec, mtime: int, kind: str, identity: Identity
) -> str | None:
    """The key of a layer, or None when some content has no identity."""
    hasher = hashlib.sha256()
    backends = [deflate.__version__, zstandard.__version__]
    head = [kind, LAYER_FORMAT, backends, codec.name, codec.level, codec.chunk_size, mtime]
    hasher.update(json.dumps(head).encode())
    for entry in entries:
        named = () if entry.content is None else identity(entry.content)
        if named is None:
            return None
        # repr of str, int and bytes tuples: unambiguous, and far cheaper than JSON.
        fields = (entry.path, entry.kind.value, entry.mode, entry.uid, entry.gid, entry.linkname)
        hasher.update(f"\n{fields!r}{entry.xattrs!r}{named!r}".encode())
    return hasher.hexdigest()


def stat_key(entries: Iterable[Entry], codec: Codec, mtime: int) -> str | None:
    """The local cache key: context files named by stat data."""
    return key_of(entries, codec, mtime, "bale-layer", stat_identity)


def content_key(
    entries: Iterable[Entry], codec: Codec, mtime: int, hashes: Mapping[str, str]
) -> str | None:
    """The shared cache key: context files named by the sha256 of their bytes."""
    return key_of(entries, codec, mtime, "bale-layer-content", content_identity(hashes))


def hash_host_files(entries: Iterable[Entry]) -> dict[str, str]:
    """sha256 hex of every context file among ``entries`` (path → hex), read once each.

    Files of ``BIG_FILE`` bytes or more are hashed on a second thread: reading
    and hashing them releases the GIL, while the many small files are mostly
    per-file work that holds it.
    """
    files = {e.content.path: e.content.size for e in entries if isinstance(e.content, HostFile)}
    big = [path for path, size in files.items() if size >= BIG_FILE]
    small = [path for path, size in files.items() if size < BIG_FILE]
    if not big or not small:
        return _hash_paths(list(files))
    with ThreadPoolExecutor(1) as pool:
        other = pool.submit(_hash_paths, big)
        hashes = _hash_paths(small)
        hashes.update(other.result())
    return hashes


def _hash_paths(paths: Iterable[str]) -> dict[str, str]:
    view = memoryview(bytearray(HASH_READ))
    return {path: _hash_path(path, view) for path in paths}


def _hash_path(path: str, view: memoryview) -> str:
    hasher = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        while got := os.readv(fd, (view,)):
            hasher.update(view[:got])
    finally:
        os.close(fd)
    return hasher.hexdigest()
