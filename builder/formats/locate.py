"""Image sources named on the command line → a Store and the root descriptor in it.

``oci:DIR[:TAG]``, ``oci-archive:FILE[:TAG]``, ``docker-archive:FILE[:[NAME:]TAG]``
are read here. ``docker://REF`` and plain references (``alpine:3.20``) go to
``open_registry``, which reads them through a ``RegistryStore``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from builder.errors import InvalidReference, UsageError
from builder.formats.archive import DockerArchiveStore, OciArchiveStore
from builder.formats.layout import LayoutStore
from builder.image.store import Store
from builder.model import Descriptor
from builder.reference import parse_reference
from builder.registry.options import Clients
from builder.registry.store import RegistryStore
from builder.spec.locations import SOURCE_FORMS


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
def open_source(text: str, clients: Clients | None = None) -> Iterator[Source]:
    """Open ``text`` for reading; archive files (and our own clients) close when the block ends.

    ``clients`` carries the registry settings (TLS, verbosity) and is shared by a command.
    """
    transport, sep, rest = text.partition(":")
    local = sep and transport in ("oci", "oci-archive", "docker-archive")
    if not local or (transport == "docker" and rest.startswith("//")):
        active = clients or Clients()
        try:
            yield open_registry(text, text, active)
        finally:
            if active is not clients:
                active.close()
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


def open_registry(reference: str, text: str, clients: Clients) -> Source:
    """A registry image ``[docker://]REF``: its store and the manifest or index REF names."""
    try:
        ref = parse_reference(reference)
    except InvalidReference as exc:
        raise UsageError(f"'{text}': {exc}; or use one of " + ", ".join(SOURCE_FORMS)) from None
    store = RegistryStore(clients.get(ref.registry), ref)
    return Source(text, store, store.root())
