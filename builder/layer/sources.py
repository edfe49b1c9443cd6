"""A layer spec and the build context → the sorted entries of one layer tar.

This is the edge that reads the build context: it walks directories without
following symlinks, refuses anything that would escape the context, and
decides every entry's metadata, so the tar writer only encodes.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from builder.errors import SourceError
from builder.layer.archcheck import check_file, worth_checking
from builder.layer.entries import Entry, HostFile, InlineContent, Kind, sort_key
from builder.model import WHITEOUT_PREFIX, Platform
from builder.spec.layers import glob_matcher
from builder.spec.values import ContentSpec, DirSpec, FileSpec, LayerSpec, LinkSpec, Owner

if TYPE_CHECKING:
    import pathspec

OwnerResolver = Callable[[Owner, str], tuple[int, int]]


def numeric_owner(owner: Owner, where: str) -> tuple[int, int]:
    """Resolve ``uid[:gid]`` (and root); names need the accounts of the image."""
    ids = {"root": "0"}
    user, group = ids.get(owner.user, owner.user), ids.get(owner.group, owner.group)
    if not user.isdigit() or (group and not group.isdigit()):
        raise SourceError(
            f"{where}: owner '{owner}' names a user or group this image does not define; "
            "use numeric UID:GID"
        )
    return int(user), int(group) if group else int(user)


@dataclass
class _Collector:
    """Entries of one layer by path, with where each came from (for errors)."""

    layer: LayerSpec
    context: Path
    platform: Platform
    resolve: OwnerResolver
    entries: dict[str, Entry] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)
    explicit_dirs: set[str] = field(default_factory=set)
    inodes: dict[tuple[int, ...], list[str]] = field(default_factory=dict)
    implicit_parents: bool = True

    def ids(self, owner: Owner | None, where: str) -> tuple[int, int]:
        return (0, 0) if owner is None else self.resolve(owner, where)

    def add(self, entry: Entry, where: str, explicit: bool = False) -> None:
        old = self.entries.get(entry.path)
        if old is not None:
            both_dirs = old.kind is Kind.DIR and entry.kind is Kind.DIR
            if not both_dirs or (explicit and entry.path in self.explicit_dirs):
                raise SourceError(
                    f"layer '{self.layer.name}': /{entry.path} is written twice, "
                    f"by {self.origin[entry.path]} and by {where}; keep one of them"
                )
            if not explicit:
                return
        if explicit:
            self.explicit_dirs.add(entry.path)
        self.entries[entry.path] = entry
        self.origin[entry.path] = where


def layer_entries(
    layer: LayerSpec,
    context: Path,
    platform: Platform,
    resolve: OwnerResolver = numeric_owner,
    *,
    extra: Sequence[tuple[Entry, str]] = (),
    extra_groups: Sequence[Sequence[str]] = (),
    implicit_parents: bool = True,
) -> list[Entry]:
    """Every entry of ``layer`` for ``platform``, in tar order.

    ``extra`` are entries made elsewhere (whiteouts, tarball members, account
    files) with where each came from; ``extra_groups`` their hardlink groups.
    Missing parent directories are added (0755, root) when ``implicit_parents``;
    over a base they are left out, so a layer never resets the mode or owner of
    a base directory, and runtimes create a missing one as 0755 root.
    """
    collector = _Collector(
        layer, context.resolve(), platform, resolve, implicit_parents=implicit_parents
    )
    for entry, where in extra:
        collector.add(entry, where)
    for spec in layer.files:
        if not spec.platforms or platform in spec.platforms:
            _add_files(collector, replace(spec, src=substitute(spec.src, platform)))
    for directory in layer.dirs:
        _add_dir(collector, directory)
    for link in layer.symlinks:
        uid, gid = collector.ids(link.owner, link.where)
        path = _rel(link.path)
        collector.add(Entry(path, Kind.SYMLINK, 0o777, uid, gid, linkname=link.target), link.where)
    for content in layer.content:
        _add_content(collector, content)
    groups = _hardlink_groups(collector, layer.hardlinks)
    groups += [list(group) for group in extra_groups]
    _add_parents(collector)
    return _link_groups(sorted(collector.entries.values(), key=lambda e: sort_key(e.path)), groups)


def substitute(path: str, platform: Platform) -> str:
    """Fill {os}, {arch}, {variant} and {platform} (e.g. linux-arm-v7) into a path."""
    values = {
        "os": platform.os,
        "arch": platform.architecture,
        "variant": platform.variant,
        "platform": str(platform).replace("/", "-"),
    }
    for name, value in values.items():
        path = path.replace(f"{{{name}}}", value)
    return path


def _rel(image_path: str) -> str:
    return image_path.strip("/")


def _add_dir(collector: _Collector, spec: DirSpec) -> None:
    uid, gid = collector.ids(spec.owner, spec.where)
    path = _rel(spec.path)
    if path:
        entry = Entry(path, Kind.DIR, spec.mode, uid, gid, xattrs=spec.xattrs)
        collector.add(entry, spec.where, explicit=True)


def _add_content(collector: _Collector, spec: ContentSpec) -> None:
    uid, gid = collector.ids(spec.owner, spec.where)
    content = InlineContent(spec.data)
    entry = Entry(_rel(spec.dst), Kind.FILE, spec.mode, uid, gid, content, xattrs=spec.xattrs)
    collector.add(entry, spec.where)


def in_context(root: Path, relative: str, where: str) -> Path:
    """The real path of ``relative`` in the build context; symlinks may not lead out of it."""
    source = root / relative
    if not os.path.lexists(source):
        raise SourceError(f"{where}: {source} does not exist in the build context {root}")
    real = Path(os.path.realpath(source))
    if not _inside(real, root):
        raise SourceError(f"{where}: resolves to {real}, outside the build context {root}")
    return real


def _add_files(collector: _Collector, spec: FileSpec) -> None:
    where = f"{spec.where} (src '{spec.src}')"
    real = in_context(collector.context, spec.src, where)
    st = os.stat(real)
    uid, gid = collector.ids(spec.owner, spec.where)
    if stat.S_ISDIR(st.st_mode):
        dst = _rel(spec.dst)
        if dst:
            collector.add(Entry(dst, Kind.DIR, 0o755, uid, gid), where)
        matcher = glob_matcher(spec.exclude) if spec.exclude else None
        _walk(collector, spec, str(real), "", dst, matcher, (uid, gid))
        return
    dst = spec.dst + real.name if spec.dst.endswith("/") else spec.dst
    _add_node(collector, spec, str(real), _rel(dst), st, (uid, gid))


def _walk(
    collector: _Collector,
    spec: FileSpec,
    directory: str,
    rel: str,
    dst: str,
    matcher: pathspec.GitIgnoreSpec | None,
    ids: tuple[int, int],
) -> None:
    """Host paths stay strings here: pathlib objects cost more than the walk itself."""
    with os.scandir(directory) as children:
        for child in children:
            child_rel = f"{rel}{child.name}"
            is_dir = child.is_dir(follow_symlinks=False)
            if matcher is not None and matcher.match_file(child_rel + ("/" if is_dir else "")):
                continue
            target = f"{dst}/{child.name}" if dst else child.name
            st = child.stat(follow_symlinks=False)
            _add_node(collector, spec, child.path, target, st, ids)
            if is_dir:
                _walk(collector, spec, child.path, child_rel + "/", target, matcher, ids)


def _add_node(
    collector: _Collector,
    spec: FileSpec,
    host: str,
    dst: str,
    st: os.stat_result,
    ids: tuple[int, int],
) -> None:
    """One file, directory or symlink of the context, checked and normalised."""
    where = f"{spec.where} ({host})"
    if os.path.basename(host).startswith(WHITEOUT_PREFIX):
        raise SourceError(f"{where}: names starting with '.wh.' are reserved for whiteouts")
    uid, gid = ids
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        collector.add(Entry(dst, Kind.DIR, 0o755, uid, gid), where)
    elif stat.S_ISLNK(mode):
        real = Path(os.path.realpath(host))
        if not _inside(real, collector.context):
            raise SourceError(
                f"{where}: symlink to '{os.readlink(host)}' points outside the build context "
                f"{collector.context}; replace it with the file or declare it in 'symlinks'"
            )
        collector.add(Entry(dst, Kind.SYMLINK, 0o777, uid, gid, linkname=os.readlink(host)), where)
    elif stat.S_ISREG(mode):
        perm = spec.mode if spec.mode is not None else (0o755 if mode & stat.S_IXUSR else 0o644)
        if spec.check_arch and worth_checking(perm, dst):
            check_file(host, dst, collector.platform, where)
        content = HostFile.of(host, st)
        entry = Entry(dst, Kind.FILE, perm, uid, gid, content, xattrs=spec.xattrs)
        collector.add(entry, where)
        if st.st_nlink > 1:
            key = (st.st_dev, st.st_ino, perm, uid, gid)
            collector.inodes.setdefault(key, []).append(dst)
    else:
        raise SourceError(
            f"{where}: is a {_kind_name(mode)}; only regular files, directories and "
            "symlinks can be copied into an image"
        )


def _kind_name(mode: int) -> str:
    for test, name in (
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISFIFO, "named pipe"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    ):
        if test(mode):
            return name
    return "special file"


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _hardlink_groups(collector: _Collector, links: tuple[LinkSpec, ...]) -> list[list[str]]:
    """Sets of paths that must share one inode: same-inode sources and 'hardlinks'."""
    group_of: dict[str, list[str]] = {}
    groups: list[list[str]] = []
    for members in collector.inodes.values():
        if len(members) > 1:
            groups.append(members)
            group_of.update(dict.fromkeys(members, members))
    for link in links:
        target = _rel(link.target) if link.target.startswith("/") else ""
        entry = collector.entries.get(target)
        if entry is None or entry.kind is not Kind.FILE:
            raise SourceError(
                f"{link.where}: hardlink target '{link.target}' must be an absolute path of a "
                f"regular file written in the same layer '{collector.layer.name}'"
            )
        path = _rel(link.path)
        collector.add(replace(entry, path=path), link.where)
        group = group_of.get(target)
        if group is None:
            group = [target]
            groups.append(group)
            group_of[target] = group
        group.append(path)
        group_of[path] = group
    return groups


def _link_groups(entries: list[Entry], groups: list[list[str]]) -> list[Entry]:
    """The first member of each group in tar order keeps the bytes; the rest link to it."""
    leader: dict[str, str] = {}
    for group in groups:
        first = min(group, key=sort_key)
        leader.update((path, first) for path in group if path != first)
    return [
        replace(e, kind=Kind.HARDLINK, content=None, linkname=leader[e.path])
        if e.path in leader
        else e
        for e in entries
    ]


def _add_parents(collector: _Collector) -> None:
    """Check (and, when asked, add) every entry's ancestors, walking up from each.

    The walk up stops at the first ancestor that is an entry: its own
    ancestors are checked when its turn comes.
    """
    entries = collector.entries
    for path in list(entries):
        parent = path
        while "/" in parent:
            parent = parent.rpartition("/")[0]
            existing = entries.get(parent)
            if existing is not None:
                if existing.kind is not Kind.DIR:
                    raise SourceError(
                        f"layer '{collector.layer.name}': /{parent} is a {existing.kind.value} "
                        f"(from {collector.origin[parent]}) but /{path} needs it to be a directory"
                    )
                break
            if collector.implicit_parents:
                entries[parent] = Entry(parent, Kind.DIR, 0o755)
                collector.origin[parent] = "an implicit parent directory"
