"""security.capability encoding, checked against what setcap writes (VFS revision 2)."""

from __future__ import annotations

import struct

import pytest

from builder.errors import SpecError
from builder.spec.capability import encode_capabilities, parse_capabilities


def words(value: bytes) -> tuple[int, ...]:
    return struct.unpack("<5I", value)


@pytest.mark.parametrize(
    ("clauses", "expected"),
    [
        # setcap cap_net_bind_service=+ep: effective flag, bit 10 permitted
        (["cap_net_bind_service=+ep"], (0x02000001, 1 << 10, 0, 0, 0)),
        (["cap_net_raw+p"], (0x02000000, 1 << 13, 0, 0, 0)),
        (["cap_chown,cap_kill=+eip"], (0x02000001, 0b100001, 0b100001, 0, 0)),
        (["cap_setfcap=+i"], (0x02000000, 0, 1 << 31, 0, 0)),
        # capabilities 32+ go in the high words
        (["cap_bpf=+ep"], (0x02000001, 0, 0, 1 << (39 - 32), 0)),
        (["cap_net_raw,cap_kill+ep cap_kill-ep"], (0x02000001, 1 << 13, 0, 0, 0)),
        (["CAP_NET_ADMIN=ep"], (0x02000001, 1 << 12, 0, 0, 0)),
    ],
)
def test_encode(clauses: list[str], expected: tuple[int, ...]) -> None:
    value = encode_capabilities(clauses)
    assert len(value) == 20
    assert words(value) == expected


def test_setcap_bytes() -> None:
    # bytes read back with os.getxattr after `setcap cap_net_bind_service=+ep FILE`
    expected = bytes.fromhex("0100000200040000000000000000000000000000")
    assert encode_capabilities(["cap_net_bind_service=+ep"]) == expected


@pytest.mark.parametrize(
    ("clauses", "message"),
    [
        (["cap_nope=+ep"], "unknown capability 'cap_nope'"),
        (["cap_net_raw"], "invalid capability clause"),
        (["cap_net_raw=+x"], "invalid capability clause"),
        (["cap_net_raw=+e"], "must also be permitted"),
    ],
)
def test_invalid(clauses: list[str], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        encode_capabilities(clauses)


def test_all() -> None:
    sets = parse_capabilities(["all=p"])
    assert sets["p"] == set(range(41))
