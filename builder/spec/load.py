"""image.toml → a frozen ImageSpec. Every check of user input lives here and in
``speclayers`` (the ``[[layers]]`` tables).

Nothing here reads the build context; paths are only checked for shape.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from builder.errors import InvalidReference, SpecError, UsageError
from builder.reference import TAG, Reference, parse_reference
from builder.spec.layers import (
    OWNER_PART,
    image_path,
    image_path_or_empty,
    read_codec,
    read_layer,
    read_platforms,
)
from builder.spec.locations import Location, parse_location
from builder.spec.tomlread import Document, Table
from builder.spec.values import (
    ALL_PLATFORMS,
    FORMATS,
    INDEX_MODES,
    SBOM_FORMATS,
    CacheSpec,
    ConfigSpec,
    GroupSpec,
    ImageSpec,
    UserSpec,
)

_PORT = re.compile(r"^(\d{1,5})(?:/(tcp|udp|sctp))?$")
_SIGNAL = re.compile(r"^(?:SIG[A-Z0-9+-]+|\d+)$")


def load(path: Path) -> ImageSpec:
    """Read and check an image.toml; raise SpecError naming file, line and key."""
    doc, data = Document.load(path)
    top = Table(doc, "", data)
    image = top.table("image")
    codec = read_codec(image, None)
    context = path.resolve().parent
    base = _base(image)
    all_platforms = _wants_all(image, base)
    spec = ImageSpec(
        path=path,
        context=context,
        tags=_tags(image),
        base=base,
        platforms=() if all_platforms else read_platforms(image, "platforms"),
        codec=codec,
        format=_choice(image, "format", FORMATS),
        index=_choice(image, "index", INDEX_MODES),
        created=_created(image),
        config=_config(top.table("config")),
        annotations=top.string_map("annotations"),
        layers=tuple(read_layer(t, codec) for t in top.tables("layers")),
        base_ref=_base_ref(image, base, context),
        users=_unique(top, "users", top.each("users", _user_spec)),
        groups=_unique(top, "groups", top.each("groups", _group_spec)),
        all_platforms=all_platforms,
        repository=_repository(image),
        sbom=read_sbom(image),
        provenance=image.typed("provenance", bool, True),
        cache=_cache(top.table("cache")),
    )
    image.finish()
    top.finish()
    if spec.base == "scratch" and not spec.layers:
        raise doc.error("layers", "a scratch image needs at least one [[layers]] table")
    _check_format(doc, spec)
    return spec


def check_tag(tag: str) -> str:
    """Return the tag, or raise SpecError saying what a tag may hold."""
    if not TAG.match(tag):
        raise SpecError(_tag_message(tag))
    return tag


def _tag_message(tag: str) -> str:
    return (
        f"invalid tag '{tag}': use up to 128 letters, digits, '_', '.', '-', "
        "not starting with '.' or '-'"
    )


def _tags(image: Table) -> tuple[str, ...]:
    tags = image.strings("tags")
    for index, tag in enumerate(tags):
        if not TAG.match(tag):
            raise image.error(f"tags[{index}]", _tag_message(tag))
    return tuple(dict.fromkeys(tags))


def _repository(image: Table) -> str:
    """Where ``--push`` goes: ``[registry/]repository`` without tag or digest, normalised."""
    text = image.string("repository", "")
    if not text:
        return ""
    try:
        ref = parse_reference(text)
    except InvalidReference as exc:
        raise image.error("repository", str(exc)) from None
    if ref.tag is not None or ref.digest is not None:
        raise image.error(
            "repository",
            f"'{text}' has a tag or digest; give the repository alone "
            "(e.g. ghcr.io/acme/app) and the tags in [image] tags",
        )
    return ref.name


CACHE_TAG = "bale-cache"


def parse_cache_ref(text: str) -> Reference:
    """A registry cache reference: ``[docker://]registry/repository[:tag]``, the tag
    ``bale-cache`` when none is given; InvalidReference otherwise."""
    ref = parse_reference(text)
    if ref.digest is not None:
        raise InvalidReference(
            f"'{text}' pins a digest; a layer cache is named by a tag (e.g. {ref.name}:cache)"
        )
    return ref if ref.tag is not None else ref.with_tag(CACHE_TAG)


def _cache(table: Table) -> CacheSpec:
    refs: dict[str, tuple[Reference, ...]] = {}
    for key in ("from", "to"):
        found = []
        for index, text in enumerate(table.strings(key)):
            try:
                found.append(parse_cache_ref(text))
            except InvalidReference as exc:
                raise table.error(f"{key}[{index}]", str(exc)) from None
        refs[key] = tuple(dict.fromkeys(found))
    limit = table.typed("max_entries", int, 0)
    if table.raw("max_entries") is not None and limit < 1:
        raise table.error("max_entries", f"expected a whole number of 1 or more, got {limit}")
    table.finish()
    return CacheSpec(refs["from"], refs["to"], limit or None)


def _base(image: Table) -> str:
    """The base as written (checked by ``_base_ref``); it names the base in annotations."""
    return image.string("base", "scratch")


def _base_ref(image: Table, base: str, context: Path) -> Location | None:
    if base == "scratch":
        return None
    try:
        return parse_base(base, context)
    except SpecError as exc:
        raise image.error("base", str(exc)) from None


def parse_base(text: str, context: Path) -> Location:
    """A base location (builder/spec/locations.py); a local path is taken from ``context``
    (the directory of image.toml)."""
    try:
        location = parse_location(text, "base")
    except UsageError as exc:
        raise SpecError(str(exc)) from None
    if location.transport == "docker":
        return location
    return replace(location, path=context / location.path)


def _wants_all(image: Table, base: str) -> bool:
    """``platforms = ["all"]``: every platform of the base, in the base's order."""
    texts = [t.strip().lower() for t in image.strings("platforms")]
    if ALL_PLATFORMS not in texts:
        return False
    if len(texts) != 1:
        raise image.error("platforms", '"all" stands alone; list platforms or write ["all"]')
    if base == "scratch":
        raise image.error(
            "platforms",
            '"all" means every platform of the base image, and this image has no base '
            "(scratch); set [image] base or list the platforms",
        )
    return True


def read_sbom(image: Table) -> tuple[str, ...]:
    """``sbom``: true/false, a format name, or a list of format names (each once)."""
    value = image.raw("sbom")
    if value is None or value is True:
        return SBOM_FORMATS[:1]
    if value is False:
        return ()
    names = [value] if isinstance(value, str) else value
    hint = f"use true, false, one of {', '.join(SBOM_FORMATS)} or a list of them"
    if not isinstance(names, list) or not names:
        raise image.error("sbom", f"expected a format name or a list of them; {hint}")
    for name in names:
        if name not in SBOM_FORMATS:
            raise image.error("sbom", f"unknown SBOM format {name!r}; {hint}")
    return tuple(dict.fromkeys(names))


def _choice(table: Table, name: str, choices: tuple[str, ...]) -> str:
    value = table.string(name, choices[0])
    if value not in choices:
        raise table.error(name, f"unknown {name} '{value}': use one of {', '.join(choices)}")
    return value


def _created(image: Table) -> int | None:
    value = image.raw("created")
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            value = None
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise image.error(
            "created", "expected an RFC 3339 time with zone, e.g. 2024-01-01T00:00:00Z"
        )
    seconds = int(value.timestamp())
    if seconds < 0:
        raise image.error("created", "must not be before 1970-01-01T00:00:00Z")
    return seconds


def _config(table: Table) -> ConfigSpec:
    spec = ConfigSpec(
        entrypoint=_argv(table, "entrypoint"),
        cmd=_argv(table, "cmd"),
        env=_env(table),
        workdir=image_path_or_empty(table, "workdir"),
        user=_user(table),
        ports=_ports(table),
        volumes=tuple(
            image_path(table, f"volumes[{i}]", v) for i, v in enumerate(table.strings("volumes"))
        ),
        labels=table.string_map("labels"),
        stop_signal=_signal(table),
    )
    table.finish()
    return spec


def _argv(table: Table, name: str) -> tuple[str, ...] | None:
    return table.strings(name) if table.raw(name) is not None else None


def _env(table: Table) -> tuple[tuple[str, str], ...]:
    env = table.string_map("env")
    for key, _ in env:
        if not key or "=" in key:
            raise table.error(
                f"env.{key}",
                "an environment variable name may not be empty or hold '='",
            )
    return env


def _user(table: Table) -> str:
    user = table.string("user")
    if user and not all(OWNER_PART.match(p) for p in user.split(":", 1)):
        raise table.error("user", f"invalid user '{user}': use UID[:GID] or NAME[:GROUP]")
    return user


def _ports(table: Table) -> tuple[str, ...]:
    result = []
    for index, port in enumerate(table.strings("ports")):
        match = _PORT.match(port)
        if not match or not 0 < int(match.group(1)) < 65536:
            raise table.error(
                f"ports[{index}]",
                f"invalid port '{port}': use PORT[/tcp|udp|sctp], 1-65535",
            )
        result.append(f"{int(match.group(1))}/{match.group(2) or 'tcp'}")
    return tuple(dict.fromkeys(result))


def _signal(table: Table) -> str:
    signal = table.string("stop_signal")
    if signal and not _SIGNAL.match(signal):
        raise table.error(
            "stop_signal",
            f"invalid signal '{signal}': use a name like SIGTERM or a number",
        )
    return signal


def _check_format(doc: Document, spec: ImageSpec) -> None:
    """Docker's v2.2 media types know gzip and plain tar only."""
    if spec.format != "docker":
        return
    for layer in spec.layers:
        if layer.codec.name == "zstd":
            raise doc.error(
                f"{layer.where}.compression",
                'zstd layers cannot be written in format = "docker"; use gzip or none',
            )


_ACCOUNT = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}\$?$")


def _account_name(table: Table) -> str:
    name = table.string("name")
    if not _ACCOUNT.match(name):
        raise table.error(
            "name", f"invalid name '{name}': use lowercase letters, digits, '_', '.', '-'"
        )
    return name


def _id(table: Table, key: str, default: int | None = None) -> int:
    value = table.raw(key)
    if value is None and default is not None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32 - 1:
        raise table.error(key, f"expected an id from 0 to 4294967294, got {value!r}")
    return value


def _user_spec(table: Table) -> UserSpec:
    name = _account_name(table)
    uid = _id(table, "uid")
    home = table.string("home", "/nonexistent" if uid else "/root")
    shell = table.string("shell", "/usr/sbin/nologin")
    for key, value in (("home", home), ("shell", shell)):
        if ":" in value or "\n" in value:
            raise table.error(key, f"'{value}' may not contain ':' or a newline")
    spec = UserSpec(name, uid, _id(table, "gid", uid), home, shell, table.where)
    table.finish()
    return spec


def _group_spec(table: Table) -> GroupSpec:
    name = _account_name(table)
    members = table.strings("members")
    for index, member in enumerate(members):
        if not _ACCOUNT.match(member):
            raise table.error(f"members[{index}]", f"invalid user name '{member}'")
    spec = GroupSpec(name, _id(table, "gid"), members, table.where)
    table.finish()
    return spec


_Named = TypeVar("_Named", UserSpec, GroupSpec)


def _unique(top: Table, key: str, items: tuple[_Named, ...]) -> tuple[_Named, ...]:
    seen: set[str] = set()
    for item in items:
        if item.name in seen:
            raise top.doc.error(item.where, f"'{item.name}' is declared twice in [[{key}]]")
        seen.add(item.name)
    return items
