"""The target of an install: interpreter, paths, C library, machine → wheel tags, markers.

Found in the merged view of the base (``LowerFS``) unless image.toml names
them; nothing here runs the target's interpreter.
"""

from __future__ import annotations

import functools
import posixpath
import re
from dataclasses import dataclass

from packaging.tags import Tag, compatible_tags, cpython_tags

from builder.errors import PackageError
from builder.layer.entries import Kind
from builder.layer.filebody import APK_INSTALLED, DPKG_STATUS
from builder.layer.lower import LowerFS
from builder.model import Platform
from builder.spec.python import LIBC
from builder.spec.values import PythonSpec

# GOARCH (and arm variant) → the machine name in wheel platform tags.
MACHINES = {
    "amd64": "x86_64",
    "arm64": "aarch64",
    "386": "i686",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "arm": "armv7l",
}
# Where python: images, then distributions, keep the interpreter.
INTERPRETERS = ("usr/local/bin/python3", "usr/bin/python3")
_VERSIONED = re.compile(r"python(3)\.(\d+)$")
# manylinux2014/2010/1 are the old names of manylinux_2_17/2_12/2_5.
_LEGACY = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}


@dataclass(frozen=True, slots=True)
class Target:
    """Everything that decides which wheel fits and where its files go."""

    platform: Platform
    python: tuple[int, int]
    full_version: str
    libc: str  # "glibc" or "musl"
    libc_version: tuple[int, int]
    interpreter: str  # the image's interpreter, absolute
    shebang: str  # what console scripts run: the interpreter, or the venv's python
    site_packages: str
    scripts: str
    data: str
    venv: str = ""

    @property
    def machine(self) -> str:
        return MACHINES[self.platform.architecture]

    def describe(self) -> str:
        major, minor = self.python
        libc = f"{self.libc} {self.libc_version[0]}.{self.libc_version[1]}"
        return f"{self.platform} (CPython {major}.{minor}, {libc}, {self.machine})"

    def platform_tags(self) -> list[str]:
        """manylinux or musllinux tags, newest C library first."""
        major, minor = self.libc_version
        if self.libc == "musl":
            return [f"musllinux_{major}_{m}_{self.machine}" for m in range(minor, -1, -1)]
        tags = []
        for m in range(minor, 4, -1):
            tags.append(f"manylinux_{major}_{m}_{self.machine}")
            legacy = _LEGACY.get((major, m))
            if legacy and (m >= 17 or self.machine in ("x86_64", "i686")):
                tags.append(f"{legacy}_{self.machine}")
        return tags

    def tags(self) -> list[Tag]:
        """Every tag a wheel may carry for this target, best first (as pip orders them)."""
        return list(ranks(self.python, tuple(self.platform_tags())))

    def environment(self) -> dict[str, str]:
        """The PEP 508 marker environment of the target interpreter."""
        major, minor = self.python
        return {
            "implementation_name": "cpython",
            "implementation_version": self.full_version,
            "os_name": "posix",
            "platform_machine": self.machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": self.full_version,
            "python_version": f"{major}.{minor}",
            "sys_platform": "linux",
        }


@functools.lru_cache(maxsize=16)
def ranks(python: tuple[int, int], plats: tuple[str, ...]) -> dict[Tag, int]:
    """Tag → rank (0 is best) for a Python version on these platform tags."""
    tags = [
        *cpython_tags(python, platforms=plats),
        *compatible_tags(python, f"cp{python[0]}{python[1]}", plats),
    ]
    result: dict[Tag, int] = {}
    for rank, tag in enumerate(tags):
        result.setdefault(tag, rank)
    return result


def find_target(spec: PythonSpec, lower: LowerFS, platform: Platform, where: str) -> Target:
    """The target for ``platform``: from ``spec`` where given, else from the base's files."""
    if platform.architecture not in MACHINES or platform.os != "linux":
        raise PackageError(
            f"{where}: no Python wheel platform is known for {platform}; "
            "build for linux/amd64, linux/arm64, linux/386, linux/arm, ppc64le, s390x or riscv64"
        )
    interpreter = spec.interpreter or _interpreter(lower, where)
    found = _VERSIONED.search(interpreter)
    if found is None:
        raise PackageError(
            f"{where}: cannot tell the Python version of {interpreter}; "
            'set python.interpreter = "/usr/bin/python3.X"'
        )
    python = (int(found.group(1)), int(found.group(2)))
    version = f"{python[0]}.{python[1]}"
    libc, libc_version = _libc(spec, lower, where)
    full = _full_version(lower, version)
    if spec.venv:
        site = f"{spec.venv}/lib/python{version}/site-packages"
        return Target(
            platform,
            python,
            full,
            libc,
            libc_version,
            interpreter,
            f"{spec.venv}/bin/python",
            site,
            f"{spec.venv}/bin",
            spec.venv,
            spec.venv,
        )
    site = spec.site_packages or _site_packages(lower, interpreter, version)
    prefix = site.split("/lib/")[0] if "/lib/" in site else "/usr/local"
    return Target(
        platform,
        python,
        full,
        libc,
        libc_version,
        interpreter,
        interpreter,
        site,
        f"{prefix}/bin",
        prefix,
    )


def _resolve(lower: LowerFS, path: str) -> str | None:
    """``path`` (relative) with symlinks followed in the merged view; None if missing."""
    for _ in range(16):
        node = lower.get(path)
        if node is None:
            parent, _, name = path.rpartition("/")
            real_parent = _resolve(lower, parent) if parent else ""
            if real_parent is None or real_parent == parent:
                return None
            path = f"{real_parent}/{name}" if real_parent else name
            continue
        if node.kind is not Kind.SYMLINK:
            return path
        base = posixpath.dirname(path)
        target = node.linkname
        path = posixpath.normpath(
            target.lstrip("/") if target.startswith("/") else f"{base}/{target}"
        )
    return None


def _interpreter(lower: LowerFS, where: str) -> str:
    for candidate in INTERPRETERS:
        real = _resolve(lower, candidate)
        if real is not None and _VERSIONED.search(real):
            return "/" + posixpath.join(posixpath.dirname(candidate), real.rsplit("/", 1)[-1])
    raise PackageError(
        f"{where}: the base image has no Python (looked for /usr/local/bin/python3 and "
        "/usr/bin/python3); use a base with Python, e.g. python:3.12-slim or debian with "
        'python3, or set python.interpreter = "/usr/bin/python3.X" and python.libc'
    )


def _site_packages(lower: LowerFS, interpreter: str, version: str) -> str:
    """python: images use site-packages under their prefix; Debian's pip uses dist-packages."""
    prefix = posixpath.dirname(posixpath.dirname(interpreter))
    own = f"{prefix}/lib/python{version}/site-packages"
    if lower.get(own.lstrip("/")) is not None:
        return own
    if lower.get("usr/lib/python3/dist-packages") is not None:
        return f"/usr/local/lib/python{version}/dist-packages"
    return own


def _libc(spec: PythonSpec, lower: LowerFS, where: str) -> tuple[str, tuple[int, int]]:
    given = LIBC.match(spec.libc) if spec.libc else None
    if given is not None:
        return given.group(1), (int(given.group(2)), int(given.group(3)))
    dpkg = _package_version(lower.content(DPKG_STATUS), "Package: libc6\n", "Version: ")
    if dpkg is not None:
        return "glibc", dpkg
    apk = _package_version(lower.content(APK_INSTALLED), "P:musl\n", "V:")
    if apk is not None:
        return "musl", apk
    raise PackageError(
        f"{where}: cannot tell the base image's C library (no libc6 in {DPKG_STATUS}, no musl "
        f'in {APK_INSTALLED}); set python.libc = "glibc 2.36" or "musl 1.2"'
    )


def _package_version(data: bytes | None, stanza: str, field: str) -> tuple[int, int] | None:
    """MAJOR.MINOR of one package in a dpkg status or apk installed database."""
    if not data:
        return None
    text = data.decode("utf-8", "replace")
    for block in re.split(r"\n\s*\n", text):
        if (block + "\n").startswith(stanza) or f"\n{stanza}" in f"\n{block}\n":
            found = re.search(rf"^{re.escape(field)}(?:\d+:)?(\d+)\.(\d+)", block, re.M)
            if found:
                return int(found.group(1)), int(found.group(2))
    return None


def _full_version(lower: LowerFS, version: str) -> str:
    """X.Y.Z from Debian's python3.X-minimal package, else X.Y.0 (python_full_version markers)."""
    text = (lower.content(DPKG_STATUS) or b"").decode("utf-8", "replace")
    found = re.search(
        rf"^Package: python{re.escape(version)}-minimal\n(?:.+\n)*?Version: (\d+\.\d+\.\d+)",
        text,
        re.M,
    )
    return found.group(1) if found else f"{version}.0"
