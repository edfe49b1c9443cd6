"""A layer's file-hashes record (the SBOM's) shared through a registry cache beside the layer.

With SBOMs on, a layer found in a registry cache would still have every file
read and hashed (sha256 and sha1) for the SBOM's file list on a runner whose
local cache has no record of it. So ``--cache-to`` publishes the record
(``ownfiles.record_path``, opaque bytes here) as a blob of the cache's
repository, named by the entry's ``files`` descriptor, and a hit fetches it
into the local cache before the SBOM is made.

The record is trusted as the layer is: whoever can write the cache could as
well name another layer. A record that cannot be had (gone, too large, of
another version, not a JSON object of rows) is not kept, and only costs the
hashing it would have saved.
"""

from __future__ import annotations

import io
import json
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from builder.atomic import atomic_write
from builder.commands.ownfiles import RECORD_VERSION, record_path
from builder.errors import BaleError
from builder.model import Descriptor, Digest

if TYPE_CHECKING:
    from builder.registry.client import RegistryClient

RECORD_TYPE = f"application/vnd.bale.file-hashes.v{RECORD_VERSION}+json"
# The standard library's 8,000 files make a record of about 1.5 MB.
MAX_RECORD_BLOB = 64 << 20


def usable(files: Descriptor | None) -> bool:
    """Whether a cache entry's ``files`` names a record this bale can read."""
    return files is not None and files.media_type == RECORD_TYPE and files.size <= MAX_RECORD_BLOB


def fetch_record(
    client: RegistryClient, repo: str, files: Descriptor, cache_root: Path, diff_id: Digest
) -> None:
    """Download the record ``files`` names (size and digest checked) to where the SBOM
    looks for the layer ``diff_id``'s, unless it is there already."""
    path = record_path(cache_root, diff_id)
    if path.is_file():
        return
    buffer = io.BytesIO()
    client.get_blob(repo, files, buffer)
    _check(buffer.getvalue(), files)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, sync=False) as out:
        out.write(buffer.getbuffer())


def _check(data: bytes, files: Descriptor) -> None:
    """A record is a JSON object of rows (arrays): anything else (deep nesting included,
    which the SBOM's reader would not survive) is refused before it is kept."""
    try:
        found = json.loads(data)
    except (ValueError, RecursionError):
        found = None
    if not isinstance(found, dict) or not all(isinstance(r, list) for r in found.values()):
        raise BaleError(f"blob {files.digest} is not a file-hashes record")


def publish_record(
    client: RegistryClient, repo: str, cache_root: Path, diff_id: Digest
) -> Descriptor | None:
    """Make the local record of the layer ``diff_id`` a blob of ``repo``; its descriptor,
    or None when there is none (SBOM off) or it is too large."""
    path = record_path(cache_root, diff_id)
    try:
        if path.stat().st_size > MAX_RECORD_BLOB:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    descriptor = Descriptor(RECORD_TYPE, Digest.of(data), len(data))
    if not client.blob_exists(repo, descriptor.digest):
        client.push_blob(repo, descriptor, partial(io.BytesIO, data))
    return descriptor
