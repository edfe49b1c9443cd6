"""A wheel installed, as pip would, into layer entries instead of a directory.

pypa's ``installer`` reads the wheel, checks its RECORD, writes console
scripts and routes files to their scheme; ``EntryDestination`` turns each
write into an ``Entry`` at the target's path. Scripts get the image's
interpreter in their shebang. With ``compile``, .py files get
``unchecked-hash`` pycs, which hold no mtime, so they are the same on every
build (only when the host Python's version is the target's).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import py_compile
import sys
import tempfile
import zipfile
from base64 import urlsafe_b64encode
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from installer import install
from installer.destinations import WheelDestination
from installer.exceptions import InstallerError
from installer.records import Hash, RecordEntry
from installer.scripts import Script
from installer.sources import WheelFile
from installer.utils import Scheme, construct_record_file, fix_shebang

from builder.errors import PackageError
from builder.layer.entries import Entry, InlineContent, Kind
from builder.layer.python.target import Target

if TYPE_CHECKING:
    from installer.scripts import ScriptSection

INSTALLER = b"bale\n"


class EntryDestination(WheelDestination):
    """Collects the files of one wheel as entries (paths relative to the image root)."""

    def __init__(self, target: Target, compile_bytecode: bool) -> None:
        self.target, self.compile = target, compile_bytecode
        site = target.site_packages
        self.schemes = {
            "purelib": site,
            "platlib": site,
            "scripts": target.scripts,
            "data": target.data,
            "headers": f"{target.data}/include/site/python{target.python[0]}.{target.python[1]}",
        }
        self.files: dict[str, tuple[bytes, int]] = {}

    def _path(self, scheme: Scheme, path: str) -> str:
        root = self.schemes[scheme]
        full = posixpath.normpath(posixpath.join(root, path))
        if not (full + "/").startswith(root.rstrip("/") + "/"):
            raise PackageError(f"wheel file '{path}' escapes its install directory {root}")
        return full.lstrip("/")

    def _put(self, scheme: Scheme, path: str, data: bytes, executable: bool) -> RecordEntry:
        self.files[self._path(scheme, path)] = (data, 0o755 if executable else 0o644)
        digest = urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")
        return RecordEntry(path, Hash("sha256", digest), len(data))

    def write_script(
        self, name: str, module: str, attr: str, section: ScriptSection
    ) -> RecordEntry:
        script = Script(name, module, attr, section)
        script_name, data = script.generate(self.target.shebang, "posix")
        return self._put(Scheme("scripts"), script_name, data, True)

    def write_file(
        self, scheme: Scheme, path: str | os.PathLike[str], stream: BinaryIO, is_executable: bool
    ) -> RecordEntry:
        path = os.fspath(path)
        if scheme == "scripts":
            with fix_shebang(stream, self.target.shebang) as fixed:
                return self._put(scheme, path, fixed.read(), True)
        return self._put(scheme, path, stream.read(), is_executable)

    def finalize_installation(
        self, scheme: Scheme, record_file_path: str, records: Iterable[tuple[Scheme, RecordEntry]]
    ) -> None:
        record_list = list(records)
        if self.compile:
            record_list += self._bytecode(record_list)
        root = self.schemes[scheme]

        def prefix(file_scheme: Scheme) -> str | None:
            if file_scheme == scheme:
                return None
            return posixpath.relpath(self.schemes[file_scheme], root) + "/"

        with construct_record_file(record_list, prefix) as stream:
            self._put(scheme, record_file_path, stream.read(), False)

    def _bytecode(
        self, records: list[tuple[Scheme, RecordEntry]]
    ) -> list[tuple[Scheme, RecordEntry]]:
        """unchecked-hash pycs for purelib/platlib .py files; listed in RECORD without a hash."""
        added = []
        tag = sys.implementation.cache_tag
        with tempfile.TemporaryDirectory(prefix="bale-pyc-") as work:
            for scheme, record in records:
                if scheme not in ("purelib", "platlib") or not record.path.endswith(".py"):
                    continue
                image_path = self._path(scheme, record.path)
                source = Path(work) / "source.py"
                source.write_bytes(self.files[image_path][0])
                pyc = Path(work) / "out.pyc"
                mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
                try:
                    py_compile.compile(
                        str(source),
                        str(pyc),
                        "/" + image_path,
                        doraise=True,
                        invalidation_mode=mode,
                    )
                except py_compile.PyCompileError:
                    continue  # pip skips files that do not compile (e.g. Python 2 leftovers)
                folder, name = posixpath.split(record.path)
                rel = posixpath.join(folder, "__pycache__", f"{name[:-3]}.{tag}.pyc")
                self.files[self._path(scheme, rel)] = (pyc.read_bytes(), 0o644)
                added.append((scheme, RecordEntry(rel, None, None)))
        return added

    def entries(self) -> list[Entry]:
        return [
            Entry(path, Kind.FILE, mode, content=InlineContent(data))
            for path, (data, mode) in self.files.items()
        ]


def install_wheel(wheel: Path, target: Target, compile_bytecode: bool, what: str) -> list[Entry]:
    """The entries of ``wheel`` installed for ``target``; RECORD checked against every file."""
    destination = EntryDestination(target, compile_bytecode)
    try:
        with WheelFile.open(wheel) as source:
            source.validate_record()
            install(source, destination, {"INSTALLER": INSTALLER})
    except (InstallerError, ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
        raise PackageError(f"{what}: {wheel.name} cannot be installed: {exc}") from None
    return destination.entries()


def check_compile(target: Target, where: str) -> None:
    """Bytecode is the host's: refuse when its Python version is not the target's."""
    host = sys.version_info[:2]
    if host != target.python:
        raise PackageError(
            f"{where}: compile = true needs the host Python to be the target's "
            f"({target.python[0]}.{target.python[1]}), but bale runs on {host[0]}.{host[1]}; "
            "run bale with that Python version or drop compile"
        )
