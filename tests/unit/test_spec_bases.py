"""image.toml keys of the bases issue: base syntax, deletions, tar, users, groups, xattrs."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.errors import SpecError
from builder.spec.load import load, parse_base
from builder.spec.values import BaseRef

CTX = Path("/ctx")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("oci:img", BaseRef("oci", CTX / "img")),
        ("oci:img:v1", BaseRef("oci", CTX / "img", "v1")),
        ("oci:/abs/img:v1", BaseRef("oci", Path("/abs/img"), "v1")),
        ("oci-archive:b.tar:1.0", BaseRef("oci-archive", CTX / "b.tar", "1.0")),
        ("docker-archive:b.tar", BaseRef("docker-archive", CTX / "b.tar")),
        (
            "docker-archive:b.tar:busybox:1.36",
            BaseRef("docker-archive", CTX / "b.tar", "busybox:1.36"),
        ),
        ("docker-archive:b.tar:@1", BaseRef("docker-archive", CTX / "b.tar", "@1")),
        ("alpine", BaseRef("docker", Path(), "", "docker.io/library/alpine")),
        ("docker://alpine:3.20", BaseRef("docker", Path(), "", "docker.io/library/alpine:3.20")),
        ("localhost:5000/a/b:1", BaseRef("docker", Path(), "", "localhost:5000/a/b:1")),
        (
            "ghcr.io/x/y@sha256:" + "a" * 64,
            BaseRef("docker", Path(), "", "ghcr.io/x/y@sha256:" + "a" * 64),
        ),
    ],
)
def test_parse_base(text: str, expected: BaseRef) -> None:
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
    assert spec.base_ref == BaseRef("oci", tmp_path / "b", "v1")
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
