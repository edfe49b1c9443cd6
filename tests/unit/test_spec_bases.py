"""image.toml keys of the bases issue: base syntax, deletions, tar, users, groups, xattrs."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.errors import SpecError
from builder.spec.load import load, parse_base
from builder.spec.locations import Location

CTX = Path("/ctx")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("oci:img", Location("oci", CTX / "img")),
        ("oci:img:v1", Location("oci", CTX / "img", "v1")),
        ("oci:/abs/img:v1", Location("oci", Path("/abs/img"), "v1")),
        ("oci-archive:b.tar:1.0", Location("oci-archive", CTX / "b.tar", "1.0")),
        ("docker-archive:b.tar", Location("docker-archive", CTX / "b.tar")),
        (
            "docker-archive:b.tar:busybox:1.36",
            Location("docker-archive", CTX / "b.tar", "1.36", "busybox"),
        ),
        ("docker-archive:b.tar:@1", Location("docker-archive", CTX / "b.tar", "@1")),
        ("alpine", Location("docker", Path(), "", "docker.io/library/alpine")),
        ("docker://alpine:3.20", Location("docker", Path(), "3.20", "docker.io/library/alpine")),
        ("localhost:5000/a/b:1", Location("docker", Path(), "1", "localhost:5000/a/b")),
        (
            "ghcr.io/x/y@sha256:" + "a" * 64,
            Location("docker", Path(), "", "ghcr.io/x/y", "sha256:" + "a" * 64),
        ),
    ],
)
def test_parse_base(text: str, expected: Location) -> None:
    assert parse_base(text, CTX) == expected


@pytest.mark.parametrize("text", ["docker://Alpine", "a/B", "oci:", "tarball:/x", "a:-x"])
def test_parse_base_invalid(text: str) -> None:
    with pytest.raises(SpecError):
        parse_base(text, CTX)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "image.toml"
    path.write_text(text)
    return path


def test_layer_keys(tmp_path: Path) -> None:
    spec = load(
        write(
            tmp_path,
            '[image]\nbase = "oci:b:v1"\n'
            '[[users]]\nname = "app"\nuid = 10\n'
            '[[groups]]\nname = "app"\ngid = 10\nmembers = ["app"]\n'
            '[[layers]]\ndelete = ["/etc/apt/"]\nopaque = ["/x"]\nmissing_ok = true\n'
            'tar = "r.tar"\ntar_owner = "app"\n'
            '[[layers.content]]\ndst = "/a"\ntext = ""\nxattrs = { "user.k" = "v" }\n'
            'capabilities = ["cap_chown+ep"]\n',
        )
    )
    assert spec.base_ref == Location("oci", tmp_path / "b", "v1")
    layer = spec.layers[0]
    assert (layer.delete, layer.opaque, layer.missing_ok, layer.tar) == (
        ("/etc/apt",),
        ("/x",),
        True,
        "r.tar",
    )
    assert [k for k, _ in layer.content[0].xattrs] == ["security.capability", "user.k"]
    assert spec.users[0].gid == 10 and spec.users[0].home == "/nonexistent"
    assert spec.groups[0].members == ("app",)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[image]\nbase = "docker://x/Y"', "image.base: unsupported base"),
        ('[[layers]]\ntar = "../x.tar"', "escapes the build context"),
        ('[[layers]]\ndelete = ["etc"]', "is not absolute"),
        ('[[users]]\nname = "A b"\nuid = 1\n[[layers]]', "invalid name"),
        ('[[users]]\nname = "a"\n[[layers]]', "expected an id"),
        ('[[groups]]\nname = "g"\ngid = 1\n[[groups]]\nname = "g"\ngid = 2\n[[layers]]', "twice"),
        (
            '[[layers]]\n[[layers.content]]\ndst = "/a"\ntext = ""\nxattrs = { "bad" = "v" }',
            "invalid xattr name",
        ),
        (
            '[[layers]]\n[[layers.content]]\ndst = "/a"\ntext = ""\ncapabilities = ["cap_x+ep"]',
            "unknown capability",
        ),
    ],
)
def test_invalid(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        load(write(tmp_path, body))
