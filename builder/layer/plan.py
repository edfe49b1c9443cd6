"""The layers of one platform's image, in order, as entries: the accounts layer (from
``[[users]]``/``[[groups]]``; after any table that brings its own account files),
and each ``[[layers]]`` table with its whiteouts, tarball members and Python
installs. The merged view below each layer is kept only when a layer needs it
(deletions match against it, owner names resolve through its /etc/passwd, Python
layers find the interpreter and C library in it)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from builder.layer.accounts import GROUP, PASSWD, SHADOW, Accounts
from builder.layer.cache import LayerCache
from builder.layer.entries import Entry, InlineContent, Kind
from builder.layer.filebody import ACCOUNTS, Reading
from builder.layer.lower import (
    LowerFS,
    Node,
    StoredLayer,
    entry_members,
    read_layer,
    read_layer_for,
    whiteout_entries,
)
from builder.layer.sources import in_context, layer_entries
from builder.model import Codec, Platform
from builder.spec.values import ImageSpec, LayerSpec

if TYPE_CHECKING:
    from builder.layer.python.layer import PythonLayers

ACCOUNTS_WHERE = "[[users]]/[[groups]]"


@dataclass(frozen=True, slots=True)
class Planned:
    """One layer to build: its name, its codec and its sorted entries."""

    name: str
    codec: Codec
    entries: list[Entry]


class BaseScan(Protocol):
    """Another reader of the base layers (the SBOM), served by the pass that checks
    or plans them, so that a base layer is decompressed once per build."""

    @property
    def reading(self) -> Reading: ...

    def wants(self, layer: StoredLayer) -> bool:
        """Whether ``layer`` still has to be read for this scan."""

    def record(self, layer: StoredLayer, members: list[tuple[str, Node]]) -> None:
        """``layer``'s members, read as ``reading`` asks."""


def needs_lower(spec: ImageSpec) -> bool:
    """Whether the build must know the files below its layers.

    Deletions match against them, account names resolve through their
    /etc/passwd and /etc/group, and Python layers find the interpreter, its
    site-packages and the C library there; nothing else does, so a build without these
    reads no base layer (a push to the base's registry then mounts them all).
    """
    if spec.users or spec.groups or not _numeric(spec.config.user):
        return True
    for layer in spec.layers:
        if layer.delete or layer.opaque or layer.python:
            return True
        owners = [layer.tar_owner, *(f.owner for f in layer.files)]
        owners += [d.owner for d in layer.dirs] + [s.owner for s in layer.symlinks]
        owners += [c.owner for c in layer.content]
        if any(owner is not None and not _numeric(str(owner)) for owner in owners):
            return True
    return False


def _numeric(owner: str) -> bool:
    return all(part.isdigit() for part in owner.split(":") if part)


def plan_layers(
    spec: ImageSpec,
    platform: Platform,
    base: Sequence[StoredLayer] | None,
    base_name: str,
    work: Path,
    python: PythonLayers | None = None,
    check_base: bool = False,
    cache: LayerCache | None = None,
    scan: BaseScan | None = None,
) -> Iterator[Planned]:
    """Each layer's entries in build order; the next is planned once the caller asks.

    ``python`` installs the ``python`` tables; a build with one must give it.
    ``check_base``: read every base layer (digest, diff_id, media type, tar) even
    when the build does not need their files, unless ``cache`` remembers it sound.
    ``scan`` (the SBOM's) gets each base layer read here, from the same pass.

    The accounts layer goes first, unless a table may bring its own
    /etc/passwd or /etc/group (a ``tar``, or a file written there): then it
    goes right after the last such table and merges [[users]] and [[groups]]
    into the account files found there, so they survive.
    """
    track = needs_lower(spec)
    lower = _lower_of(base or (), base_name, scan) if track else LowerFS()
    if check_base and not track:
        _check(base or (), base_name, cache, scan)
    accounts = _accounts(spec, lower)
    parents = base is None
    layers = [s for s in spec.layers if not s.platforms or platform in s.platforms]
    position = accounts_position(layers) if spec.users or spec.groups else -1
    total = len(layers) + (position >= 0)
    for number in range(total):
        if number == position:
            merged = accounts if position == 0 else _accounts(spec, lower)
            table = LayerSpec("accounts", spec.codec, where=ACCOUNTS_WHERE)
            extra = _account_files(merged, lower)
            entries = layer_entries(
                table, spec.context, platform, extra=extra, implicit_parents=parents
            )
            yield Planned("accounts", spec.codec, entries)
        else:
            layer = layers[number - (0 <= position < number)]
            entries = _entries(layer, spec, platform, lower, accounts, work, parents, python)
            yield Planned(layer.name, layer.codec, entries)
        if track and number + 1 < total:
            lower.apply(entry_members(entries))


def _check(
    base: Sequence[StoredLayer], name: str, cache: LayerCache | None, scan: BaseScan | None
) -> None:
    """Read each base layer once per cache: what was found sound is remembered."""
    for layer in base:
        marker = cache.checked_path(layer.descriptor, layer.diff_id) if cache else None
        if marker is not None and marker.exists():
            marker.touch()  # used: kept by ``bale cache prune`` as long as it is used
            continue
        _read_base(layer, name, scan)
        if marker is not None:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()


def accounts_position(layers: Sequence[LayerSpec]) -> int:
    """How many of ``layers`` go below the accounts layer (see ``plan_layers``)."""
    position = 0
    for number, table in enumerate(layers, 1):
        written = {f.dst.strip("/") for f in table.files} | {
            c.dst.strip("/") for c in table.content
        }
        if table.tar or written & {PASSWD, GROUP, SHADOW}:
            position = number
    return position


def _lower_of(base: Sequence[StoredLayer], name: str, scan: BaseScan | None) -> LowerFS:
    """The merged view of the base's layers (their diff_ids checked on the way)."""
    lower = LowerFS()
    for layer in base:
        lower.apply(_read_base(layer, name, scan))
    return lower


def _read_base(layer: StoredLayer, name: str, scan: BaseScan | None) -> list[tuple[str, Node]]:
    """A base layer's members (diff_id checked), handed to ``scan`` too when it wants them."""
    if scan is None or not scan.wants(layer):
        return read_layer(layer.open(), layer.descriptor, layer.diff_id, name)
    readings = (ACCOUNTS, scan.reading)
    mine, theirs = read_layer_for(layer.open(), layer.descriptor, layer.diff_id, name, readings)
    scan.record(layer, theirs)
    return mine


def _accounts(spec: ImageSpec, lower: LowerFS) -> Accounts:
    accounts = Accounts.parse(lower.content(PASSWD), lower.content(GROUP), lower.content(SHADOW))
    accounts = accounts.merged(spec.users, spec.groups)
    if spec.config.user:
        accounts.check_user(spec.config.user, f"{spec.path}: [config] user")
    return accounts


def _account_files(accounts: Accounts, lower: LowerFS) -> list[tuple[Entry, str]]:
    """The merged account files; /etc/shadow keeps the base's mode and owner."""
    passwd, group, shadow = accounts.render()
    files = [
        (Entry(PASSWD, Kind.FILE, 0o644, content=InlineContent(passwd)), ACCOUNTS_WHERE),
        (Entry(GROUP, Kind.FILE, 0o644, content=InlineContent(group)), ACCOUNTS_WHERE),
    ]
    below = lower.nodes.get(SHADOW)
    if shadow is not None and below is not None:
        entry = Entry(SHADOW, Kind.FILE, below.mode, below.uid, below.gid, InlineContent(shadow))
        files.append((entry, ACCOUNTS_WHERE))
    return files


def _entries(
    layer: LayerSpec,
    spec: ImageSpec,
    platform: Platform,
    lower: LowerFS,
    accounts: Accounts,
    work: Path,
    implicit_parents: bool,
    python: PythonLayers | None,
) -> list[Entry]:
    """Entries of one [[layers]] table: whiteouts, tarball members, Python installs, then
    its own entries."""
    extra = [(e, f"{layer.where} (delete/opaque)") for e in whiteout_entries(layer, lower)]
    groups: Sequence[Sequence[str]] = ()
    if layer.tar:
        where = f"{layer.where} (tar '{layer.tar}')"
        owner = accounts.resolve(layer.tar_owner, where) if layer.tar_owner else None
        from builder.layer.tarimport import import_tar  # only a build that imports pays for it

        imported = import_tar(in_context(spec.context, layer.tar, where), work, where, owner)
        extra += [(e, where) for e in imported.entries]
        groups = imported.groups
    if layer.python is not None and python is not None:
        extra += python.entries(layer.python, lower, platform)
    return layer_entries(
        layer,
        spec.context,
        platform,
        accounts.resolve,
        extra=extra,
        extra_groups=groups,
        implicit_parents=implicit_parents,
    )
