"""A registry repository as a ``Store``: documents fetched and verified, layers cached.

Manifests, indexes and configs are small and fetched on each ``open``
(verified against their digest by the client). Layer blobs go through the
content-addressed cache ``<cache_dir>/blobs/sha256/<hex>`` shared with the
layer cache: downloaded to a temp file beside it, renamed into place only
once size and digest matched, so a corrupt blob is never cached or used and
later builds reuse what is there.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from builder.atomic import temp_file
from builder.cachedir import cache_dir
from builder.errors import DigestMismatch
from builder.image.store import MAX_DOCUMENT
from builder.layer.cache import LayerCache, hash_file
from builder.model import INDEX_TYPES, MANIFEST_TYPES, Descriptor
from builder.reference import Reference

if TYPE_CHECKING:
    from builder.registry.client import RegistryClient


class RegistryStore:
    """The blobs of ``ref``'s repository, read through ``client``."""

    def __init__(self, client: RegistryClient, ref: Reference, cache: Path | None = None) -> None:
        self.client = client
        self.ref = ref
        self.name = f"docker://{ref}"
        self._cache = LayerCache(cache or cache_dir()).blob_dir

    @property
    def registry(self) -> str:
        return self.ref.registry

    @property
    def repository(self) -> str:
        return self.ref.repository

    def root(self) -> Descriptor:
        """The descriptor of the manifest or index the reference names (tag resolved)."""
        manifest = self.client.get_manifest(self.repository, self.ref.manifest_ref)
        return Descriptor(manifest.media_type, manifest.digest, len(manifest.data))

    def open(self, descriptor: Descriptor) -> BinaryIO:
        if descriptor.media_type in MANIFEST_TYPES | INDEX_TYPES:
            manifest = self.client.get_manifest(self.repository, str(descriptor.digest))
            return io.BytesIO(manifest.data)
        if descriptor.size <= MAX_DOCUMENT and "json" in descriptor.media_type:
            buffer = io.BytesIO()
            self.client.get_blob(self.repository, descriptor, buffer)
            return io.BytesIO(buffer.getvalue())
        return open(self.cached(descriptor), "rb")

    def cached(self, descriptor: Descriptor) -> Path:
        """The verified cache file of a blob, downloading it first when needed.

        A cached file is re-hashed before each use (sha256 runs at GB/s); one whose
        bytes no longer match is deleted and fetched again.
        """
        path = self._cache / descriptor.digest.encoded
        if descriptor.digest.algorithm != "sha256":
            raise DigestMismatch(f"{self.name}: {descriptor.digest} is not a sha256 digest")
        try:
            if (
                path.stat().st_size == descriptor.size
                and hash_file(path)[0] == descriptor.digest.encoded
            ):
                os.utime(path)
                return path
            path.unlink()
        except FileNotFoundError:
            pass
        self._cache.mkdir(parents=True, exist_ok=True)
        fd, tmp = temp_file(self._cache, descriptor.digest.encoded)
        try:
            with os.fdopen(fd, "w+b") as out:
                self.client.get_blob(self.repository, descriptor, out)
                os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path

    def close(self) -> None:
        """The client belongs to the caller's ``Clients``; nothing to release here."""
