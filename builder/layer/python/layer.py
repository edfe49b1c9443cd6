"""A ``python = {...}`` layer for one platform: lock → chosen files → installed entries.

One ``PythonLayers`` serves a whole build: lock files are read once, index
pages listed once, the project's wheel built once, and a wheel installed once
per install location (a pure-Python lock gives the same entries, so the same
layer, for every platform).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from threading import Lock
from typing import TypeVar

from packaging.specifiers import SpecifierSet

from builder.errors import PackageError
from builder.layer.archcheck import check_head, worth_checking
from builder.layer.cache import hash_file
from builder.layer.entries import Entry, InlineContent, Kind
from builder.layer.lower import LowerFS
from builder.layer.python.choose import Choice, candidates, choose
from builder.layer.python.fetch import Fetcher, IndexFile
from builder.layer.python.indexes import Index, indexes
from builder.layer.python.install import check_compile, install_wheel
from builder.layer.python.installed import install_key, remembered
from builder.layer.python.locked import Locked, LockInput, read_pylock, read_requirements
from builder.layer.python.target import Target, find_target
from builder.layer.python.wheelbuild import pure_wheel
from builder.layer.sources import in_context
from builder.model import Platform
from builder.spec.values import PythonSpec

T = TypeVar("T")
Located = list[tuple[Entry, str]]


class PythonLayers:
    """Builds python layers for every platform of one build; ``cache`` holds downloads."""

    def __init__(self, context: Path, cache: Path, work: Path) -> None:
        self.context, self.cache, self.work = context, cache, work
        self.memo: dict[tuple[object, ...], object] = {}
        self.lock = Lock()
        self.fetchers: list[Fetcher] = []

    def close(self) -> None:
        for fetcher in self.fetchers:
            fetcher.close()

    def _once(self, key: tuple[object, ...], make: Callable[[], T]) -> T:
        """``make()`` once per key for the whole build (platform threads wait for each other)."""
        with self.lock:
            if key not in self.memo:
                self.memo[key] = make()
            return self.memo[key]  # type: ignore[return-value]

    def entries(self, spec: PythonSpec, lower: LowerFS, platform: Platform) -> Located:
        """The layer's entries for ``platform``, each with where it came from."""
        where = spec.where
        target = find_target(spec, lower, platform, where)
        if spec.compile:
            check_compile(target, where)
        files: dict[str, tuple[Entry, str]] = {}
        for wheel, sha256, what in self._wheels(spec, target):
            verified = self.cache / "python" / "verified" / sha256
            install = partial(install_wheel, wheel, target, spec.compile, what, verified)
            parts = (*_install_key(target), spec.compile)
            if spec.kind != "project":  # a project's wheel changes with its code: not kept
                record = self.cache / "python" / "installs" / f"{install_key(sha256, parts)}.json"
                install = partial(remembered, record, wheel, install)
            installed = self._once(("install", wheel, *parts), install)
            for entry in installed:
                if entry.path in files:
                    raise PackageError(
                        f"{where}: /{entry.path} is installed by both {files[entry.path][1]} "
                        f"and {what}; the lock holds conflicting distributions: drop one"
                    )
                if worth_checking(entry.mode, entry.path) and entry.content is not None:
                    with entry.content.open() as stream:
                        check_head(stream.read(4096), entry.path, platform, f"{where} ({what})")
                files[entry.path] = (entry, what)
        if spec.venv:
            files.update((e.path, (e, f"{where} (venv)")) for e in venv_entries(target))
        return list(files.values())

    def _wheels(self, spec: PythonSpec, target: Target) -> list[tuple[Path, str, str]]:
        """Each wheel to install, with the sha256 that names it and what it is for."""
        if spec.kind == "project":
            what = f"{spec.where} (project '{spec.source}')"
            source = in_context(self.context, spec.source, what)
            main = indexes(spec.index_url, "", ())[0].secret_url() if spec.index_url else ""
            out = self.work / "python-project"
            build = partial(pure_wheel, source, out, what, str(target.platform), main)
            wheel = self._once(("project", source), build)
            return [(wheel, hash_file(wheel)[0], what)]
        lock = self._once(("lock", spec.kind, spec.source), lambda: self._read_lock(spec))
        fetcher = self._once(
            ("fetcher", spec.index_url, spec.source), lambda: self._fetcher(spec, lock)
        )
        check_environment(lock, target, f"{spec.where}: {spec.kind} '{spec.source}'")
        result = []
        for dist in lock.dists:
            if dist.marker is not None and not dist.marker.evaluate(target.environment()):
                continue
            if dist.requires_python and target.full_version not in SpecifierSet(
                dist.requires_python
            ):
                raise PackageError(
                    f"{dist.where}: {dist} requires Python {dist.requires_python}, but "
                    f"{target.describe()} has {target.full_version}; lock again for it"
                )
            choice = self._choose(fetcher, dist, target)
            file = choice.file
            path = self._once(
                ("fetch", choice.file.sha256),
                partial(fetcher.fetch, file.url, file.sha256, file.index, file.filename),
            )
            if choice.sdist:
                path = self._once(
                    ("sdist", file.sha256),
                    partial(self._build_sdist, path, choice, dist, target, fetcher),
                )
                result.append((path, f"built-from-{file.sha256}", str(dist)))
                continue
            path = self._once(
                ("named", file.sha256), partial(self._named, path, file.filename, file.sha256)
            )
            result.append((path, file.sha256, str(dist)))
        return result

    def _read_lock(self, spec: PythonSpec) -> LockInput:
        shown = f"{spec.where}: {spec.kind} '{spec.source}'"
        path = in_context(self.context, spec.source, shown)
        if not path.is_file():
            raise PackageError(f"{shown}: {path} is not a file in the build context")
        return (
            read_requirements(path, spec.source)
            if spec.kind == "requirements"
            else read_pylock(path, spec.source)
        )

    def _fetcher(self, spec: PythonSpec, lock: LockInput) -> Fetcher:
        fetcher = Fetcher(
            indexes(spec.index_url, lock.index_url, lock.extra_index_urls), self.cache, spec.where
        )
        self.fetchers.append(fetcher)
        return fetcher

    def _files(self, fetcher: Fetcher, dist: Locked) -> list[IndexFile]:
        """The lock's own URLs (pylock.toml), else the index pages (requirements.txt)."""
        if all(f.url for f in dist.files):
            indexes = fetcher.indexes
            return [
                IndexFile(f.filename, f.url, f.sha256, _index_of(indexes, f.url))
                for f in dist.files
            ]
        hashes = [f.sha256 for f in dist.files]
        remembered = fetcher.remembered(dist.name, dist.version, hashes)
        if remembered:
            return remembered
        found = candidates(dist, fetcher.files(dist.name))
        fetcher.remember(dist.name, dist.version, hashes, found)
        return found

    def _choose(self, fetcher: Fetcher, dist: Locked, target: Target) -> Choice:
        """The file for ``target``; a remembered one not in the cache any more is listed again."""
        choice = choose(dist, candidates(dist, self._listed(fetcher, dist)), target)
        if choice.file.url or fetcher.cached(choice.file.sha256) is not None:
            return choice
        found = candidates(dist, fetcher.files(dist.name))
        fetcher.remember(dist.name, dist.version, [f.sha256 for f in dist.files], found)
        return choose(dist, found, target)

    def _listed(self, fetcher: Fetcher, dist: Locked) -> list[IndexFile]:
        key = ("files", fetcher, dist.name, dist.version)
        return self._once(key, partial(self._files, fetcher, dist))

    def _named(self, blob: Path, filename: str, sha256: str) -> Path:
        """A link to the cached blob under its own name (installer reads tags from it)."""
        named = self.work / "wheels" / sha256 / filename
        if not named.exists():
            named.parent.mkdir(parents=True, exist_ok=True)
            named.symlink_to(blob)
        return named

    def _build_sdist(
        self, sdist: Path, choice: Choice, dist: Locked, target: Target, fetcher: Fetcher
    ) -> Path:
        """A pure wheel built from the sdist once, kept in the cache by the sdist's hash."""
        out = self.cache / "python-wheels" / choice.file.sha256
        built = sorted(out.glob("*.whl")) if out.exists() else []
        if built:
            return built[0]
        with tempfile.TemporaryDirectory(prefix="bale-sdist-", dir=self.work) as temp:
            named = Path(temp) / choice.file.filename
            shutil.copyfile(sdist, named)
            main = fetcher.indexes[0].secret_url() if fetcher.indexes else ""
            return pure_wheel(named, out, f"{dist.where}: {dist}", str(target.platform), main)


def _index_of(known: tuple[Index, ...], url: str) -> Index:
    for index in known:
        if index.auth_for(url) is not None or url.startswith(index.url):
            return index
    return Index(url)


def _install_key(target: Target) -> tuple[object, ...]:
    return (target.site_packages, target.scripts, target.data, target.shebang, target.python)


def venv_entries(target: Target) -> list[Entry]:
    """pyvenv.cfg and bin/python links, as ``python -m venv`` writes them."""
    version = f"{target.python[0]}.{target.python[1]}"
    venv = target.venv.lstrip("/")
    home = target.interpreter.rsplit("/", 1)[0] or "/"
    cfg = (
        f"home = {home}\ninclude-system-site-packages = false\nversion = {target.full_version}\n"
        f"executable = {target.interpreter}\ncommand = {target.interpreter} -m venv {target.venv}\n"
    )
    return [
        Entry(f"{venv}/pyvenv.cfg", Kind.FILE, 0o644, content=InlineContent(cfg.encode())),
        Entry(f"{venv}/bin/python", Kind.SYMLINK, 0o777, linkname=target.interpreter),
        Entry(f"{venv}/bin/python3", Kind.SYMLINK, 0o777, linkname="python"),
        Entry(f"{venv}/bin/python{version}", Kind.SYMLINK, 0o777, linkname="python"),
        Entry(f"{venv}/lib64", Kind.SYMLINK, 0o777, linkname="lib"),
    ]


def check_environment(lock: LockInput, target: Target, where: str) -> None:
    """A lock made for other environments (``environments``, ``requires-python``) is refused."""
    env = target.environment()
    if lock.environments and not any(m.evaluate(env) for m in lock.environments):
        markers = " or ".join(f"'{m}'" for m in lock.environments)
        raise PackageError(
            f"{where}: the lock is only for environments {markers}, which exclude "
            f"{target.describe()}; lock for this platform too, or drop it from platforms"
        )
    requires = lock.requires_python
    if requires and not SpecifierSet(requires).contains(target.full_version):
        raise PackageError(
            f"{where}: the lock requires Python {requires}, but {target.describe()} has "
            f"{target.full_version}; use a base with a fitting Python or lock again"
        )
