"""``--output`` strings → sink values, checked before any work starts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from builder.errors import InvalidReference, UsageError
from builder.reference import parse_reference
from builder.spec.values import TAG

DEFAULT_OUTPUT = "oci:bale-out"
# What inspect, diff and index create read: the output forms, and a registry reference.
SOURCE_FORMS = (
    "oci:DIR[:TAG]",
    "oci-archive:FILE[:TAG]",
    "docker-archive:FILE[:[NAME:]TAG]",
    "docker://REF",
)
TRANSPORTS = ("oci", "oci-archive", "docker-archive", "docker")
_FORMS = (
    "oci:DIR[:TAG]",
    "oci-archive:FILE[:TAG]",
    "docker-archive:FILE[[:NAME]:TAG]",
    "docker://REF[:TAG]",
)
# A repository name as Docker's RepoTags want it, optionally with a registry host[:port].
NAME = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)


@dataclass(frozen=True, slots=True)
class Output:
    """Where a build goes: a transport, a path, an optional tag and a name (the repository
    of a docker-archive; for ``docker``, the normalised ``registry/repository``)."""

    transport: str
    path: Path
    tag: str = ""
    name: str = ""

    def __str__(self) -> str:
        if self.transport == "docker":
            return f"docker://{self.name}" + (f":{self.tag}" if self.tag else "")
        name = f":{self.name}" if self.name else ""
        return f"{self.transport}:{self.path}{name}" + (f":{self.tag}" if self.tag else "")

    @property
    def is_archive(self) -> bool:
        return self.transport in ("oci-archive", "docker-archive")


def registry_output(text: str, where: str) -> Output:
    """``[docker://]REF``: a push to ``REF``'s repository, with its tag if it has one."""
    try:
        ref = parse_reference(text)
    except InvalidReference as exc:
        raise UsageError(f"{where} '{text}': {exc}") from None
    if ref.digest is not None:
        raise UsageError(
            f"{where} '{text}': a push target cannot name a digest; give a tag or none "
            "(the pushed digest is printed)"
        )
    return Output("docker", Path(), ref.tag or "", ref.name)


def parse_output(text: str) -> Output:
    if text.startswith("docker://"):
        return registry_output(text, "--output")
    transport, sep, rest = text.partition(":")
    if not sep or transport not in TRANSPORTS:
        raise UsageError(f"--output '{text}': unknown transport; use one of " + ", ".join(_FORMS))
    path, sep, tag = rest.rpartition(":")
    if not sep or "/" in tag or not TAG.match(tag):
        path, tag = rest, ""
    name = ""
    if transport == "docker-archive" and ":" in path:
        path, _, name = path.partition(":")
        if not NAME.match(name):
            raise UsageError(
                f"--output '{text}': '{name}' is not a repository name; "
                "use lowercase letters, digits and separators, e.g. docker-archive:app.tar:app:v1"
            )
    if not path:
        raise UsageError(f"--output '{text}': missing the path after '{transport}:'")
    return Output(transport, Path(path), tag, name)
