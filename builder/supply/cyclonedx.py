"""An inventory → a CycloneDX 1.6 JSON BOM (https://cyclonedx.org/docs/1.6/json/).

The image is ``metadata.component`` (a container); its base is a container
component it depends on; packages are library components and bale's files
are file components with their SHA-256. Properties name each component's
record and layer.
"""

from __future__ import annotations

from typing import Any

from builder import __version__
from builder.model import canonical_json
from builder.supply.ids import document_uuid, file_id, package_id
from builder.supply.inventory import Inventory, Named
from builder.supply.licenses import spdx_license
from builder.supply.packages import Package
from builder.supply.rootfs import FileRecord

MEDIA_TYPE = "application/vnd.cyclonedx+json"
IMAGE_REF = "image"
BASE_REF = "base"


def _container(ref: str, named: Named) -> dict[str, Any]:
    return {
        "bom-ref": ref,
        "type": "container",
        "name": named.name,
        "version": str(named.digest),
        "purl": named.purl,
    }


def _licenses(declared: str) -> list[dict[str, Any]]:
    license = spdx_license(declared)
    if license is None:
        return []
    if license.is_spdx:
        return [{"expression": license.expression}]
    return [{"license": {"name": " ".join(declared.split())}}]


def _library(package: Package) -> dict[str, Any]:
    out: dict[str, Any] = {
        "bom-ref": package_id(package).removeprefix("SPDXRef-"),
        "type": "library",
        "name": package.name,
        "purl": package.purl,
        "properties": [
            {"name": "bale:ecosystem", "value": package.ecosystem},
            {"name": "bale:layer", "value": str(package.layer)},
            {"name": "bale:path", "value": f"/{package.path}"},
        ],
    }
    if package.version:
        out["version"] = package.version
    licenses = _licenses(package.license)
    if licenses:
        out["licenses"] = licenses
    return out


def _file(record: FileRecord) -> dict[str, Any]:
    return {
        "bom-ref": file_id(record).removeprefix("SPDXRef-"),
        "type": "file",
        "name": f"/{record.path}",
        "hashes": [
            {"alg": "SHA-1", "content": record.sha1},
            {"alg": "SHA-256", "content": record.sha256},
        ],
        "properties": [{"name": "bale:layer", "value": str(record.layer)}],
    }


def cyclonedx_document(inventory: Inventory) -> bytes:
    """The CycloneDX 1.6 JSON bytes of ``inventory`` (canonical JSON: sorted keys)."""
    image = _container(IMAGE_REF, inventory.image)
    image["properties"] = [{"name": "bale:platform", "value": str(inventory.platform)}]
    components = []
    depends = []
    if inventory.base is not None:
        components.append(_container(BASE_REF, inventory.base))
        depends.append(BASE_REF)
    components += [_library(p) for p in inventory.packages]
    components += [_file(f) for f in inventory.files]
    uuid = document_uuid("cyclonedx", str(inventory.manifest.digest))
    document = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{uuid}",
        "version": 1,
        "metadata": {
            "timestamp": inventory.created,
            "tools": {
                "components": [{"type": "application", "name": "bale", "version": __version__}]
            },
            "component": image,
        },
        "components": components,
        "dependencies": [{"ref": IMAGE_REF, "dependsOn": depends}]
        + [{"ref": BASE_REF, "dependsOn": []} for _ in depends],
    }
    return canonical_json(document)
