"""A build's supply-chain artifacts: each platform image's SBOMs and provenance.

The SBOM reads the image's final filesystem (the base's layers and bale's);
the provenance names the image, its base and the build's inputs. Each becomes
a referrer of its platform manifest, kept in ``BuildResult.referrers`` for
the outputs (and for a push).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from builder.commands.basescan import BaseScans
from builder.commands.ownfiles import own_layer
from builder.image.assemble import Image, rfc3339
from builder.layer.entries import Entry
from builder.layer.filebody import Body, Reading
from builder.model import Digest, Platform
from builder.spec.values import ImageSpec
from builder.supply.attachment import Attachment, Referrer, attach
from builder.supply.ci import ci_context
from builder.supply.inventory import Named, named, unpublished
from builder.supply.provenance import BuildFacts, inputs_digest, provenance_attachment
from builder.supply.rootfs import layer_reading
from builder.supply.sbom import (
    PICKER,
    inventory_of_members,
    media_type,
    memo_key,
    sbom_attachments,
    wanted,
)

DEFAULT_IMAGE_NAME = "image"


class Kept(Protocol):
    """What the registry caches keep for SBOMs (``LayerResolver`` is one)."""

    def recall(self, key: str, media_type: str) -> bytes | None:
        """The SBOM kept under memo ``key``, or None."""
        ...

    def fetch_records(self, diff_ids: Sequence[Digest]) -> None:
        """The file-hashes records of these layers into the local cache, if kept."""
        ...


@dataclass(frozen=True, slots=True)
class Built:
    """One platform's image, where bale's own layers start, its base, its SBOMs and
    their memo keys (``supply.sbom.memo_key``, one per SBOM, for ``--cache-to``)."""

    image: Image
    own_from: int
    base: Named | None
    sboms: tuple[Attachment, ...] = ()
    sbom_keys: tuple[str, ...] = ()


def image_named(spec: ImageSpec, image: Image) -> Named:
    """How the SBOM and provenance name the image: ``[image] repository``, else "image"."""
    digest = image.manifest.descriptor.digest
    if spec.repository:
        return named(spec.repository, digest, image.platform)
    return unpublished(DEFAULT_IMAGE_NAME, DEFAULT_IMAGE_NAME, digest, image.platform)


def base_scans(spec: ImageSpec, platform: Platform, cache_root: Path | None) -> BaseScans | None:
    """The SBOM's scan of the base layers of the ``platform`` image; None without an SBOM.

    Given to the build's planning, it takes its members from the pass that
    checks or plans the base layers, when there is one.
    """
    if not spec.sbom:
        return None
    return BaseScans(wanted, _where(spec, platform), cache_root, PICKER)


def _where(spec: ImageSpec, platform: Platform) -> str:
    """How the SBOM's errors name the image."""
    return f"{spec.path}: the {platform} image on {spec.base}"


def own_reading() -> Reading:
    """What the SBOM takes of each file of bale's own layers, as the build writes them."""
    return layer_reading(True, wanted, PICKER)


def with_sboms(
    spec: ImageSpec,
    built: Built,
    created: int,
    own: Sequence[Sequence[Entry]],
    cache_root: Path | None = None,
    scans: BaseScans | None = None,
    bodies: Sequence[Mapping[str, Body] | None] = (),
    kept: Kept | None = None,
) -> Built:
    """``built`` with one SBOM per format ``spec.sbom`` asks for (none: unchanged).

    ``kept``: the registry caches; when they keep every SBOM of this very image
    (same memo keys), those are taken and no layer is read.

    The base's layers come from ``scans`` (``base_scans``: what the build's
    pass over them took, else the cache, else their blobs); bale's own
    (``own``: the entries of each) from what the build took of their files
    as it wrote them (``bodies``, one per layer; None for a layer it reused),
    else from their sources, never reading the new blobs back;
    ``cache_root`` (the layer cache) keeps the base's scans and bale's file
    hashes for the next build.
    """
    if not spec.sbom:
        return built
    image = built.image
    manifest = image.manifest.descriptor
    name, time = image_named(spec, image), rfc3339(created)
    keys = tuple(
        memo_key(name, manifest, image.platform, time, built.base, fmt) for fmt in spec.sbom
    )
    recalled = _recalled(keys, spec.sbom, kept)
    if recalled is not None:
        return Built(image, built.own_from, built.base, recalled, keys)
    own_layers = image.layers[built.own_from :]
    if kept is not None:
        kept.fetch_records([layer.diff_id for layer in own_layers])
    where = _where(spec, image.platform)
    scans = scans or BaseScans(wanted, where, cache_root, PICKER)
    members = [scans.members(layer) for layer in image.layers[: built.own_from]]
    taken = list(bodies) or [None] * len(own)
    members += [
        own_layer(layer.diff_id, entries, wanted, cache_root, PICKER, made)
        for layer, entries, made in zip(own_layers, own, taken, strict=True)
    ]
    inventory = inventory_of_members(
        name, manifest, image.platform, time, built.base, members, where
    )
    made = tuple(sbom_attachments(inventory, spec.sbom))
    return Built(image, built.own_from, built.base, made, keys)


def _recalled(
    keys: Sequence[str], formats: Sequence[str], kept: Kept | None
) -> tuple[Attachment, ...] | None:
    """Every SBOM as a registry cache keeps it, or None (then all are made)."""
    found = []
    for key, fmt in zip(keys, formats, strict=True):
        kind = media_type(fmt)
        data = kept.recall(key, kind) if kept is not None else None
        if data is None:
            return None
        found.append(Attachment(kind, kind, data))
    return tuple(found)


def referrers(
    spec: ImageSpec, builds: Sequence[Built], created: int, options: Mapping[str, Any]
) -> tuple[Referrer, ...]:
    """Every image's SBOMs and provenance, as referrers of their platform manifests.

    Each platform gets its own provenance (its manifest the subject, its base
    and its layers the dependencies), so an index joined from single-platform
    builds carries the same referrers as a direct multi-platform build.
    """
    ci = ci_context(os.environ)
    spec_digest = Digest.of(spec.path.read_bytes())
    time = rfc3339(created)
    found = []
    for built in builds:
        attachments = list(built.sboms)
        if spec.provenance:
            facts = _facts(spec, spec_digest, built, options)
            attachments.append(provenance_attachment(facts, ci))
        manifest = built.image.manifest.descriptor
        found += [attach(attachment, manifest, time) for attachment in attachments]
    return tuple(found)


def _facts(
    spec: ImageSpec, spec_digest: Digest, built: Built, options: Mapping[str, Any]
) -> BuildFacts:
    image = built.image
    own = [layer.diff_id for layer in image.layers[built.own_from :]]
    recorded = {**options, "platform": str(image.platform)}
    bases = (built.base,) if built.base is not None else ()
    return BuildFacts(
        (image_named(spec, image),),
        spec.path.name,
        spec_digest,
        recorded,
        bases,
        inputs_digest(own),
    )
