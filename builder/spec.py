"""image.toml → a frozen ImageSpec. Every check of user input lives here.

Nothing here reads the build context; paths are only checked for shape.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, overload

from builder.capability import encode_capabilities
from builder.compress import CODECS, Codec
from builder.entries import WHITEOUT_PREFIX
from builder.errors import BaleError, InvalidReference, SpecError
from builder.model import Platform
from builder.reference import parse_reference
from builder.tomlread import Document, Table

FORMATS = ("oci", "docker")
INDEX_MODES = ("auto", "always")
ALL_PLATFORMS = "all"
PLACEHOLDERS = ("os", "arch", "variant", "platform")
TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
_PORT = re.compile(r"^(\d{1,5})(?:/(tcp|udp|sctp))?$")
_OWNER_PART = re.compile(r"^(?:\d+|[a-z_][a-z0-9_.-]*\$?)$")
_SIGNAL = re.compile(r"^(?:SIG[A-Z0-9+-]+|\d+)$")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True, slots=True)
class Owner:
    """``user[:group]`` as written; names are resolved against /etc/passwd later."""

    user: str = "0"
    group: str = ""

    def __str__(self) -> str:
        return f"{self.user}:{self.group}" if self.group else self.user


Xattrs = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class FileSpec:
    src: str
    dst: str
    mode: int | None = None
    owner: Owner | None = None
    exclude: tuple[str, ...] = ()
    platforms: tuple[Platform, ...] = ()
    check_arch: bool = True
    where: str = ""
    xattrs: Xattrs = ()


@dataclass(frozen=True, slots=True)
class DirSpec:
    path: str
    mode: int = 0o755
    owner: Owner | None = None
    where: str = ""
    xattrs: Xattrs = ()


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """A symlink or hardlink entry: ``path`` points to ``target``."""

    path: str
    target: str
    owner: Owner | None = None
    where: str = ""


@dataclass(frozen=True, slots=True)
class ContentSpec:
    dst: str
    data: bytes
    mode: int = 0o644
    owner: Owner | None = None
    where: str = ""
    xattrs: Xattrs = ()


@dataclass(frozen=True, slots=True)
class LayerSpec:
    name: str
    codec: Codec
    files: tuple[FileSpec, ...] = ()
    dirs: tuple[DirSpec, ...] = ()
    symlinks: tuple[LinkSpec, ...] = ()
    hardlinks: tuple[LinkSpec, ...] = ()
    content: tuple[ContentSpec, ...] = ()
    platforms: tuple[Platform, ...] = ()
    where: str = ""
    delete: tuple[str, ...] = ()
    opaque: tuple[str, ...] = ()
    missing_ok: bool = False
    tar: str = ""
    tar_owner: Owner | None = None


@dataclass(frozen=True, slots=True)
class ConfigSpec:
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: tuple[tuple[str, str], ...] = ()
    workdir: str = ""
    user: str = ""
    ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    stop_signal: str = ""


@dataclass(frozen=True, slots=True)
class BaseRef:
    """A base image: local in skopeo transport syntax (``oci:PATH[:TAG]``, the archives)
    or, with transport ``docker``, a registry ``reference`` (normalised)."""

    transport: str
    path: Path
    tag: str = ""
    reference: str = ""

    def __str__(self) -> str:
        if self.transport == "docker":
            return f"docker://{self.reference}"
        return f"{self.transport}:{self.path}" + (f":{self.tag}" if self.tag else "")


@dataclass(frozen=True, slots=True)
class UserSpec:
    name: str
    uid: int
    gid: int
    home: str
    shell: str
    where: str = ""


@dataclass(frozen=True, slots=True)
class GroupSpec:
    name: str
    gid: int
    members: tuple[str, ...] = ()
    where: str = ""


@dataclass(frozen=True, slots=True)
class ImageSpec:
    path: Path
    context: Path
    tags: tuple[str, ...]
    base: str
    platforms: tuple[Platform, ...]
    codec: Codec
    format: str
    index: str
    created: int | None
    config: ConfigSpec
    annotations: tuple[tuple[str, str], ...]
    layers: tuple[LayerSpec, ...]
    base_ref: BaseRef | None = None
    users: tuple[UserSpec, ...] = ()
    groups: tuple[GroupSpec, ...] = ()
    all_platforms: bool = False

    repository: str = ""


def load(path: Path) -> ImageSpec:
    """Read and check an image.toml; raise SpecError naming file, line and key."""
    doc, data = Document.load(path)
    top = Table(doc, "", data)
    image = top.table("image")
    codec = _codec(image, None)
    context = path.resolve().parent
    base = _base(image)
    all_platforms = _wants_all(image, base)
    spec = ImageSpec(
        path=path,
        context=context,
        tags=_tags(image),
        base=base,
        platforms=() if all_platforms else _platforms(image, "platforms"),
        codec=codec,
        format=_choice(image, "format", FORMATS),
        index=_choice(image, "index", INDEX_MODES),
        created=_created(image),
        config=_config(top.table("config")),
        annotations=top.string_map("annotations"),
        layers=tuple(_layer(t, codec) for t in top.tables("layers")),
        base_ref=_base_ref(image, base, context),
        users=_unique(top, "users", top.each("users", _user_spec)),
        groups=_unique(top, "groups", top.each("groups", _group_spec)),
        all_platforms=all_platforms,
        repository=_repository(image),
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


BASE_TRANSPORTS = ("oci", "oci-archive", "docker-archive")


def _base(image: Table) -> str:
    """The base as written (checked by ``_base_ref``); it names the base in annotations."""
    return image.string("base", "scratch")


def _base_ref(image: Table, base: str, context: Path) -> BaseRef | None:
    if base == "scratch":
        return None
    try:
        return parse_base(base, context)
    except SpecError as exc:
        raise image.error("base", str(exc)) from None


def parse_base(text: str, context: Path) -> BaseRef:
    """``oci:PATH[:TAG]``, ``oci-archive:FILE[:TAG]``, ``docker-archive:FILE[:REF]``.

    A relative path is taken from ``context`` (the directory of image.toml). The
    docker-archive reference is ``name:tag`` or ``@N`` (skopeo's syntax), so its
    path ends at the first ':'; the OCI tag has no ':' or '/', so theirs ends at the last.
    """
    transport, sep, rest = text.partition(":")
    if not sep or transport not in BASE_TRANSPORTS:
        return _registry_base(text)
    if transport == "docker-archive":
        path, _, tag = rest.partition(":")
    else:
        path, sep, tag = rest.rpartition(":")
        if not sep or "/" in tag or not TAG.match(tag):
            path, tag = rest, ""
    if not path:
        raise SpecError(f"base '{text}': missing the path after '{transport}:'")
    return BaseRef(transport, context / path, tag)


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


def _registry_base(text: str) -> BaseRef:
    """Any other base is a registry reference, ``docker://`` optional (``python:3.12-slim``)."""
    try:
        ref = parse_reference(text)
    except InvalidReference as exc:
        raise SpecError(
            f"unsupported base '{text}': {exc}. Use \"scratch\", a registry reference such as "
            "python:3.12-slim, oci:PATH[:TAG], oci-archive:FILE[:TAG] or "
            "docker-archive:FILE[:NAME:TAG]"
        ) from None
    return BaseRef("docker", Path(), "", str(ref))


def _platforms(table: Table, name: str) -> tuple[Platform, ...]:
    result = []
    for index, text in enumerate(table.strings(name)):
        try:
            result.append(Platform.parse(text))
        except BaleError as exc:
            raise table.error(f"{name}[{index}]", str(exc)) from None
    return tuple(dict.fromkeys(result))


def _choice(table: Table, name: str, choices: tuple[str, ...]) -> str:
    value = table.string(name, choices[0])
    if value not in choices:
        raise table.error(name, f"unknown {name} '{value}': use one of {', '.join(choices)}")
    return value


def _codec(table: Table, inherit: Codec | None) -> Codec:
    name = table.string("compression", inherit.name if inherit else "gzip")
    level = table.typed("compression_level", int, -1)
    if name not in CODECS:
        raise table.error("compression", f"unknown compression '{name}': use gzip, zstd or none")
    if level == -1 and inherit is not None and inherit.name == name:
        level = inherit.level
    try:
        return Codec.of(name, None if level == -1 else level)
    except BaleError as exc:
        raise table.error("compression_level", str(exc)) from None


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
        workdir=_abs_or_empty(table, "workdir"),
        user=_user(table),
        ports=_ports(table),
        volumes=tuple(
            _abs(table, f"volumes[{i}]", v) for i, v in enumerate(table.strings("volumes"))
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
    if user and not all(_OWNER_PART.match(p) for p in user.split(":", 1)):
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


def _layer(table: Table, default: Codec) -> LayerSpec:
    index = table.where.rsplit("[", 1)[-1].rstrip("]")
    spec = LayerSpec(
        name=table.string("name", f"layer-{index}"),
        codec=_codec(table, default),
        files=table.each("files", _file),
        dirs=table.each("dirs", _dir),
        symlinks=table.each("symlinks", _link),
        hardlinks=table.each("hardlinks", _link),
        content=table.each("content", _content),
        platforms=_platforms(table, "platforms"),
        where=table.where,
        delete=_globs(table, "delete"),
        opaque=_globs(table, "opaque"),
        missing_ok=table.typed("missing_ok", bool, False),
        tar=_tar(table),
        tar_owner=_owner(table, "tar_owner"),
    )
    table.finish()
    return spec


def _globs(table: Table, name: str) -> tuple[str, ...]:
    return tuple(
        _abs(table, f"{name}[{i}]", pattern) for i, pattern in enumerate(table.strings(name))
    )


def _tar(table: Table) -> str:
    src = table.string("tar")
    if src and (posixpath.isabs(src) or ".." in src.replace("\\", "/").split("/")):
        raise table.error("tar", f"'{src}' escapes the build context: use a relative path")
    return src


def _file(table: Table) -> FileSpec:
    src = table.string("src")
    if not src:
        raise table.error(
            "src", "missing 'src': the path of a file or directory in the build context"
        )
    _check_placeholders(table, "src", src)
    if posixpath.isabs(src) or ".." in src.replace("\\", "/").split("/"):
        raise table.error(
            "src",
            f"'{src}' escapes the build context: use a relative path without '..'",
        )
    dst = table.string("dst")
    spec = FileSpec(
        src=src,
        dst=_abs(table, "dst", dst, keep_slash=True),
        mode=_mode(table, None),
        owner=_owner(table),
        exclude=table.strings("exclude"),
        platforms=_platforms(table, "platforms"),
        check_arch=table.typed("check_arch", bool, True),
        where=table.where,
        xattrs=_xattrs(table),
    )
    table.finish()
    return spec


def _check_placeholders(table: Table, name: str, value: str) -> None:
    """Only {os}, {arch}, {variant} and {platform} may appear in a source path."""
    for found in re.findall(r"\{([^{}]*)\}", value):
        if found not in PLACEHOLDERS:
            known = ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
            raise table.error(name, f"unknown placeholder '{{{found}}}' in '{value}': use {known}")


def _dir(table: Table) -> DirSpec:
    spec = DirSpec(
        _abs(table, "path", table.string("path")),
        _mode(table, 0o755),
        _owner(table),
        table.where,
        _xattrs(table),
    )
    table.finish()
    return spec


def _link(table: Table) -> LinkSpec:
    target = table.string("target")
    if not target:
        raise table.error("target", "missing 'target': the path the link points to")
    spec = LinkSpec(_abs(table, "path", table.string("path")), target, _owner(table), table.where)
    table.finish()
    return spec


def _content(table: Table) -> ContentSpec:
    text = table.raw("text")
    if not isinstance(text, str):
        raise table.error("text", "missing 'text': the file's content as a string")
    spec = ContentSpec(
        _abs(table, "dst", table.string("dst")),
        text.encode(),
        _mode(table, 0o644),
        _owner(table),
        table.where,
        _xattrs(table),
    )
    table.finish()
    return spec


def _abs(table: Table, name: str, path: str, keep_slash: bool = False) -> str:
    """An absolute image path, normalised; a trailing '/' is kept when asked."""
    if not path:
        raise table.error(name, "missing: give an absolute path in the image, e.g. /app")
    if not path.startswith("/"):
        raise table.error(name, f"'{path}' is not absolute: image paths start with '/'")
    if ".." in path.split("/") or "\0" in path:
        raise table.error(name, f"'{path}' may not contain '..' or NUL")
    norm = posixpath.normpath(path)
    norm = "/" if norm == "//" else norm
    if any(part.startswith(WHITEOUT_PREFIX) for part in norm.split("/")):
        raise table.error(name, f"'{path}': names starting with '.wh.' are reserved for whiteouts")
    if keep_slash and path.endswith("/") and norm != "/":
        norm += "/"
    return norm


def _abs_or_empty(table: Table, name: str) -> str:
    value = table.string(name)
    return _abs(table, name, value) if value else ""


@overload
def _mode(table: Table, default: int) -> int: ...
@overload
def _mode(table: Table, default: None) -> int | None: ...
def _mode(table: Table, default: int | None) -> int | None:
    value = table.raw("mode")
    if value is None:
        return default
    if isinstance(value, str) and re.fullmatch(r"(0o?)?[0-7]{1,4}", value):
        value = int(value.removeprefix("0o"), 8)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0o7777:
        raise table.error("mode", f"invalid mode {value!r}: use an octal number such as 0o755")
    return value


def _owner(table: Table, key: str = "owner") -> Owner | None:
    value = table.string(key)
    if not value:
        return None
    parts = value.split(":")
    if len(parts) > 2 or not all(_OWNER_PART.match(p) for p in parts):
        raise table.error(
            key, f"invalid owner '{value}': use USER[:GROUP], names or ids, e.g. \"1000:1000\""
        )
    return Owner(parts[0], parts[1] if len(parts) == 2 else "")


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


def _xattrs(table: Table) -> Xattrs:
    """``xattrs`` as given plus ``capabilities`` encoded as ``security.capability``."""
    result = dict((k, v.encode()) for k, v in table.string_map("xattrs"))
    for name in result:
        if not _XATTR_NAME.match(name):
            raise table.error(
                f"xattrs.{name}",
                f"invalid xattr name '{name}': use NAMESPACE.NAME with namespace "
                "user, trusted or security",
            )
    caps = table.strings("capabilities")
    if caps:
        if "security.capability" in result:
            raise table.error("capabilities", "give capabilities or the xattr, not both")
        try:
            result["security.capability"] = encode_capabilities(caps)
        except SpecError as exc:
            raise table.error("capabilities", str(exc)) from None
    return tuple(sorted(result.items()))


_XATTR_NAME = re.compile(r"^(user|trusted|security)\.[^\x00]+$")
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
