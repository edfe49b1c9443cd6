from __future__ import annotations

import pytest

from builder.errors import ImageError
from builder.model import Descriptor, Digest, Platform, canonical_json

HEX = "a" * 64


@pytest.mark.parametrize(
    "text",
    [
        f"sha256:{HEX}",
        "sha512:" + "b" * 128,
        "blake3:" + "c" * 64,
        "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
    ],
)
def test_digest_accepts_the_grammar(text: str) -> None:
    assert str(Digest.parse(text)) == text


@pytest.mark.parametrize(
    "text",
    ["sha256", f"SHA256:{HEX}", "sha256:" + "A" * 64, "sha256:abc", f"sha256:{HEX}0", ":" + HEX],
)
def test_digest_rejects_bad_text(text: str) -> None:
    with pytest.raises(ImageError, match="invalid digest"):
        Digest.parse(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/amd64", "linux/amd64"),
        ("linux/amd64/v1", "linux/amd64"),
        ("linux/amd64/v3", "linux/amd64/v3"),
        ("linux/arm64/v8", "linux/arm64"),
        ("linux/arm", "linux/arm/v7"),
        ("linux/arm/v6", "linux/arm/v6"),
        ("Linux/x86_64", "linux/amd64"),
        ("linux/aarch64", "linux/arm64"),
    ],
)
def test_platform_normalises_like_containerd(text: str, expected: str) -> None:
    assert str(Platform.parse(text)) == expected


@pytest.mark.parametrize("text", ["linux", "linux/", "linux/amd64/v1/x", "lin ux/amd64", ""])
def test_platform_rejects_bad_text(text: str) -> None:
    with pytest.raises(ImageError, match="invalid platform"):
        Platform.parse(text)


def test_platform_json_round_trip() -> None:
    platform = Platform.parse("linux/arm/v6")
    assert platform.to_json() == {"architecture": "arm", "os": "linux", "variant": "v6"}
    assert Platform.from_json(platform.to_json()) == platform


def test_descriptor_json_round_trip() -> None:
    descriptor = Descriptor(
        "application/vnd.oci.image.manifest.v1+json",
        Digest.parse(f"sha256:{HEX}"),
        12,
        {"k": "v"},
        Platform.parse("linux/amd64"),
    )
    assert Descriptor.from_json(descriptor.to_json()) == descriptor


def test_descriptor_from_bad_json_is_a_clear_error() -> None:
    with pytest.raises(ImageError, match="invalid descriptor"):
        Descriptor.from_json({"mediaType": "x", "size": 1})


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": 1, "a": ["é", {"d": 2, "c": 3}]}) == (
        '{"a":["é",{"c":3,"d":2}],"b":1}'.encode()
    )
