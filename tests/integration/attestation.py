"""An unknown/unknown attestation entry, as BuildKit adds, written into a layout's index."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from builder.model import canonical_json
from tests.helpers import blob


def _put(layout: Path, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def add_attestation(layout: Path) -> None:
    """Append an unknown/unknown attestation manifest to the layout's image index."""
    entries = json.loads((layout / "index.json").read_text())["manifests"]
    (entry,) = [e for e in entries if "artifactType" not in e]  # bale's referrers aside
    index = json.loads(blob(layout, entry["digest"]))
    statement = _put(layout, b'{"_type":"https://in-toto.io/Statement/v0.1"}')
    config = {
        "architecture": "unknown",
        "os": "unknown",
        "rootfs": {"type": "layers", "diff_ids": [statement["digest"]]},
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            **_put(layout, canonical_json(config)),
        },
        "layers": [{"mediaType": "application/vnd.in-toto+json", **statement}],
    }
    index["manifests"].append(
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            **_put(layout, canonical_json(manifest)),
            "platform": {"architecture": "unknown", "os": "unknown"},
            "annotations": {
                "vnd.docker.reference.type": "attestation-manifest",
                "vnd.docker.reference.digest": index["manifests"][0]["digest"],
            },
        }
    )
    entry.update(_put(layout, canonical_json(index)))
    (layout / "index.json").write_bytes(canonical_json({"schemaVersion": 2, "manifests": [entry]}))
