"""The one orchestrator: image.toml → layers → image → every requested output."""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from builder.cache import LayerCache
from builder.errors import UsageError
from builder.image import Image, assemble
from builder.layer import Layer, build_layer
from builder.layout import Blob, write_layout
from builder.model import Descriptor, Platform
from builder.outputs import Output
from builder.sources import layer_entries
from builder.spec import ImageSpec, check_tag, load

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
    cache: LayerCache | None = None


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
    platforms = options.platforms or spec.platforms or (Platform.host(),)
    if len(platforms) > 1:
        raise UsageError("only one --platform per build is supported")
    created = created_time(options.source_date_epoch, spec)
    with tempfile.TemporaryDirectory(prefix="bale-") as work:
        layers = _build_layers(spec, created, Path(work), options)
        annotations = dict(spec.annotations)
        image = assemble(platforms[0], created, spec.config, layers, annotations)
        root = image.manifest.descriptor
        blobs: list[Blob] = [*image.layers, image.config, image.manifest]
        for output in options.outputs:
            out_tags = (output.tag,) if output.tag else tags
            write_layout(output.path, blobs, root, out_tags)
    return BuildResult(root, (image,), tags, options.outputs)


def _build_layers(
    spec: ImageSpec, created: int, work: Path, options: BuildOptions
) -> Sequence[Layer]:
    layers = []
    for layer_spec in spec.layers:
        entries = layer_entries(layer_spec, spec.context)
        progress = None
        if options.progress is not None:
            progress = options.progress(layer_spec.name, sum(e.size for e in entries))
        created_by = f"bale: layer {layer_spec.name}"
        make = functools.partial(
            build_layer,
            entries,
            layer_spec.codec,
            created,
            threads=options.threads,
            created_by=created_by,
            progress=progress,
        )
        if options.cache is None:
            layers.append(make(work))
        else:
            layers.append(options.cache.layer(entries, layer_spec.codec, created, make, created_by))
    return layers
