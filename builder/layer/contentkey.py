"""Cache keys of a layer: one from stat data (fast, local), one from content (shared).

Both hash the same head (bale's layer format, the compression backends, the
codec and the tar mtime) and every entry's path, type, mode, owner, link
target and xattrs; they differ in how a context file's bytes are named. The
stat key names them by stat data, as git's index does; the content key by
the BLAKE3 hash of the bytes, so two CI runners with fresh clones of the same
commit (new inodes, new mtimes) compute the same key. A wheel member is named
by its RECORD sha256 and a ``tar =`` member by its tarball's hash, in both keys.
BLAKE3 was chosen by measurement (``benchmarks/registry_cache.py --hashes``,
docs/performance.md): a cryptographic hash, so no crafted input can take
another's cache entry, and on these machines about four times as fast as
sha256 with the CPU's SHA extensions, and far faster than gzip compresses.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import blake3
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


def file_hasher(data: bytes = b"") -> blake3.blake3:
    """A new hasher of a context file's bytes for the content key (``hashes`` hold its hex)."""
    return blake3.blake3(data)


def content_identity(hashes: Mapping[str, str]) -> Identity:
    """A context file named by the BLAKE3 of its bytes (``hashes``: path → hex), not its path."""

    def identity(content: Content) -> tuple[Any, ...] | None:
        if isinstance(content, HostFile):
            digest = hashes.get(content.path)
            return None if digest is None else ("blake3", content.size, digest)
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


def entry_texts(entries: Iterable[Entry]) -> list[str]:
    """What both keys hash of each entry besides its content's name (made once for both)."""
    # repr of str, int and bytes tuples: unambiguous, and far cheaper than JSON.
    return [
        f"\n{(e.path, e.kind.value, e.mode, e.uid, e.gid, e.linkname)!r}{e.xattrs!r}"
        for e in entries
    ]


def key_of(
    entries: Sequence[Entry],
    codec: Codec,
    mtime: int,
    kind: str,
    identity: Identity,
    texts: Sequence[str] | None = None,
) -> str | None:
    """The key of a layer, or None when some content has no identity.

    ``texts``: ``entry_texts(entries)``, when the caller makes both keys.
    """
    backends = [deflate.__version__, zstandard.__version__]
    head = [kind, LAYER_FORMAT, backends, codec.name, codec.level, codec.chunk_size, mtime]
    parts = [json.dumps(head)]
    for text, entry in zip(texts or entry_texts(entries), entries, strict=True):
        named = () if entry.content is None else identity(entry.content)
        if named is None:
            return None
        parts.append(f"{text}{named!r}")
    return hashlib.sha256("".join(parts).encode()).hexdigest()


def stat_key(
    entries: Sequence[Entry], codec: Codec, mtime: int, texts: Sequence[str] | None = None
) -> str | None:
    """The local cache key: context files named by stat data."""
    return key_of(entries, codec, mtime, "bale-layer", stat_identity, texts)


def content_key(
    entries: Sequence[Entry],
    codec: Codec,
    mtime: int,
    hashes: Mapping[str, str],
    texts: Sequence[str] | None = None,
) -> str | None:
    """The shared cache key: context files named by the BLAKE3 of their bytes."""
    return key_of(entries, codec, mtime, "bale-layer-content", content_identity(hashes), texts)


def hash_host_files(entries: Iterable[Entry]) -> dict[str, str]:
    """The BLAKE3 hex of every context file among ``entries`` (path → hex), read once each.

    Files of ``BIG_FILE`` bytes or more are hashed on a second thread: reading
    and hashing them releases the GIL, while the many small files are mostly
    per-file work that holds it.
    """
    files = {e.content.path: e.content.size for e in entries if isinstance(e.content, HostFile)}
    big = [(path, size) for path, size in files.items() if size >= BIG_FILE]
    small = [(path, size) for path, size in files.items() if size < BIG_FILE]
    if not big or not small:
        return _hash_files([*small, *big])
    with ThreadPoolExecutor(1) as pool:
        other = pool.submit(_hash_files, big)
        hashes = _hash_files(small)
        hashes.update(other.result())
    return hashes


def _hash_files(files: Iterable[tuple[str, int]]) -> dict[str, str]:
    view = memoryview(bytearray(HASH_READ))
    return {path: _hash_file(path, size, view) for path, size in files}


def _hash_file(path: str, size: int, view: memoryview) -> str:
    """A file of ``size`` bytes when walked; a small one is read in one call of a byte
    more than that, whose falling short proves the end (as the layer writer's reads do)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        if size < BIG_FILE:
            data = os.read(fd, size + 1)
            hasher = file_hasher(data)
            if len(data) <= size:
                return hasher.hexdigest()
        else:
            hasher = file_hasher()
        while got := os.readv(fd, (view,)):
            hasher.update(view[:got])
    finally:
        os.close(fd)
    return hasher.hexdigest()
