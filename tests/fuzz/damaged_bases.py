"""Damaged base images, each tried with build, inspect, diff and index create.

Run: ``python -m tests.fuzz.damaged_bases [--exec] [--only NAME]``. A damage
is a function that writes the base (``ctx/base``, an OCI layout, or
``ctx/base.tar``, an archive) in one broken way. Every case must end in one
``bale: error:`` line and exit 1, within the sandbox's limits, writing nothing
outside its output and leaving the existing output as it was.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.fuzz.images import (
    BASE_FILES,
    LAYER_GZIP,
    LAYER_TAR,
    OCI_CONFIG,
    Layout,
    docker_archive,
    plain_tar,
    sha256,
    tar_dir,
    with_member,
)
from tests.fuzz.sandbox import Case, Result, run
from tests.fuzz.tar_attacks import report

Damage = Callable[[Path], str]  # writes the base under ctx; returns its location string


def _layout(root: Path, layout: Layout) -> str:
    layout.write(root / "ctx" / "base")
    return "oci:base:base"


def _edit_manifest(edit: Callable[[dict[str, Any]], None]) -> Damage:
    def damage(root: Path) -> str:
        layout = Layout().fill()
        manifest = copy.deepcopy(layout.manifest)
        edit(manifest)
        layout.manifest, layout.manifest_bytes, layout.index, layout.index_bytes = (
            manifest,
            None,
            {},
            None,
        )
        return _layout(root, layout)

    return damage


def _edit_config(edit: Callable[[dict[str, Any]], None]) -> Damage:
    def damage(root: Path) -> str:
        layout = Layout().fill()
        config = copy.deepcopy(layout.config)
        edit(config)
        return _layout(root, Layout(config=config))

    return damage


def _config_bytes(data: bytes) -> Damage:
    return lambda root: _layout(root, Layout(config_bytes=data))


def _manifest_bytes(data: bytes) -> Damage:
    return lambda root: _layout(root, Layout(manifest_bytes=data))


def _index_bytes(data: bytes) -> Damage:
    return lambda root: _layout(root, Layout(index_bytes=data))


def _index_entry(edit: Callable[[dict[str, Any]], None]) -> Damage:
    def damage(root: Path) -> str:
        layout = Layout().fill()
        index = copy.deepcopy(layout.index)
        edit(index["manifests"][0])
        layout.index, layout.index_bytes = index, None
        return _layout(root, layout)

    return damage


def _layer_desc(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(manifest: dict[str, Any]) -> None:
        manifest["layers"][0][key] = value

    return edit


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        document[key] = value

    return edit


def _nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def _replace_blob(make: Callable[[Path, Path], None], which: str = "layer") -> Damage:
    """Write a good layout, then replace one blob file (the layer's or the config's)."""

    def damage(root: Path) -> str:
        layout = Layout().fill()
        location = _layout(root, layout)
        data = layout.layer if which == "layer" else layout.config_bytes
        assert data is not None
        path = layout.blob_path(root / "ctx" / "base", data)
        path.unlink()
        make(path, root)
        return location

    return damage


def _fifo(path: Path, root: Path) -> None:
    os.mkfifo(path)


def _link(target: str) -> Callable[[Path, Path], None]:
    def make(path: Path, root: Path) -> None:
        path.symlink_to(target.replace("ROOT", str(root)))

    return make


def _flip(path: Path, root: Path) -> None:
    data = bytearray(Layout().layer)
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def _bigger(path: Path, root: Path) -> None:
    path.write_bytes(Layout().layer + bytes(1 << 20))


def _directory(path: Path, root: Path) -> None:
    path.mkdir()


def _layer(data: bytes, media_type: str = LAYER_GZIP, diff_id: str = "") -> Damage:
    return lambda root: _layout(root, Layout(layer=data, layer_type=media_type, diff_id=diff_id))


def _archive(kind: str, mangle: Callable[[bytes], bytes] = lambda b: b) -> Damage:
    def damage(root: Path) -> str:
        Layout().write(root / "tmp" / "layout")
        data = (
            tar_dir(root / "tmp" / "layout") if kind == "oci-archive" else docker_archive(Layout())
        )
        (root / "ctx" / "base.tar").write_bytes(mangle(data))
        return f"{kind}:base.tar" + (":base" if kind == "oci-archive" else "")

    return damage


def _edited(document: bytes, edit: Callable[[list[Any]], Any]) -> bytes:
    return json.dumps(edit(json.loads(document))).encode()


def _docker_manifest(edit: Callable[[list[Any]], Any]) -> Damage:
    def damage(root: Path) -> str:
        data = docker_archive(Layout())
        rewritten = with_member(data, "manifest.json", lambda b: _edited(b, edit))
        (root / "ctx" / "base.tar").write_bytes(rewritten)
        return "docker-archive:base.tar"

    return damage


def _archive_fifo(root: Path) -> str:
    os.mkfifo(root / "ctx" / "base.tar")
    return "oci-archive:base.tar:base"


def _missing(name: str) -> Damage:
    def damage(root: Path) -> str:
        location = _layout(root, Layout())
        (root / "ctx" / "base" / name).unlink()
        return location

    return damage


def damages() -> Iterator[tuple[str, Damage]]:
    raw_tar = plain_tar(BASE_FILES)
    yield "index-not-json", _index_bytes(b"{not json")
    yield "index-nested-100000", _index_bytes(_nested(100_000))
    yield "index-manifests-not-list", _index_bytes(b'{"schemaVersion":2,"manifests":5}')
    yield "index-entry-not-object", _index_bytes(b'{"schemaVersion":2,"manifests":[5]}')
    yield "index-size-1e999", _index_entry(_set("size", 1e999))
    yield "index-size-negative", _index_entry(_set("size", -1))
    yield "index-size-string", _index_entry(_set("size", "12"))
    yield "index-digest-blake9", _index_entry(_set("digest", "blake9:abc"))
    yield "index-digest-int", _index_entry(_set("digest", 5))
    yield "index-platform-list", _index_entry(_set("platform", ["linux"]))
    yield "index-annotations-list", _index_entry(_set("annotations", ["a"]))
    yield "index-mediatype-int", _index_entry(_set("mediaType", 7))
    yield "manifest-not-json", _manifest_bytes(b"\xff\xfe not json")
    yield "manifest-nested-100000", _manifest_bytes(_nested(100_000))
    yield "manifest-layers-int", _edit_manifest(_set("layers", 5))
    yield "manifest-layers-object", _edit_manifest(_set("layers", {"a": 1}))
    yield "manifest-layers-strings", _edit_manifest(_set("layers", ["x"]))
    yield "manifest-config-list", _edit_manifest(_set("config", []))
    yield "manifest-layer-size-1e999", _edit_manifest(_layer_desc("size", 1e999))
    yield "manifest-layer-size-2^62", _edit_manifest(_layer_desc("size", 1 << 62))
    yield "manifest-layer-size-small", _edit_manifest(_layer_desc("size", 10))
    yield "manifest-layer-digest-blake9", _edit_manifest(_layer_desc("digest", "blake9:abc"))
    yield (
        "manifest-layer-digest-sha512-absent",
        _edit_manifest(_layer_desc("digest", "sha512:" + "a" * 128)),
    )
    yield "manifest-layer-type-config", _edit_manifest(_layer_desc("mediaType", OCI_CONFIG))
    yield (
        "manifest-layer-type-octet",
        _edit_manifest(_layer_desc("mediaType", "application/octet-stream")),
    )
    yield "manifest-layer-type-int", _edit_manifest(_layer_desc("mediaType", 5))
    yield "manifest-layer-urls-int", _edit_manifest(_layer_desc("urls", 5))
    yield "manifest-annotations-list", _edit_manifest(_set("annotations", [1]))
    yield "config-not-json", _config_bytes(b"nope")
    yield "config-not-object", _config_bytes(b"[1,2]")
    yield "config-nested-100000", _config_bytes(_nested(100_000))
    yield "config-labels-list", _edit_config(lambda c: c["config"].__setitem__("Labels", ["a"]))
    yield "config-env-string", _edit_config(lambda c: c["config"].__setitem__("Env", "A=1"))
    yield "config-env-ints", _edit_config(lambda c: c["config"].__setitem__("Env", [1]))
    yield "config-config-list", _edit_config(_set("config", [1]))
    yield "config-rootfs-list", _edit_config(_set("rootfs", [1]))
    yield "config-diff-ids-int", _edit_config(lambda c: c["rootfs"].__setitem__("diff_ids", 5))
    yield "config-diff-ids-bad", _edit_config(lambda c: c["rootfs"].__setitem__("diff_ids", ["x"]))
    yield (
        "config-diff-ids-extra",
        _edit_config(lambda c: c["rootfs"]["diff_ids"].append(c["rootfs"]["diff_ids"][0])),
    )
    yield "config-history-int", _edit_config(_set("history", 5))
    yield "config-architecture-int", _edit_config(_set("architecture", 5))
    yield "config-os-missing", _edit_config(lambda c: c.pop("os"))
    yield "config-created-garbage", _edit_config(_set("created", "yesterday"))
    yield (
        "config-exposed-ports-list",
        _edit_config(lambda c: c["config"].__setitem__("ExposedPorts", ["80"])),
    )
    yield (
        "config-entrypoint-string",
        _edit_config(lambda c: c["config"].__setitem__("Entrypoint", "/bin/sh")),
    )
    yield (
        "config-type-wrong",
        _edit_manifest(lambda m: m["config"].__setitem__("mediaType", "application/octet-stream")),
    )
    yield "diff-id-mismatch", _layer(gzip.compress(raw_tar, mtime=0), diff_id=sha256(b"other"))
    yield "layer-not-gzip", _layer(raw_tar, LAYER_GZIP, diff_id=sha256(raw_tar))
    yield "layer-gzip-as-tar", _layer(gzip.compress(raw_tar, mtime=0), LAYER_TAR, sha256(raw_tar))
    yield "layer-not-tar", _layer(gzip.compress(b"hello" * 1000, mtime=0))
    yield "layer-bit-flipped", _replace_blob(_flip)
    yield "layer-longer-than-descriptor", _replace_blob(_bigger)
    yield "layer-fifo", _replace_blob(_fifo)
    yield "layer-symlink-dev-zero", _replace_blob(_link("/dev/zero"))
    yield "layer-symlink-host-file", _replace_blob(_link("ROOT/outside/secret"))
    yield "layer-symlink-etc-passwd", _replace_blob(_link("/etc/passwd"))
    yield "layer-directory", _replace_blob(_directory)
    yield "layer-missing", _replace_blob(lambda path, root: None)
    yield "config-fifo", _replace_blob(_fifo, "config")
    yield "config-symlink-dev-zero", _replace_blob(_link("/dev/zero"), "config")
    yield "index-json-missing", _missing("index.json")
    yield "oci-layout-missing", _missing("oci-layout")
    yield "oci-archive-truncated", _archive("oci-archive", lambda b: b[: len(b) // 2])
    yield "oci-archive-garbage", _archive("oci-archive", lambda b: os.urandom(len(b)))
    yield "oci-archive-fifo", _archive_fifo
    yield "docker-archive-truncated", _archive("docker-archive", lambda b: b[: len(b) // 2])
    yield "docker-archive-repotags-int", _docker_manifest(lambda m: [{**m[0], "RepoTags": 5}])
    yield "docker-archive-layers-int", _docker_manifest(lambda m: [{**m[0], "Layers": 5}])
    yield "docker-archive-config-int", _docker_manifest(lambda m: [{**m[0], "Config": 5}])
    yield "docker-archive-manifest-object", _docker_manifest(lambda m: {"a": 1})
    yield "docker-archive-manifest-empty", _docker_manifest(lambda m: [])
    yield (
        "docker-archive-layer-escape",
        _docker_manifest(lambda m: [{**m[0], "Layers": ["../../outside/secret"]}]),
    )
    yield (
        "docker-archive-config-escape",
        _docker_manifest(lambda m: [{**m[0], "Config": "/etc/passwd"}]),
    )


BUILD_TOML = """[image]
base = "{base}"
platforms = ["linux/amd64"]
created = "2024-01-01T00:00:00Z"
[[layers]]
name = "more"
content = [{{ dst = "/x", text = "x" }}]
"""


def _prepare(damage: Damage, with_toml: bool) -> Callable[[Path], None]:
    def prepare(root: Path) -> None:
        (root / "outside" / "secret").write_text("secret\n")
        Layout().write(root / "out" / "layout")
        Layout().write(root / "ctx" / "good")
        location = damage(root)
        (root / "ctx" / "location").write_text(location)
        if with_toml:
            (root / "ctx" / "image.toml").write_text(BUILD_TOML.format(base=location))

    return prepare


def all_cases() -> Iterator[Case]:
    """Each damage with build, inspect, diff and index create (the base location read at run)."""
    for name, damage in damages():
        yield Case(
            f"build/{name}", ("build", "-o", "oci:../out/layout:new"), _prepare(damage, True)
        )
        for command, argv in (
            ("inspect", ("inspect", "--files", "LOCATION")),
            ("diff", ("diff", "oci:good:base", "LOCATION")),
            ("index", ("index", "create", "LOCATION", "-o", "oci:../out/layout:idx")),
        ):
            case = Case(f"{command}/{name}", argv, _prepare(damage, False))
            yield _located(case, damage, command == "diff")


def _located(case: Case, damage: Damage, diff: bool) -> Case:
    """Fill LOCATION in argv with the location the damage writes (computed once, dry)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in ("ctx", "out", "outside", "tmp"):
            (root / name).mkdir()
        location = damage(root)
    argv = tuple(location if a == "LOCATION" else a for a in case.argv)
    # diff compares what two images say; it reads a layer only when the diff_ids differ,
    # so damage it never reads may give "identical" (0) or a list of differences (1).
    return Case(case.name, argv, case.prepare, ok_allowed=diff, differs_allowed=diff)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exec", action="store_true", help="run the bale program, not a fork")
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per case")
    args = parser.parse_args(argv)
    chosen = [case for case in all_cases() if args.only in case.name]
    results: list[Result] = [run(c, exec_=args.exec, timeout=args.timeout) for c in chosen]
    return report(results)


if __name__ == "__main__":
    sys.exit(main())
