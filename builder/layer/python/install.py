"""A wheel installed, as pip would, into layer entries instead of a directory.

pypa's ``installer`` reads the wheel, writes console scripts and routes files
to their scheme; ``EntryDestination`` turns each write into an ``Entry`` at
the target's path. A file copied unchanged stays in the wheel (a
``ZipMember`` known by its RECORD hash, so a rebuild decompresses nothing);
the wheel's RECORD is checked against every file the first time the wheel
is installed on this machine. Scripts get the image's interpreter in their
shebang. With ``compile``, .py files get ``unchecked-hash`` pycs, which hold
no mtime (only when the host Python's version is the target's).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import py_compile
import sys
import tempfile
import zipfile
from base64 import urlsafe_b64decode, urlsafe_b64encode
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from installer import install
from installer.destinations import WheelDestination
from installer.exceptions import InstallerError
from installer.records import Hash, RecordEntry, parse_record_file
from installer.scripts import Script
from installer.sources import WheelFile
from installer.utils import Scheme, construct_record_file, fix_shebang

from builder.errors import PackageError
from builder.layer.entries import Content, Entry, InlineContent, Kind, ZipMember
from builder.layer.python.target import Target

if TYPE_CHECKING:
    from installer.scripts import ScriptSection

INSTALLER = b"bale\n"


def _b64(digest: bytes) -> str:
    return urlsafe_b64encode(digest).decode().rstrip("=")


class EntryDestination(WheelDestination):
    """Collects the files of one wheel as entries (paths relative to the image root)."""

    def __init__(
        self, target: Target, compile_bytecode: bool, wheel: zipfile.ZipFile, name: str
    ) -> None:
        self.target, self.compile = target, compile_bytecode
        site = target.site_packages
        version = f"{target.python[0]}.{target.python[1]}"
        self.schemes = {
            "purelib": site,
            "platlib": site,
            "scripts": target.scripts,
            "data": target.data,
            "headers": f"{target.data}/include/site/python{version}/{name}",
        }
        self.members = _members(wheel)
        self.files: dict[str, tuple[Content, int]] = {}

    def _path(self, scheme: Scheme, path: str) -> str:
        root = self.schemes[scheme]
        full = posixpath.normpath(posixpath.join(root, path))
        if not (full + "/").startswith(root.rstrip("/") + "/"):
            raise PackageError(f"wheel file '{path}' escapes its install directory {root}")
        return full.lstrip("/")

    def _put(self, scheme: Scheme, path: str, data: bytes, executable: bool) -> RecordEntry:
        self.files[self._path(scheme, path)] = (InlineContent(data), 0o755 if executable else 0o644)
        return RecordEntry(path, Hash("sha256", _b64(hashlib.sha256(data).digest())), len(data))

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
        member = self.members.get(getattr(stream, "name", ""))
        if scheme == "scripts":
            with fix_shebang(stream, self.target.shebang) as fixed:
                return self._put(scheme, path, fixed.read(), True)
        if member is None:
            return self._put(scheme, path, stream.read(), is_executable)
        self.files[self._path(scheme, path)] = (member, 0o755 if is_executable else 0o644)
        digest = _b64(bytes.fromhex(member.sha256))
        return RecordEntry(path, Hash("sha256", digest), member.size)

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
        mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
        with tempfile.TemporaryDirectory(prefix="bale-pyc-") as work:
            source, pyc = Path(work) / "source.py", Path(work) / "out.pyc"
            for scheme, record in records:
                if scheme not in ("purelib", "platlib") or not record.path.endswith(".py"):
                    continue
                image_path = self._path(scheme, record.path)
                with self.files[image_path][0].open() as stream:
                    source.write_bytes(stream.read())
                try:
                    py_compile.compile(
                        str(source), str(pyc), "/" + image_path, True, invalidation_mode=mode
                    )
                except py_compile.PyCompileError:
                    continue  # pip skips files that do not compile (e.g. Python 2 leftovers)
                folder, name = posixpath.split(record.path)
                rel = posixpath.join(folder, "__pycache__", f"{name[:-3]}.{tag}.pyc")
                self.files[self._path(scheme, rel)] = (InlineContent(pyc.read_bytes()), 0o644)
                added.append((scheme, RecordEntry(rel, None, None)))
        return added

    def entries(self) -> list[Entry]:
        return [
            Entry(path, Kind.FILE, mode, content=content)
            for path, (content, mode) in self.files.items()
        ]


def _members(wheel: zipfile.ZipFile) -> dict[str, ZipMember]:
    """Members whose RECORD line gives a sha256 (sizes from the zip directory)."""
    records = [n for n in wheel.namelist() if n.count("/") == 1 and n.endswith(".dist-info/RECORD")]
    if len(records) != 1:
        return {}
    lines = wheel.read(records[0]).decode("utf-8").splitlines()
    result = {}
    for path, hash_text, _ in parse_record_file(lines):
        algorithm, _, value = hash_text.partition("=")
        if algorithm != "sha256" or not value:
            continue
        try:
            info = wheel.getinfo(path)
        except KeyError:
            continue
        sha = urlsafe_b64decode(value + "=" * (-len(value) % 4)).hex()
        result[path] = ZipMember(str(wheel.filename), path, info.file_size, sha)
    return result


def install_wheel(
    wheel: Path, target: Target, compile_bytecode: bool, what: str, verified: Path
) -> list[Entry]:
    """The entries of ``wheel`` installed for ``target``.

    Every file is checked against RECORD unless ``verified`` (a marker in the
    cache, named by the wheel's own hash) says that was done before.
    """
    try:
        with zipfile.ZipFile(wheel) as archive:
            source = WheelFile(archive)
            source.validate_record(validate_contents=not verified.exists())
            destination = EntryDestination(target, compile_bytecode, archive, source.distribution)
            install(source, destination, {"INSTALLER": INSTALLER})
    except (InstallerError, ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
        raise PackageError(f"{what}: {wheel.name} cannot be installed: {exc}") from None
    verified.parent.mkdir(parents=True, exist_ok=True)
    verified.touch()
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
