"""``--output`` strings → sink values, checked before any work starts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from builder.errors import UsageError
from builder.spec import TAG

DEFAULT_OUTPUT = "oci:bale-out"
TRANSPORTS = ("oci",)


@dataclass(frozen=True, slots=True)
class Output:
    """Where a build goes: a transport, a path, and an optional tag from ``PATH:TAG``."""

    transport: str
    path: Path
    tag: str = ""

    def __str__(self) -> str:
        return f"{self.transport}:{self.path}" + (f":{self.tag}" if self.tag else "")


def parse_output(text: str) -> Output:
    transport, sep, rest = text.partition(":")
    if not sep or transport not in TRANSPORTS:
        raise UsageError(
            f"--output '{text}': unknown transport; use one of "
            + ", ".join(f"{t}:PATH" for t in TRANSPORTS)
        )
    path, sep, tag = rest.rpartition(":")
    if not sep or "/" in tag or not TAG.match(tag):
        path, tag = rest, ""
    if not path:
        raise UsageError(f"--output '{text}': missing the path after '{transport}:'")
    return Output(transport, Path(path), tag)
