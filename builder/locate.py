"""Image sources named on the command line → a Store and the root descriptor in it.

``oci:DIR[:TAG]``, ``oci-archive:FILE[:TAG]``, ``docker-archive:FILE[:[NAME:]TAG]``
are read here. ``docker://REF`` and plain references go to ``open_registry``,
the one place a registry store plugs in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from builder.archive_read import DockerArchiveStore, OciArchiveStore
from builder.errors import UsageError
from builder.model import Descriptor
from builder.store import LayoutStore, Store

SOURCE_FORMS = (
    "oci:DIR[:TAG]",
    "oci-archive:FILE[:TAG]",
    "docker-archive:FILE[:[NAME:]TAG]",
    "docker://REF",
)


@dataclass(frozen=True, slots=True)
class Source:
    """An opened image: where its blobs are, and the manifest or index it starts from."""

    text: str
    store: Store
    root: Descriptor


def split_path(rest: str) -> tuple[Path, str]:
    """``PATH[:NAME]``: an existing path wins, else the first ':' ends the path."""
    if Path(rest).exists() or ":" not in rest:
        return Path(rest), ""
    path, _, name = rest.partition(":")
    return Path(path), name


@contextmanager
def open_source(text: str) -> Iterator[Source]:
    """Open ``text`` for reading; archive files are closed when the block ends."""
    transport, sep, rest = text.partition(":")
    if transport == "docker" and rest.startswith("//"):
        yield open_registry(rest[2:], text)
        return
    if not sep or transport not in ("oci", "oci-archive", "docker-archive"):
        yield open_registry(text, text)
        return
    path, name = split_path(rest)
    if not path.exists():
        raise UsageError(f"'{text}': {path} does not exist")
    store, root = open_local(transport, path, name)
    try:
        yield Source(text, store, root)
    finally:
        store.close()


def open_local(
    transport: str, path: Path, name: str
) -> tuple[LayoutStore | OciArchiveStore | DockerArchiveStore, Descriptor]:
    """The store of a local image and the descriptor ``name`` picks in it."""
    if transport == "oci":
        layout = LayoutStore(path)
        return layout, layout.lookup(name)
    archive = OciArchiveStore(path) if transport == "oci-archive" else DockerArchiveStore(path)
    return archive, archive.lookup(name)


def open_registry(reference: str, text: str) -> Source:
    """A registry image. The registry branch returns Source(text, RegistryStore, root) here."""
    raise UsageError(
        f"'{text}': reading from a registry is not available in this build of bale; "
        "use one of " + ", ".join(SOURCE_FORMS[:3])
    )
