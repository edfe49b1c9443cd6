"""``bale index create``: single-platform images → one image index.

Each source is read through ``locate.open_source`` (any transport it knows),
its manifest, config and layers are copied unchanged, and the index names
the manifests in the order given. The index is made by ``image.index_of``,
the same code ``bale build`` uses, so the per-platform builds of an
image.toml assembled here give the digest of a direct multi-platform build.
The referrers each source holds for its image (SBOMs, provenance,
signatures: from a layout, an oci-archive or a registry) are copied too, to
every output as ``bale build`` writes its own (``formats.sinks``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace

from builder.commands.referrers import source_referrers
from builder.errors import ImageError, UsageError
from builder.formats.locate import Source, open_source
from builder.formats.sinks import prepare_outputs, write_output
from builder.image.assemble import JsonBlob, index_of
from builder.image.store import StoreBlob, check_layers, platforms_of, resolve_image
from builder.locking import Note
from builder.model import DOCKER_MANIFEST, INDEX_TYPES, Blob, Descriptor, Platform
from builder.registry.options import Clients
from builder.registry.store import RegistryStore
from builder.spec.locations import Output
from builder.spec.values import FORMATS
from builder.supply.attachment import Referrer


@dataclass(frozen=True, slots=True)
class Member:
    """One source's image in the index: its manifest, platform and blobs (children first)."""

    source: str
    platform: Platform
    manifest: Descriptor
    blobs: tuple[Blob, ...]
    referrers: tuple[Referrer, ...] = ()


@dataclass(frozen=True, slots=True)
class IndexOptions:
    sources: tuple[str, ...]
    outputs: tuple[Output, ...]
    tags: tuple[str, ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    format: str = "oci"
    created: int = 0
    clients: Clients | None = None
    trust_sources: bool = False
    warn: Note | None = None
    # Information that is not a warning (silent under --quiet).
    note: Note | None = None


@dataclass(frozen=True, slots=True)
class IndexResult:
    index: JsonBlob
    members: tuple[Member, ...]
    tags: tuple[str, ...]
    outputs: tuple[Output, ...]
    pushed: tuple[str, ...] = ()

    @property
    def root(self) -> Descriptor:
        return self.index.descriptor

    @property
    def blobs(self) -> list[Blob]:
        """Every blob, children before the index, each digest once."""
        found: dict[str, Blob] = {}
        for member in self.members:
            for blob in member.blobs:
                found.setdefault(str(blob.descriptor.digest), blob)
        found.setdefault(str(self.index.descriptor.digest), self.index)
        return list(found.values())

    @property
    def referrers(self) -> tuple[Referrer, ...]:
        """The SBOMs and attestations the sources held for the images joined."""
        return tuple(referrer for member in self.members for referrer in member.referrers)


def create_index(options: IndexOptions) -> IndexResult:
    """Check every source, make the index, then write it and all blobs to each output."""
    if not options.sources:
        raise UsageError("index create needs at least one source image")
    if options.format not in FORMATS:
        raise UsageError(f"--format '{options.format}': use one of {', '.join(FORMATS)}")
    clients = options.clients
    with ExitStack() as stack:
        local_output = any(o.transport != "docker" for o in options.outputs)
        check = None if options.trust_sources else local_output
        members = tuple(
            member_of(stack.enter_context(open_source(text, clients)), check, options.note)
            for text in options.sources
        )
        check_platforms(members)
        index = make_index(members, dict(options.annotations), options.format)
        result = IndexResult(index, members, options.tags, options.outputs)
        outputs = prepare_outputs(options.outputs, options.tags, result.referrers, options.note)
        result = replace(result, outputs=outputs)
        pushed: list[str] = []
        for output in outputs:
            pushed += write_output(
                output,
                result.blobs,
                result.root,
                options.tags,
                options.created,
                None,
                clients,
                referrers=result.referrers,
                note=options.warn,
            )
    return replace(result, pushed=tuple(pushed))


def member_of(source: Source, check: bool | None = True, note: Note | None = None) -> Member:
    """The single-platform image ``source`` names; an index must hold exactly one.

    Its layers are read and checked (as a build checks its base) when ``check``
    or when the source is local: whenever bale copies them. A registry source
    pushed to registries is mounted, not copied, and not downloaded to be read.
    ``check`` None (``--trust-base``): never. ``note`` hears of referrers not copied.
    """
    descriptor = source.root
    if descriptor.media_type in INDEX_TYPES:
        found = platforms_of(source.store, descriptor)
        if len(found) != 1:
            offered = ", ".join(str(d.platform) for d in found) or "none"
            raise ImageError(
                f"'{source.text}' is an index of {len(found)} platform images ({offered}); "
                "index create takes single-platform images: name one manifest per source"
            )
        descriptor = found[0]
    image = resolve_image(source.store, descriptor, None)
    platform = image.platform
    if not platform.os or not platform.architecture:
        raise ImageError(
            f"'{source.text}': its config names no os and architecture, so it cannot have "
            "a place in an index"
        )
    if check or (check is not None and not isinstance(source.store, RegistryStore)):
        check_layers(source.store, image)
    blobs: list[Blob] = [StoreBlob(layer, source.store) for layer in image.layers]
    blobs += [
        JsonBlob(image.config, image.config_bytes),
        JsonBlob(image.manifest, image.manifest_bytes),
    ]
    referrers = source_referrers(source.store, image.manifest, note)
    return Member(source.text, platform, image.manifest, tuple(blobs), referrers)


def check_platforms(members: Sequence[Member]) -> None:
    """An index holds one image per platform: a repeat names both sources."""
    seen: dict[Platform, str] = {}
    for member in members:
        if member.platform in seen:
            raise UsageError(
                f"'{seen[member.platform]}' and '{member.source}' are both "
                f"{member.platform} images; an index holds one image per platform"
            )
        seen[member.platform] = member.source


def make_index(members: Sequence[Member], annotations: Mapping[str, str], fmt: str) -> JsonBlob:
    """The index document; a Docker manifest list only of Docker manifests, unannotated."""
    if fmt == "docker":
        others = [m.source for m in members if m.manifest.media_type != DOCKER_MANIFEST]
        if others:
            raise UsageError(
                f"--format docker makes a Docker manifest list, which can only name Docker "
                f"manifests; not Docker: {', '.join(others)}. Leave out --format docker, "
                'or build the sources with format = "docker"'
            )
        if annotations:
            raise UsageError("a Docker manifest list has no annotations; drop --annotation")
    return index_of([(m.manifest, m.platform) for m in members], annotations, fmt)
