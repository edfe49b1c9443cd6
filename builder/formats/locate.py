"""Image locations (builder/spec/locations.py) → an opened store and the root descriptor in it.

Local images are read here; registry images through a ``RegistryStore``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from builder.errors import UsageError
from builder.formats.archive import DockerArchiveStore, OciArchiveStore
from builder.formats.layout import LayoutStore
from builder.image.store import Store
from builder.model import Descriptor
from builder.reference import parse_reference
from builder.registry.options import Clients
from builder.registry.store import RegistryStore
from builder.spec.locations import Location, parse_location


@dataclass(frozen=True, slots=True)
class Source:
    """An opened image: where its blobs are, and the manifest or index it starts from."""

    text: str
    store: Store
    root: Descriptor


@contextmanager
def open_source(text: str, clients: Clients | None = None) -> Iterator[Source]:
    """Open ``text`` for reading; archive files (and our own clients) close when the block ends.

    ``clients`` carries the registry settings (TLS, verbosity) and is shared by a command.
    """
    location = parse_location(text)
    if location.transport == "docker":
        active = clients or Clients()
        try:
            yield Source(text, *open_registry(location, active))
        finally:
            if active is not clients:
                active.close()
        return
    if not location.path.exists():
        raise UsageError(f"'{text}': {location.path} does not exist")
    store, root = open_local(location)
    try:
        yield Source(text, store, root)
    finally:
        store.close()


def open_local(
    location: Location,
) -> tuple[LayoutStore | OciArchiveStore | DockerArchiveStore, Descriptor]:
    """The store of a local image and the descriptor its tag (or name and tag) picks in it."""
    if location.transport == "oci":
        layout = LayoutStore(location.path)
        return layout, layout.lookup(location.tag)
    if location.transport == "oci-archive":
        archive: OciArchiveStore | DockerArchiveStore = OciArchiveStore(location.path)
    else:
        archive = DockerArchiveStore(location.path)
    return archive, archive.lookup(location.reference)


def open_registry(location: Location, clients: Clients) -> tuple[RegistryStore, Descriptor]:
    """A registry image: its store and the manifest or index its reference names."""
    ref = parse_reference(location.reference)
    store = RegistryStore(clients.get(ref.registry), ref)
    return store, store.root()
