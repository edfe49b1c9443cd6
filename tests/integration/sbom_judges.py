"""Independent judges of SBOMs and helpers to read bale's referrers from a layout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from tests.helpers import referrers

SPDX = "application/spdx+json"
CYCLONEDX = "application/vnd.cyclonedx+json"
IN_TOTO = "application/vnd.in-toto+json"
# The `pyspdxtools` command, run by this interpreter wherever its script was installed.
PYSPDXTOOLS = "import sys; from spdx_tools.spdx.clitools.pyspdxtools import main; sys.exit(main())"


def spdx_valid(document: bytes, work: Path) -> None:
    """spdx-tools' ``pyspdxtools -i`` (parse and validate) accepts the document."""
    path = work / "doc.spdx.json"
    path.write_bytes(document)
    run = subprocess.run(
        [sys.executable, "-c", PYSPDXTOOLS, "-i", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def cyclonedx_valid(document: bytes) -> None:
    """cyclonedx-python-lib's strict JSON schema validator (CycloneDX 1.6) accepts it."""
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(document.decode())
    assert error is None, str(error)[:2000]


def artifacts(layout: Path) -> dict[str, list[tuple[dict[str, Any], bytes]]]:
    """The layout's referrers by artifact type: (artifact manifest, payload) each."""
    found: dict[str, list[tuple[dict[str, Any], bytes]]] = {}
    for entry, manifest, payload in referrers(layout):
        assert entry["artifactType"] == manifest["artifactType"]
        found.setdefault(manifest["artifactType"], []).append((manifest, payload))
    return found


def packages(spdx: bytes, purl_type: str) -> set[tuple[str, str]]:
    """(name, version) of the SPDX packages whose purl is of ``purl_type`` (deb, pypi...)."""
    document = json.loads(spdx)
    found = set()
    for package in document["packages"]:
        purls = [r["referenceLocator"] for r in package.get("externalRefs", [])]
        if any(p.startswith(f"pkg:{purl_type}/") for p in purls):
            found.add((package["name"], package.get("versionInfo", "")))
    return found
