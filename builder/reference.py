"""Image references: ``[registry[:port]/]repository[:tag][@digest]``.

Parsed and normalised the way Docker does, so that ``alpine`` and
``docker.io/library/alpine:latest`` name the same thing and credentials,
scopes and error messages all agree on one spelling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from builder.errors import BaleError, InvalidReference
from builder.model import Digest

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DEFAULT_TAG = "latest"
HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_TRANSPORT = "docker://"

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$")
TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
_HOST_LABEL = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)"
_HOST = re.compile(rf"^(?:{_HOST_LABEL}(?:\.{_HOST_LABEL})*|\[[0-9a-fA-F:.]+\])(?::[0-9]{{1,5}})?$")
_MAX_NAME = 255


@dataclass(frozen=True, slots=True)
class Reference:
    """A normalised image reference; ``tag`` and ``digest`` may both be set."""

    registry: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        return parse_reference(text)

    @property
    def api_host(self) -> str:
        """The host:port the distribution API lives on."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def name(self) -> str:
        """``registry/repository`` without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def manifest_ref(self) -> str:
        """What goes after ``/manifests/``: the digest if pinned, else the tag."""
        if self.digest is not None:
            return str(self.digest)
        return self.tag or DEFAULT_TAG

    def with_tag(self, tag: str) -> Reference:
        return replace(self, tag=_check_tag(tag, f"{self.name}:{tag}"), digest=None)

    def with_digest(self, digest: Digest | str) -> Reference:
        parsed = _parse_digest(str(digest), f"{self.name}@{digest}")
        return replace(self, digest=parsed)

    def context(self) -> str:
        """How errors name this image: ``registry/repository``."""
        return self.name

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str) -> Reference:
    """Parse and normalise a reference, raising InvalidReference with the reason."""
    original = text
    text = text.removeprefix(_TRANSPORT)
    if not text:
        raise InvalidReference("empty image reference: expected e.g. 'alpine:3.20'")
    rest, _, digest_text = text.partition("@")
    digest = _parse_digest(digest_text, original) if digest_text else None
    name, tag = _split_tag(rest, original)
    registry, repository = split_registry(name, original)
    _check_repository(repository, original)
    return Reference(registry, repository, tag, digest)


def split_registry(name: str, original: str) -> tuple[str, str]:
    """Split a name into (registry, repository), applying Docker Hub defaults."""
    first, sep, remainder = name.partition("/")
    if sep and _looks_like_registry(first):
        registry = DOCKER_HUB if first.lower() in HUB_ALIASES else first
        if not _HOST.match(registry):
            raise InvalidReference(f"invalid registry host '{first}' in '{original}'")
        repository = remainder
    else:
        registry, repository = DOCKER_HUB, name
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    return registry, repository


def _looks_like_registry(first: str) -> bool:
    return "." in first or ":" in first or first == "localhost" or first != first.lower()


def _split_tag(text: str, original: str) -> tuple[str, str | None]:
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        return text[:colon], _check_tag(text[colon + 1 :], original)
    return text, None


def _check_tag(tag: str, original: str) -> str:
    if not TAG.match(tag):
        raise InvalidReference(
            f"invalid tag '{tag}' in '{original}': a tag is 1-128 characters of "
            "letters, digits, '_', '.' and '-', not starting with '.' or '-'"
        )
    return tag


def _check_repository(repository: str, original: str) -> None:
    if not repository:
        raise InvalidReference(f"missing repository name in '{original}'")
    if len(repository) > _MAX_NAME:
        raise InvalidReference(
            f"repository name in '{original}' is longer than {_MAX_NAME} characters"
        )
    for component in repository.split("/"):
        if not _COMPONENT.match(component):
            raise InvalidReference(_component_problem(component, original))


def _component_problem(component: str, original: str) -> str:
    if component != component.lower():
        why = "repository names must be lowercase"
    elif not component:
        why = "empty path component (double or trailing '/')"
    else:
        why = "use lowercase letters and digits separated by '.', '_', '__' or '-'"
    return f"invalid repository name component '{component}' in '{original}': {why}"


def _parse_digest(text: str, original: str) -> Digest:
    try:
        return Digest.parse(text)
    except BaleError as exc:
        raise InvalidReference(f"invalid digest in '{original}': {exc}") from None
