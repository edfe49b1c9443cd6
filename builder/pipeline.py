"""The one orchestrator: image.toml → layers → image → every requested output."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from builder.accounts import GROUP, PASSWD, Accounts
from builder.bases import BaseImage, load_base
from builder.compress import Codec
from builder.deletions import whiteout_entries
from builder.entries import Entry, InlineContent, Kind
from builder.errors import UsageError
from builder.image import BaseParts, Image, assemble
from builder.layer import Layer, build_layer
from builder.layout import Blob, write_layout
from builder.lowerfs import LowerFS, entry_members, read_layer
from builder.model import Descriptor, Platform
from builder.outputs import Output
from builder.sources import layer_entries
from builder.spec import ImageSpec, LayerSpec, check_tag, load
from builder.tarimport import import_tar

ProgressFactory = Callable[[str, int], Callable[[int], object]]


@dataclass(frozen=True, slots=True)
class BuildOptions:
    spec_path: Path
    outputs: tuple[Output, ...]
    tags: tuple[str, ...] = ()
    platforms: tuple[Platform, ...] = ()
    source_date_epoch: int | None = None
    threads: int = 0
    progress: ProgressFactory | None = None


@dataclass(frozen=True, slots=True)
class BuildResult:
    root: Descriptor
    images: tuple[Image, ...]
    tags: tuple[str, ...]
    outputs: tuple[Output, ...] = field(default_factory=tuple)


def created_time(option: int | None, spec: ImageSpec) -> int:
    """--source-date-epoch, else image.toml's created, else SOURCE_DATE_EPOCH, else 0."""
    if option is not None:
        return option
    if spec.created is not None:
        return spec.created
    env = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not env:
        return 0
    if not env.isdigit():
        raise UsageError(f"SOURCE_DATE_EPOCH='{env}' is not a whole number of seconds")
    return int(env)


def build(options: BuildOptions) -> BuildResult:
    spec = load(options.spec_path)
    tags = tuple(dict.fromkeys(check_tag(t) for t in options.tags)) or spec.tags
    explicit = options.platforms or spec.platforms
    if len(explicit) > 1:
        raise UsageError("only one --platform per build is supported")
    created = created_time(options.source_date_epoch, spec)
    with tempfile.TemporaryDirectory(prefix="bale-") as work:
        base = (
            load_base(spec.base_ref, explicit[0] if explicit else None) if spec.base_ref else None
        )
        platform = base.platform if base else (explicit or (Platform.host(),))[0]
        layers = _build_layers(spec, created, Path(work), options, base)
        annotations = dict(spec.annotations)
        parts = BaseParts(base.config, base.layers, spec.base, base.digest) if base else None
        image = assemble(platform, created, spec.config, layers, annotations, parts)
        root = image.manifest.descriptor
        blobs: list[Blob] = [*image.layers, image.config, image.manifest]
        for output in options.outputs:
            out_tags = (output.tag,) if output.tag else tags
            write_layout(output.path, blobs, root, out_tags)
    return BuildResult(root, (image,), tags, options.outputs)


def _lower_of(base: BaseImage | None) -> LowerFS:
    """The merged view of the base's layers (their diff_ids checked on the way)."""
    lower = LowerFS()
    if base is None:
        return lower
    for layer in base.layers:
        lower.apply(read_layer(layer.open(), layer.descriptor, layer.diff_id, base.name))
    return lower


def _accounts(spec: ImageSpec, lower: LowerFS) -> Accounts:
    accounts = Accounts.parse(lower.content(PASSWD), lower.content(GROUP))
    accounts = accounts.merged(spec.users, spec.groups)
    if spec.config.user:
        accounts.check_user(spec.config.user, f"{spec.path}: [config] user")
    return accounts


def _account_files(accounts: Accounts) -> list[tuple[Entry, str]]:
    passwd, group = accounts.render()
    where = "[[users]]/[[groups]]"
    return [
        (Entry(PASSWD, Kind.FILE, 0o644, content=InlineContent(passwd)), where),
        (Entry(GROUP, Kind.FILE, 0o644, content=InlineContent(group)), where),
    ]


def _layer_plan(
    layer: LayerSpec, spec: ImageSpec, lower: LowerFS, accounts: Accounts, work: Path
) -> list[Entry]:
    """Entries of one [[layers]] table: whiteouts, tarball members, then its own entries."""
    extra = [(e, f"{layer.where} (delete/opaque)") for e in whiteout_entries(layer, lower)]
    groups: Sequence[Sequence[str]] = ()
    if layer.tar:
        where = f"{layer.where} (tar '{layer.tar}')"
        owner = accounts.resolve(layer.tar_owner, where) if layer.tar_owner else None
        imported = import_tar(spec.context / layer.tar, work, where, owner)
        extra += [(e, where) for e in imported.entries]
        groups = imported.groups
    return layer_entries(
        layer,
        spec.context,
        accounts.resolve,
        extra=extra,
        extra_groups=groups,
        lower=lower.dir_attrs,
    )


def _build_layers(
    spec: ImageSpec, created: int, work: Path, options: BuildOptions, base: BaseImage | None
) -> Sequence[Layer]:
    lower = _lower_of(base)
    accounts = _accounts(spec, lower)
    plans: list[tuple[str, Codec, Callable[[], list[Entry]]]] = []
    if spec.users or spec.groups:
        accounts_layer = LayerSpec("accounts", spec.codec, where="[[users]]/[[groups]]")
        plans.append(
            (
                "accounts",
                spec.codec,
                lambda: layer_entries(
                    accounts_layer,
                    spec.context,
                    extra=_account_files(accounts),
                    lower=lower.dir_attrs,
                ),
            )
        )
    for layer_spec in spec.layers:
        plans.append(
            (
                layer_spec.name,
                layer_spec.codec,
                partial(_layer_plan, layer_spec, spec, lower, accounts, work),
            )
        )
    layers = []
    for name, codec, make in plans:
        entries = make()
        progress = None
        if options.progress is not None:
            progress = options.progress(name, sum(e.size for e in entries))
        layers.append(
            build_layer(
                entries,
                codec,
                created,
                work,
                threads=options.threads,
                created_by=f"bale: layer {name}",
                progress=progress,
            )
        )
        lower.apply(entry_members(entries))
    return layers
