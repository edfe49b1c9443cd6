"""``bale sbom SRC``: the SBOM of any image bale can read, computed from its layers.

The layers at the end whose history step is bale's (``bale: layer NAME``)
count as bale's own (their files are listed); the base is named by the
manifest's ``org.opencontainers.image.base.*`` annotations when it has them.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

from builder.commands.bases import BaseLayer, image_layers
from builder.errors import ImageError, UsageError
from builder.formats.locate import open_source
from builder.image.assemble import rfc3339
from builder.image.store import resolve_image
from builder.layer.build import CREATED_BY_PREFIX
from builder.model import ANNOTATION_BASE_DIGEST, ANNOTATION_BASE_NAME, Digest, Platform
from builder.registry.options import Clients
from builder.spec.values import SBOM_FORMATS
from builder.supply.inventory import Named, named
from builder.supply.sbom import inventory_of, sbom_document


@dataclass(frozen=True, slots=True)
class SbomOptions:
    source: str
    format: str = SBOM_FORMATS[0]
    platform: Platform | None = None
    clients: Clients | None = None


def image_sbom(options: SbomOptions) -> bytes:
    """The SBOM document of ``options.source`` (one platform) in ``options.format``."""
    if options.format not in SBOM_FORMATS:
        raise UsageError(f"--format '{options.format}': use one of {', '.join(SBOM_FORMATS)}")
    with open_source(options.source, options.clients) as source:
        image = resolve_image(source.store, source.root, options.platform)
        layers = image_layers(image, source.store)
        manifest = image.manifest
        platform = image.platform
        annotations = _annotations(image.manifest_bytes)
        inventory = inventory_of(
            named(options.source, manifest.digest, platform),
            manifest,
            platform,
            _created(image.config_json),
            _base(annotations, platform),
            layers,
            own_from(layers),
        )
        return sbom_document(inventory, options.format)


def own_from(layers: tuple[BaseLayer, ...]) -> int:
    """The index where the trailing run of bale's layers starts (the end if none)."""
    start = len(layers)
    while start and layers[start - 1].created_by.startswith(CREATED_BY_PREFIX):
        start -= 1
    return start


def _annotations(manifest_bytes: bytes) -> dict[str, Any]:
    found = json.loads(manifest_bytes).get("annotations")
    return found if isinstance(found, dict) else {}


def _base(annotations: dict[str, Any], platform: Platform) -> Named | None:
    name, digest = annotations.get(ANNOTATION_BASE_NAME), annotations.get(ANNOTATION_BASE_DIGEST)
    if not isinstance(name, str) or not isinstance(digest, str):
        return None
    try:
        return named(name, Digest.parse(digest), platform)
    except ImageError:
        return None


_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)$")


def _created(config: dict[str, Any]) -> str:
    """The config's ``created`` to the second (what SPDX accepts), else the epoch."""
    text = config.get("created")
    match = _TIME.match(text) if isinstance(text, str) else None
    if match is None:
        return rfc3339(0)
    zone = "+00:00" if match.group(2) == "Z" else match.group(2)
    try:
        moment = dt.datetime.fromisoformat(match.group(1) + zone)
    except ValueError:
        return rfc3339(0)
    return rfc3339(max(0, int(moment.timestamp())))
