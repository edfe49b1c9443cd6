"""Image locations: one grammar for ``base =``, ``--output`` and every image a command reads.

::

    oci:PATH[:TAG]                    an OCI image layout directory
    oci-archive:PATH[:TAG]            a tar of an OCI layout
    docker-archive:PATH[:[NAME:]TAG]  a ``docker save`` tarball (reading also takes ``:@N``)
    docker://REF                      a registry image; ``REF`` alone where an image is read

The path ends at the first ':' after the transport, as in skopeo: a path
cannot contain ':' (use a relative path or a symlink). What follows is a tag,
or for docker-archive ``NAME:TAG`` where NAME may hold a ``host:port``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from builder.errors import InvalidReference, UsageError
from builder.reference import TAG, parse_reference

DEFAULT_OUTPUT = "oci:bale-out"
LOCAL_TRANSPORTS = ("oci", "oci-archive", "docker-archive")
SOURCE_FORMS = (
    "oci:DIR[:TAG]",
    "oci-archive:FILE[:TAG]",
    "docker-archive:FILE[:[NAME:]TAG]",
    "docker://REF",
)


@dataclass(frozen=True, slots=True)
class Location:
    """Where an image is or goes. ``name`` is a docker-archive's repository, or for
    ``docker`` the normalised ``registry/repository``; ``digest`` only for ``docker``."""

    transport: str
    path: Path = Path()
    tag: str = ""
    name: str = ""
    digest: str = ""

    @property
    def reference(self) -> str:
        """``name[:tag][@digest]``: the registry reference, or a docker-archive's selector."""
        text = self.name + (f":{self.tag}" if self.name and self.tag else self.tag)
        return text + (f"@{self.digest}" if self.digest else "")

    @property
    def is_archive(self) -> bool:
        return self.transport in ("oci-archive", "docker-archive")

    def __str__(self) -> str:
        if self.transport == "docker":
            return f"docker://{self.reference}"
        return f"{self.transport}:{self.path}" + (f":{self.reference}" if self.reference else "")


def _named(where: str, text: str) -> str:
    return f"{where} '{text}'" if where else f"'{text}'"


# A location an image is written to.
Output = Location


def parse_location(text: str, where: str = "") -> Location:
    """Read ``text`` by the grammar above; ``where`` names it in errors (e.g. ``--output``)."""
    transport, sep, rest = text.partition(":")
    if not sep or transport not in LOCAL_TRANSPORTS:
        return _registry(text, where)
    path, _, selector = rest.partition(":")
    if not path:
        raise UsageError(f"{_named(where, text)}: missing the path after '{transport}:'")
    if transport == "docker-archive":
        name, tag = _archive_selector(selector, text, where)
        return Location(transport, Path(path), tag, name)
    if selector and not TAG.match(selector):
        raise UsageError(
            f"{_named(where, text)}: '{selector}' is not a tag. The path ends at the first ':' "
            f"(write {transport}:PATH:TAG; a path cannot contain ':')"
        )
    return Location(transport, Path(path), selector)


def _archive_selector(selector: str, text: str, where: str) -> tuple[str, str]:
    """``[NAME:]TAG`` or ``@N`` after a docker-archive's path → (name, tag)."""
    if not selector or (selector.startswith("@") and selector[1:].isdigit()):
        return "", selector
    name, _, tag = selector.rpartition(":")
    if not TAG.match(tag):
        raise UsageError(
            f"{_named(where, text)}: '{tag}' is not a tag; write docker-archive:FILE:NAME:TAG, "
            "e.g. docker-archive:app.tar:app:v1 (a path cannot contain ':')"
        )
    if name:
        try:
            ref = parse_reference(name)
        except InvalidReference:
            ref = None
        if ref is None or ref.tag is not None or ref.digest is not None:
            raise UsageError(
                f"{_named(where, text)}: '{name}' is not a repository name; use lowercase "
                "letters, digits and separators, e.g. docker-archive:app.tar:app:v1"
            )
    return name, tag


def _registry(text: str, where: str) -> Location:
    """``[docker://]REF``: a registry image."""
    try:
        ref = parse_reference(text)
    except InvalidReference as exc:
        raise UsageError(
            f"unsupported {_named(where, text)}: {exc}; or use one of " + ", ".join(SOURCE_FORMS)
        ) from None
    return Location("docker", Path(), ref.tag or "", ref.name, str(ref.digest or ""))


def parse_output(text: str) -> Location:
    """An ``--output``: any location but a digest or an archive's ``@N``."""
    if ":" not in text or text.partition(":")[0] not in (*LOCAL_TRANSPORTS, "docker"):
        raise UsageError(
            f"--output '{text}': unknown transport; use one of "
            "oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[[:NAME]:TAG], "
            "docker://REF[:TAG]"
        )
    if text.startswith("docker:") and not text.startswith("docker://"):
        raise UsageError(f"--output '{text}': a registry output is docker://REF")
    return output_location(parse_location(text, "--output"), text, "--output")


def output_location(location: Location, text: str, where: str) -> Location:
    """``location`` checked as a place to write: no digest, no ``@N``."""
    if location.digest:
        raise UsageError(
            f"{_named(where, text)}: a push target cannot name a digest; give a tag or none "
            "(the pushed digest is printed)"
        )
    if location.tag.startswith("@"):
        raise UsageError(f"{_named(where, text)}: @N picks an image to read; give a tag to write")
    return location
