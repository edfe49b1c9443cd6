"""Judges shared by the tests: OCI JSON schemas, blob re-checks, umoci unpack, runc."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from tests.conftest import require_tool

SCHEMAS = Path(__file__).parent / "oci-schemas"
_BASE = "https://oci-schemas.test/"
SCHEMA_FILES = {
    "application/vnd.oci.image.manifest.v1+json": "image-manifest-schema.json",
    "application/vnd.oci.image.index.v1+json": "image-index-schema.json",
    "application/vnd.oci.image.config.v1+json": "config-schema.json",
    "layout": "image-layout-schema.json",
}


def _strip_ids(node: Any) -> Any:
    """Nested draft-04 'id's would move the base URI; relative refs want the file's."""
    if isinstance(node, dict):
        return {k: _strip_ids(v) for k, v in node.items() if not (k == "id" and isinstance(v, str))}
    if isinstance(node, list):
        return [_strip_ids(v) for v in node]
    return node


def _registry() -> Registry:
    resources = []
    for path in SCHEMAS.glob("*.json"):
        schema = _strip_ids(json.loads(path.read_text()))
        resources.append((_BASE + path.name, Resource.from_contents(schema, DRAFT4)))
    return Registry().with_resources(resources)


_REGISTRY = _registry()


def validate(kind: str, document: Any) -> None:
    """Raise jsonschema.ValidationError if ``document`` breaks the OCI schema of ``kind``."""
    name = SCHEMA_FILES[kind]
    schema = _REGISTRY.contents(_BASE + name)
    validator = jsonschema.Draft4Validator(
        {"$ref": _BASE + name, **{k: v for k, v in schema.items() if k == "definitions"}},
        registry=_REGISTRY,
        format_checker=jsonschema.FormatChecker(),
    )
    validator.validate(document)


def blob(layout: Path, digest: str) -> bytes:
    algorithm, encoded = digest.split(":")
    return (layout / "blobs" / algorithm / encoded).read_bytes()


def check_layout(layout: Path) -> list[dict[str, Any]]:
    """Validate every document and re-check every blob reachable from index.json.

    Returns the manifests found (each once, in index order), for further checks.
    """
    validate("layout", json.loads((layout / "oci-layout").read_text()))
    index = json.loads((layout / "index.json").read_text())
    validate("application/vnd.oci.image.index.v1+json", index)
    manifests = []
    pending = list(index["manifests"])
    seen: set[str] = set()
    while pending:
        descriptor = pending.pop(0)
        if descriptor["digest"] in seen:
            continue
        seen.add(descriptor["digest"])
        data = _checked(layout, descriptor)
        document = json.loads(data)
        media_type = descriptor["mediaType"]
        if media_type in SCHEMA_FILES:
            validate(media_type, document)
        if "manifests" in document:
            pending.extend(document["manifests"])
            continue
        if document["config"]["mediaType"] == EMPTY:
            _check_artifact(layout, document)
            continue
        manifests.append(document)
        config = json.loads(_checked(layout, document["config"]))
        validate(document["config"]["mediaType"], config)
        assert len(config["rootfs"]["diff_ids"]) == len(document["layers"])
        for layer in document["layers"]:
            _checked(layout, layer)
    return manifests


EMPTY = "application/vnd.oci.empty.v1+json"


def _check_artifact(layout: Path, document: dict[str, Any]) -> None:
    """An OCI 1.1 artifact manifest: empty config, its blobs intact, its subject present."""
    assert _checked(layout, document["config"]) == b"{}"
    assert document["artifactType"]
    for layer in document["layers"]:
        _checked(layout, layer)
    _checked(layout, document["subject"])


def referrers(layout: Path) -> list[tuple[dict[str, Any], dict[str, Any], bytes]]:
    """Each artifact listed in index.json: its entry, its manifest and its one payload."""
    found = []
    for entry in json.loads((layout / "index.json").read_text())["manifests"]:
        if "artifactType" not in entry:
            continue
        manifest = json.loads(_checked(layout, entry))
        (layer,) = manifest["layers"]
        found.append((entry, manifest, _checked(layout, layer)))
    return found


def _checked(layout: Path, descriptor: dict[str, Any]) -> bytes:
    data = blob(layout, descriptor["digest"])
    assert len(data) == descriptor["size"], descriptor
    assert "sha256:" + hashlib.sha256(data).hexdigest() == descriptor["digest"]
    return data


def umoci_unpack(layout: Path, tag: str, bundle: Path) -> Path:
    """Unpack with umoci (an independent judge); returns the rootfs."""
    umoci = require_tool("umoci")
    subprocess.run(
        [umoci, "unpack", "--image", f"{layout}:{tag}", str(bundle)],
        check=True,
        capture_output=True,
        text=True,
    )
    return bundle / "rootfs"


def runc_run(bundle: Path, name: str) -> subprocess.CompletedProcess[str]:
    """Run an unpacked bundle with runc, no terminal, stdin from /dev/null."""
    runc = require_tool("runc")
    config_path = bundle / "config.json"
    config = json.loads(config_path.read_text())
    config["process"]["terminal"] = False
    config_path.write_text(json.dumps(config))
    with open(os.devnull, "rb") as devnull:
        return subprocess.run(
            [runc, "run", "--bundle", str(bundle), name],
            stdin=devnull,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def write_toml(directory: Path, text: str) -> Path:
    path = directory / "image.toml"
    path.write_text(textwrap.dedent(text))
    return path


def skopeo_raw(ref: str) -> bytes:
    """The bytes skopeo reads for ``ref`` (``--raw``), TLS unverified: an independent reader."""
    return subprocess.run(
        [require_tool("skopeo"), "inspect", "--raw", "--tls-verify=false", ref],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
