"""The values image.toml is read into: frozen, checked, and free of any TOML.

``spec.load`` makes them; everything downstream reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from builder.model import Codec, Platform
from builder.reference import Reference
from builder.spec.locations import Location

FORMATS = ("oci", "docker")
INDEX_MODES = ("auto", "always")
ALL_PLATFORMS = "all"
SBOM_FORMATS = ("spdx", "cyclonedx")
PLACEHOLDERS = ("os", "arch", "variant", "platform")
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


PYTHON_SOURCES = ("requirements", "lock", "project")


@dataclass(frozen=True, slots=True)
class PythonSpec:
    """``python = {...}`` of a layer: what to install (``source`` of ``kind``) and where.

    ``interpreter``, ``libc`` and ``site_packages`` are found in the base when empty.
    """

    kind: str
    source: str
    venv: str = ""
    interpreter: str = ""
    site_packages: str = ""
    libc: str = ""
    index_url: str = ""
    compile: bool = False
    where: str = ""


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
    python: PythonSpec | None = None


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
class CacheSpec:
    """``[cache]``: registry caches read (``from``) and written (``to``), and the entry limit."""

    sources: tuple[Reference, ...] = ()
    targets: tuple[Reference, ...] = ()
    max_entries: int | None = None


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
    base_ref: Location | None = None
    users: tuple[UserSpec, ...] = ()
    groups: tuple[GroupSpec, ...] = ()
    all_platforms: bool = False
    repository: str = ""
    sbom: tuple[str, ...] = SBOM_FORMATS[:1]
    provenance: bool = True
    cache: CacheSpec = CacheSpec()
