"""File capabilities: ``setcap``-style text → the ``security.capability`` xattr value.

The value is the kernel's ``vfs_cap_data`` at revision 2: a little-endian
``magic_etc`` word (0x02000000, plus 0x1 when the effective bit is set), then
the permitted and inheritable masks of capabilities 0-31, then of 32-63.
"""

from __future__ import annotations

import re
import struct

from builder.errors import SpecError

VFS_CAP_REVISION_2 = 0x02000000
VFS_CAP_FLAGS_EFFECTIVE = 0x1

# Numbers from linux/capability.h.
CAPABILITIES = (
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
)
_NUMBER = {f"cap_{name}": number for number, name in enumerate(CAPABILITIES)}
_CLAUSE = re.compile(r"^([a-z0-9_,]+)((?:[=+-][eip]*)+)$")
_OP = re.compile(r"([=+-])([eip]*)")


def _names(text: str, clause: str) -> list[int]:
    if text == "all":
        return list(_NUMBER.values())
    numbers = []
    for name in text.split(","):
        if name not in _NUMBER:
            raise SpecError(
                f"unknown capability '{name}' in '{clause}': use names like cap_net_bind_service"
            )
        numbers.append(_NUMBER[name])
    return numbers


def parse_capabilities(clauses: tuple[str, ...] | list[str]) -> dict[str, set[int]]:
    """The effective, permitted and inheritable sets named by ``cap_x,cap_y+ep`` clauses."""
    sets: dict[str, set[int]] = {"e": set(), "p": set(), "i": set()}
    for clause in (c for text in clauses for c in text.split()):
        match = _CLAUSE.match(clause.lower())
        if not match:
            raise SpecError(f"invalid capability clause '{clause}': use e.g. cap_net_raw=+ep")
        numbers = _names(match.group(1), clause)
        for op, flags in _OP.findall(match.group(2)):
            if op == "=":
                for members in sets.values():
                    members.difference_update(numbers)
            for flag in flags:
                if op == "-":
                    sets[flag].difference_update(numbers)
                else:
                    sets[flag].update(numbers)
    return sets


def encode_capabilities(clauses: tuple[str, ...] | list[str]) -> bytes:
    """The 20-byte revision-2 ``security.capability`` value, as ``setcap`` writes it."""
    sets = parse_capabilities(clauses)
    if not sets["e"] <= sets["p"] | sets["i"]:
        raise SpecError(
            "an effective capability must also be permitted or inheritable (e.g. '+ep')"
        )
    permitted = sum(1 << n for n in sets["p"])
    inheritable = sum(1 << n for n in sets["i"])
    magic = VFS_CAP_REVISION_2 | (VFS_CAP_FLAGS_EFFECTIVE if sets["e"] else 0)
    return struct.pack(
        "<5I",
        magic,
        permitted & 0xFFFFFFFF,
        inheritable & 0xFFFFFFFF,
        permitted >> 32,
        inheritable >> 32,
    )
