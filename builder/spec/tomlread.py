"""Typed, located access to a parsed TOML document.

Every accessor names the key path and the file line in its error, and
``finish`` rejects unknown keys with a "did you mean" hint.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from builder.errors import SpecError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

T = TypeVar("T")


class Document:
    """The source text, kept to find the line a key path was written on."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    @classmethod
    def load(cls, path: Path) -> tuple[Document, dict[str, Any]]:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise SpecError(f"{path}: no such file; pass the image file with -f FILE") from None
        except OSError as exc:
            raise SpecError(f"{path}: cannot read: {exc.strerror}") from None
        try:
            text = raw.decode("utf-8")
            data = tomllib.loads(text)
        except UnicodeDecodeError as exc:
            raise SpecError(
                f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise SpecError(f"{path}: invalid TOML: {exc}") from None
        return cls(path, text), data

    def line_of(self, where: str) -> int | None:
        """Best effort: the first line naming the last key of ``where`` after its table."""
        parts = [p for p in re.split(r"[.\[\]]+", where) if p and not p.isdigit()]
        if not parts:
            return None
        start = 0
        table = parts[0]
        occurrence = re.search(rf"{re.escape(table)}\[(\d+)\]", where)
        count = int(occurrence.group(1)) if occurrence else 0
        header = re.compile(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?\s*(#.*)?$")
        for number, line in enumerate(self.lines):
            if header.match(line):
                if count == 0:
                    start = number
                    break
                count -= 1
        key = re.compile(rf"(^|[{{,\s]){re.escape(parts[-1])}\s*=|\"{re.escape(parts[-1])}\"\s*=")
        for number in range(start, len(self.lines)):
            if key.search(self.lines[number]):
                return number + 1
        return start + 1 if start else None

    def error(self, where: str, message: str) -> SpecError:
        line = self.line_of(where)
        location = f"{self.path}:{line}" if line else str(self.path)
        return SpecError(f"{location}: {where}: {message}")


_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    bool: "true or false",
    list: "an array",
    dict: "a table",
}


class Table:
    """One TOML table being read; tracks which keys were used."""

    def __init__(self, doc: Document, where: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise doc.error(where, f"expected a table, got {_describe(data)}")
        self.doc, self.where, self.data = doc, where, data
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def error(self, name: str, message: str) -> SpecError:
        return self.doc.error(self.key(name), message)

    def raw(self, name: str) -> Any:
        self.used.add(name)
        return self.data.get(name)

    def typed(self, name: str, kind: type[T], default: T) -> T:
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(name, f"expected {_TYPE_NAMES[kind]}, got {_describe(value)}")
        return value

    def string(self, name: str, default: str = "") -> str:
        return self.typed(name, str, default)

    def strings(self, name: str) -> tuple[str, ...]:
        values = self.typed(name, list, [])
        for index, value in enumerate(values):
            if not isinstance(value, str):
                raise self.error(f"{name}[{index}]", f"expected a string, got {_describe(value)}")
        return tuple(values)

    def string_map(self, name: str) -> tuple[tuple[str, str], ...]:
        values = self.typed(name, dict, {})
        for key, value in values.items():
            if not isinstance(value, str):
                raise self.error(f"{name}.{key}", f"expected a string, got {_describe(value)}")
        return tuple(sorted(values.items()))

    def tables(self, name: str) -> list[Table]:
        values = self.typed(name, list, [])
        return [Table(self.doc, self.key(f"{name}[{i}]"), v) for i, v in enumerate(values)]

    def table(self, name: str) -> Table:
        return Table(self.doc, self.key(name), self.typed(name, dict, {}))

    def each(self, name: str, parse: Callable[[Table], T]) -> tuple[T, ...]:
        return tuple(parse(t) for t in self.tables(name))

    def finish(self) -> None:
        """Reject keys nobody asked for, suggesting the closest known one."""
        for name in self.data:
            if name in self.used:
                continue
            close = difflib.get_close_matches(name, sorted(self.used), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            known = ", ".join(sorted(self.used))
            raise self.error(name, f"unknown key '{name}'{hint} (known keys: {known})")


def _describe(value: Any) -> str:
    for kind, label in _TYPE_NAMES.items():
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return f"{label} ({value!r})" if kind in (str, int, bool) else label
    return type(value).__name__
