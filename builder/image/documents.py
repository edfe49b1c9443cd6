"""JSON documents of an image, read defensively: bounded, I-JSON, and the right shape.

Every manifest, index, config and archive ``manifest.json`` bale reads goes
through ``parse_json`` (a size limit, a nesting limit, no NaN or infinite
numbers, no duplicate keys) and then the shape check of its kind, so that the
code after it can trust the types of the fields it uses.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from typing import Any

from builder.errors import ImageError

MAX_DOCUMENT = 4 << 20
MAX_DEPTH = 64


def parse_json(data: bytes, where: str, limit: int = MAX_DOCUMENT) -> Any:
    """The JSON value of ``data`` (at most ``limit`` bytes); ImageError naming ``where``
    for anything else."""
    if len(data) > limit:
        raise ImageError(f"{where}: {len(data)} bytes is too large for a JSON document")
    if _depth(data) > MAX_DEPTH:
        raise ImageError(f"{where}: JSON nested more than {MAX_DEPTH} levels deep")
    try:
        return json.loads(
            data,
            parse_constant=_no_constant,
            parse_float=_finite,
            object_pairs_hook=_unique_keys,
        )
    except (ValueError, RecursionError) as exc:
        raise ImageError(f"{where}: not valid JSON: {exc}") from None


def _depth(data: bytes) -> int:
    """The deepest bracket nesting, strings skipped (a quick scan before parsing)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x7B, 0x5B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x7D, 0x5D):
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"the key '{key[:80]}' appears twice in one object")
        found[key] = value
    return found


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "true/false"}.get(
        type(value), type(value).__name__
    )


def expect(value: Any, kind: type, where: str, what: str, optional: bool = True) -> None:
    """Raise unless ``value`` is a ``kind`` (None passes when ``optional``)."""
    if value is None and optional:
        return
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ImageError(f"{where}: {what} must be {_kind(kind())}, not {_kind(value)}")


def _strings(value: Any, where: str, what: str) -> None:
    expect(value, list, where, what)
    for item in value or []:
        expect(item, str, where, f"each item of {what}", optional=False)


def _string_map(value: Any, where: str, what: str) -> None:
    expect(value, dict, where, what)
    for item in (value or {}).values():
        expect(item, str, where, f"each value of {what}", optional=False)


def _object_map(value: Any, where: str, what: str) -> None:
    expect(value, dict, where, what)
    for item in (value or {}).values():
        expect(item, dict, where, f"each value of {what}", optional=False)


def check_index(document: Any, where: str) -> dict[str, Any]:
    expect(document, dict, where, "an image index", optional=False)
    expect(document.get("manifests"), list, where, "'manifests'")
    for item in document.get("manifests") or []:
        expect(item, dict, where, "each entry of 'manifests'", optional=False)
    _string_map(document.get("annotations"), where, "'annotations'")
    return dict(document)


def check_manifest(document: Any, where: str) -> dict[str, Any]:
    expect(document, dict, where, "an image manifest", optional=False)
    expect(document.get("config"), dict, where, "'config'", optional=False)
    expect(document.get("layers"), list, where, "'layers'")
    for item in document.get("layers") or []:
        expect(item, dict, where, "each entry of 'layers'", optional=False)
    _string_map(document.get("annotations"), where, "'annotations'")
    return dict(document)


_CONFIG_FIELDS: dict[str, Callable[[Any, str, str], None]] = {
    "Env": _strings,
    "Entrypoint": _strings,
    "Cmd": _strings,
    "Labels": _string_map,
    "ExposedPorts": _object_map,
    "Volumes": _object_map,
    "WorkingDir": lambda v, w, n: expect(v, str, w, n),
    "User": lambda v, w, n: expect(v, str, w, n),
    "StopSignal": lambda v, w, n: expect(v, str, w, n),
}


def _check_time(text: str | None, where: str) -> None:
    if text is None:
        return
    try:
        dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ImageError(f"{where}: 'created' is not an RFC 3339 time: {text[:60]!r}") from None


def check_config(document: Any, where: str) -> dict[str, Any]:
    """An image config whose fields bale reads have the types the image spec gives them."""
    expect(document, dict, where, "an image config", optional=False)
    for key in ("architecture", "os", "variant", "os.version", "created", "author"):
        expect(document.get(key), str, where, f"'{key}'")
    _check_time(document.get("created"), where)
    if not document.get("architecture") or not document.get("os"):
        raise ImageError(f"{where}: the config names no 'architecture' or 'os'")
    config = document.get("config")
    expect(config, dict, where, "'config'")
    for key, check in _CONFIG_FIELDS.items():
        check((config or {}).get(key), where, f"'config.{key}'")
    rootfs = document.get("rootfs")
    expect(rootfs, dict, where, "'rootfs'", optional=False)
    if rootfs.get("type") != "layers":
        raise ImageError(f"{where}: 'rootfs.type' must be \"layers\"")
    _strings(rootfs.get("diff_ids"), where, "'rootfs.diff_ids'")
    expect(document.get("history"), list, where, "'history'")
    for item in document.get("history") or []:
        expect(item, dict, where, "each entry of 'history'", optional=False)
    return dict(document)
