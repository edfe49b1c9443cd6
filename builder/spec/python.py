"""Reading a layer's ``python = {...}`` table into a ``PythonSpec`` (no I/O)."""

from __future__ import annotations

import posixpath
import re

from builder.spec.tomlread import Table
from builder.spec.values import PYTHON_SOURCES, PythonSpec

LIBC = re.compile(r"^(glibc|musl) (\d+)\.(\d+)$")
_INTERPRETER = re.compile(r"/python3\.\d+$")


def read_python(layer: Table) -> PythonSpec | None:
    """The layer's ``python`` table, checked for shape; None when absent."""
    if layer.raw("python") is None:
        return None
    table = layer.table("python")
    given = [kind for kind in PYTHON_SOURCES if table.raw(kind) is not None]
    if len(given) != 1:
        raise layer.error(
            "python",
            'give exactly one of requirements = "requirements.txt" (hash-pinned), '
            'lock = "pylock.toml" or project = "." '
            f"(found {', '.join(given) or 'none'})",
        )
    kind = given[0]
    spec = PythonSpec(
        kind=kind,
        source=_relative(table, kind),
        venv=_image_dir(table, "venv"),
        interpreter=_interpreter(table),
        site_packages=_image_dir(table, "site_packages"),
        libc=_libc(table),
        index_url=_index_url(table),
        compile=table.typed("compile", bool, False),
        where=table.where,
    )
    table.finish()
    if spec.venv and spec.site_packages:
        raise table.error("site_packages", "a venv has its own site-packages: give one of the two")
    return spec


def _relative(table: Table, name: str) -> str:
    path = table.string(name)
    if not path or posixpath.isabs(path) or ".." in path.replace("\\", "/").split("/"):
        raise table.error(name, f"'{path}' must be a path inside the build context, e.g. \".\"")
    return posixpath.normpath(path)


def _image_dir(table: Table, name: str) -> str:
    path = table.string(name)
    if not path:
        return ""
    if not path.startswith("/") or ".." in path.split("/") or "\0" in path:
        raise table.error(name, f"'{path}' must be an absolute image path without '..'")
    return posixpath.normpath(path)


def _interpreter(table: Table) -> str:
    path = _image_dir(table, "interpreter")
    if path and not _INTERPRETER.search(path):
        raise table.error(
            "interpreter",
            f"'{path}' does not name its version: give the versioned interpreter, "
            'e.g. "/usr/local/bin/python3.12"',
        )
    return path


def _libc(table: Table) -> str:
    value = table.string("libc")
    if value and not LIBC.match(value):
        raise table.error(
            "libc", f'\'{value}\' is not a C library: use e.g. "glibc 2.36" or "musl 1.2"'
        )
    return value


def _index_url(table: Table) -> str:
    value = table.string("index_url")
    if value and not re.match(r"^https?://[^/]+", value):
        raise table.error(
            "index_url", "not an http(s) URL of a simple index, e.g. https://pypi.org/simple"
        )
    return value
