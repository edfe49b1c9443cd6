"""Reading ``[[layers]]`` tables and their entries, and the shared path, mode and owner checks.

Every check names the key path and line (through ``tomlread.Table``).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, overload

if TYPE_CHECKING:
    import pathspec

from builder.errors import BaleError, SpecError
from builder.model import CODECS, WHITEOUT_PREFIX, Codec, Platform
from builder.spec.capability import encode_capabilities
from builder.spec.python import read_python
from builder.spec.tomlread import Table
from builder.spec.values import (
    PLACEHOLDERS,
    ContentSpec,
    DirSpec,
    FileSpec,
    LayerSpec,
    LinkSpec,
    Owner,
    Xattrs,
)

OWNER_PART = re.compile(r"^(?:\d+|[a-z_][a-z0-9_.-]*\$?)$")


def read_platforms(table: Table, name: str) -> tuple[Platform, ...]:
    result = []
    for index, text in enumerate(table.strings(name)):
        try:
            result.append(Platform.parse(text))
        except BaleError as exc:
            raise table.error(f"{name}[{index}]", str(exc)) from None
    return tuple(dict.fromkeys(result))


def read_codec(table: Table, inherit: Codec | None) -> Codec:
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


def read_layer(table: Table, default: Codec) -> LayerSpec:
    index = table.where.rsplit("[", 1)[-1].rstrip("]")
    spec = LayerSpec(
        name=table.string("name", f"layer-{index}"),
        codec=read_codec(table, default),
        files=table.each("files", _file),
        dirs=table.each("dirs", _dir),
        symlinks=table.each("symlinks", _link),
        hardlinks=table.each("hardlinks", _link),
        content=table.each("content", _content),
        platforms=read_platforms(table, "platforms"),
        where=table.where,
        delete=_globs(table, "delete"),
        opaque=_globs(table, "opaque"),
        missing_ok=table.typed("missing_ok", bool, False),
        tar=_tar(table),
        tar_owner=read_owner(table, "tar_owner"),
        python=read_python(table),
    )
    table.finish()
    return spec


def glob_matcher(patterns: Sequence[str]) -> pathspec.GitIgnoreSpec:
    """The one glob dialect of image.toml (``exclude``, ``delete``, ``opaque``): gitignore's,
    through pathspec, whose patterns compile to regular expressions without backtracking
    blow-ups (a run of ``**`` is one ``**``)."""
    import pathspec  # only when a layer has globs: it costs more than a small walk

    return pathspec.GitIgnoreSpec.from_lines(patterns)


def _checked_globs(table: Table, name: str, patterns: Sequence[str]) -> tuple[str, ...]:
    for i, pattern in enumerate(patterns):
        try:
            glob_matcher([pattern])
        except (ValueError, re.error) as exc:
            raise table.error(
                f"{name}[{i}]",
                f"invalid pattern '{pattern}' ({exc}); patterns follow .gitignore: "
                "*, ?, [a-z], ** and \\ to escape",
            ) from None
    return tuple(patterns)


def _globs(table: Table, name: str) -> tuple[str, ...]:
    paths = [image_path(table, f"{name}[{i}]", p) for i, p in enumerate(table.strings(name))]
    return _checked_globs(table, name, paths)


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
        dst=image_path(table, "dst", dst, keep_slash=True),
        mode=_mode(table, None),
        owner=read_owner(table),
        exclude=_checked_globs(table, "exclude", table.strings("exclude")),
        platforms=read_platforms(table, "platforms"),
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
        image_path(table, "path", table.string("path")),
        _mode(table, 0o755),
        read_owner(table),
        table.where,
        _xattrs(table),
    )
    table.finish()
    return spec


def _link(table: Table) -> LinkSpec:
    target = table.string("target")
    if not target:
        raise table.error("target", "missing 'target': the path the link points to")
    spec = LinkSpec(
        image_path(table, "path", table.string("path")), target, read_owner(table), table.where
    )
    table.finish()
    return spec


def _content(table: Table) -> ContentSpec:
    text = table.raw("text")
    if not isinstance(text, str):
        raise table.error("text", "missing 'text': the file's content as a string")
    spec = ContentSpec(
        image_path(table, "dst", table.string("dst")),
        text.encode(),
        _mode(table, 0o644),
        read_owner(table),
        table.where,
        _xattrs(table),
    )
    table.finish()
    return spec


def image_path(table: Table, name: str, path: str, keep_slash: bool = False) -> str:
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


def image_path_or_empty(table: Table, name: str) -> str:
    value = table.string(name)
    return image_path(table, name, value) if value else ""


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


def read_owner(table: Table, key: str = "owner") -> Owner | None:
    value = table.string(key)
    if not value:
        return None
    parts = value.split(":")
    if len(parts) > 2 or not all(OWNER_PART.match(p) for p in parts):
        raise table.error(
            key, f"invalid owner '{value}': use USER[:GROUP], names or ids, e.g. \"1000:1000\""
        )
    return Owner(parts[0], parts[1] if len(parts) == 2 else "")


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
