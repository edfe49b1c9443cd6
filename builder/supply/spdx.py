"""An inventory → an SPDX 2.3 JSON document (https://spdx.github.io/spdx-spec/v2.3/).

The image is the described package and CONTAINS every package found and
every file bale's layers add; it is a DESCENDANT_OF its base. Packages are
not file-analysed (their files are not listed); the image package is, with
the verification code of bale's files. Each package's ``sourceInfo`` names
the record and the layer it came from.
"""

from __future__ import annotations

import hashlib
from typing import Any

from builder import __version__
from builder.model import canonical_json
from builder.supply.ids import document_uuid, file_id, package_id
from builder.supply.inventory import Inventory, Named
from builder.supply.licenses import License, spdx_license
from builder.supply.packages import Package
from builder.supply.rootfs import FileRecord

MEDIA_TYPE = "application/spdx+json"
IMAGE_ID = "SPDXRef-Image"
BASE_ID = "SPDXRef-Base"
NOASSERTION = "NOASSERTION"


def _purl_ref(purl: str) -> dict[str, str]:
    kind = {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl"}
    return {**kind, "referenceLocator": purl}


def _oci_package(spdx_id: str, named: Named) -> dict[str, Any]:
    return {
        "SPDXID": spdx_id,
        "name": named.name,
        "versionInfo": str(named.digest),
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "primaryPackagePurpose": "CONTAINER",
        "externalRefs": [_purl_ref(named.purl)],
    }


def _package(package: Package, license: License | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "SPDXID": package_id(package),
        "name": package.name,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": license.expression if license else NOASSERTION,
        "copyrightText": NOASSERTION,
        "sourceInfo": f"{package.ecosystem} record /{package.path} in layer {package.layer}",
        "externalRefs": [_purl_ref(package.purl)],
    }
    if package.version:
        out["versionInfo"] = package.version
    return out


def _file(record: FileRecord, spdx_id: str) -> dict[str, Any]:
    return {
        "SPDXID": spdx_id,
        "fileName": f"./{record.path}",
        "checksums": [
            {"algorithm": "SHA1", "checksumValue": record.sha1},
            {"algorithm": "SHA256", "checksumValue": record.sha256},
        ],
        "licenseConcluded": NOASSERTION,
        "copyrightText": NOASSERTION,
        "comment": f"added by bale in layer {record.layer}",
    }


def verification_code(files: tuple[FileRecord, ...]) -> str:
    """SPDX's package verification code: sha1 of the sorted sha1s of its files."""
    return hashlib.sha1("".join(sorted(f.sha1 for f in files)).encode()).hexdigest()


def spdx_document(inventory: Inventory) -> bytes:
    """The SPDX 2.3 JSON bytes of ``inventory`` (canonical JSON: sorted keys)."""
    image = _oci_package(IMAGE_ID, inventory.image)
    if inventory.files:
        image["filesAnalyzed"] = True
        image["packageVerificationCode"] = {
            "packageVerificationCodeValue": verification_code(inventory.files)
        }
    packages = [image]
    relationships = [_rel("SPDXRef-DOCUMENT", "DESCRIBES", IMAGE_ID)]
    if inventory.base is not None:
        packages.append(_oci_package(BASE_ID, inventory.base))
        relationships.append(_rel(IMAGE_ID, "DESCENDANT_OF", BASE_ID))
    extracted: dict[str, str] = {}
    for package in inventory.packages:
        license = spdx_license(package.license)
        if license is not None:
            extracted.update(license.extracted)
        packages.append(_package(package, license))
        relationships.append(_rel(IMAGE_ID, "CONTAINS", package_id(package)))
    file_ids = [file_id(f) for f in inventory.files]
    relationships += [_rel(IMAGE_ID, "CONTAINS", spdx_id) for spdx_id in file_ids]
    uuid = document_uuid("spdx", str(inventory.manifest.digest))
    document: dict[str, Any] = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{inventory.image.name} {inventory.platform}",
        "documentNamespace": f"https://spdx.org/spdxdocs/bale-{uuid}",
        "creationInfo": {"created": inventory.created, "creators": [f"Tool: bale-{__version__}"]},
        "packages": packages,
        "files": [_file(f, i) for f, i in zip(inventory.files, file_ids, strict=True)],
        "relationships": relationships,
    }
    if extracted:
        document["hasExtractedLicensingInfos"] = [
            {"licenseId": ref, "extractedText": text} for ref, text in sorted(extracted.items())
        ]
    return canonical_json(document)


def _rel(element: str, kind: str, related: str) -> dict[str, str]:
    return {"spdxElementId": element, "relationshipType": kind, "relatedSpdxElement": related}
