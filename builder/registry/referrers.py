"""Referrers on a registry: push artifact manifests after their subject, and list them.

A registry with the OCI 1.1 referrers API indexes a pushed manifest's
``subject`` itself (it answers ``OCI-Subject``, or its ``GET /v2/<name>/referrers/
<digest>`` answers). Anywhere else bale keeps the referrers tag scheme of the
distribution spec: the tag ``sha256-<hex>`` holds an image index of the
subject's referrers. bale reads that index first and only adds to it, so the
entries other tools (cosign, oras, buildx) put there are kept.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from builder.errors import ImageError, RegistryError
from builder.image.documents import parse_json
from builder.model import OCI_INDEX, Descriptor, Digest, canonical_json
from builder.supply.attachment import Referrer

if TYPE_CHECKING:
    from builder.registry.client import RegistryClient


def fallback_tag(digest: Digest) -> str:
    """The referrers tag of a subject: ``<algorithm>-<hex>``."""
    return f"{digest.algorithm}-{digest.encoded}"


def push_referrers(client: RegistryClient, repo: str, referrers: Sequence[Referrer]) -> None:
    """Push each referrer's manifest (its blobs already pushed); keep the fallback tags.

    A manifest the registry has is not sent again. All manifests go first,
    then one tag update per subject (only when entries are missing): a refused
    artifact stops the push before any referrers tag (or image tag) moves.
    """
    unindexed: dict[Digest, list[Descriptor]] = defaultdict(list)
    for referrer in referrers:
        manifest = referrer.manifest
        there = client.manifest_exists(repo, manifest.descriptor.digest)
        if not there and client.push_referrer(repo, manifest.descriptor.media_type, manifest.data):
            continue
        unindexed[referrer.subject.digest].append(referrer.descriptor)
    for subject, descriptors in unindexed.items():
        if client.referrers(repo, subject) is None:
            _add_to_tag(client, repo, subject, descriptors)


def _add_to_tag(
    client: RegistryClient, repo: str, subject: Digest, descriptors: Sequence[Descriptor]
) -> None:
    tag = fallback_tag(subject)
    current = _tag_index(client, repo, subject)
    entries: list[dict[str, Any]] = list(current.get("manifests") or [])
    present = {str(entry.get("digest")) for entry in entries}
    added = [d.to_json() for d in descriptors if str(d.digest) not in present]
    if not added and current.get("manifests") is not None:
        return
    index = {**current, "manifests": entries + added}
    client.push_manifest(repo, tag, OCI_INDEX, canonical_json(index))


def _tag_index(client: RegistryClient, repo: str, subject: Digest) -> dict[str, Any]:
    """The index the referrers tag holds now (an empty one where the tag does not exist)."""
    tag = fallback_tag(subject)
    empty: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX}
    if not client.manifest_exists(repo, tag):
        return empty
    manifest = client.get_manifest(repo, tag)
    document = _parse(manifest.data)
    if manifest.media_type != OCI_INDEX or document is None:
        raise RegistryError(
            f"{client.host}/{repo}:{tag} holds a {manifest.media_type or 'non-index'} document, "
            "not the image index of referrers that tag is reserved for; bale will not "
            "overwrite it: delete or move that tag, then push again"
        )
    return document


def list_referrers(client: RegistryClient, repo: str, subject: Digest) -> list[Descriptor]:
    """The referrers of ``subject``: from the API where it answers, else from the tag."""
    found = client.referrers(repo, subject)
    if found is None:
        found = list(_tag_index(client, repo, subject).get("manifests") or [])
    return [Descriptor.from_json(item) for item in found]


def _parse(data: bytes) -> dict[str, Any] | None:
    try:
        document = parse_json(data, "")
    except ImageError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("manifests", []), list):
        return None
    return document
