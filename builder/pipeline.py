"""The one orchestrator: image.toml → layers → images → index → every requested output."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from threading import Lock

from builder.entries import Entry
from builder.errors import UsageError
from builder.image import Image, JsonBlob, assemble, index_blob
from builder.layer import Layer, build_layer
from builder.layout import Blob
from builder.model import Descriptor, Platform
from builder.outputs import Output
from builder.sinks import write_output
from builder.sources import layer_entries
from builder.spec import ImageSpec, LayerSpec, check_tag, load

ProgressFactory = Callable[[str, int], Callable[[int], object]]
PLATFORM_JOBS = 2


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
    index: JsonBlob | None = None

    @property
    def blobs(self) -> list[Blob]:
        """Every blob of the build, children before parents, each digest once."""
        found: dict[str, Blob] = {}
        for image in self.images:
            blobs: list[Blob] = [*image.layers, image.config, image.manifest]
            for blob in blobs:
                found.setdefault(str(blob.descriptor.digest), blob)
        if self.index is not None:
            found.setdefault(str(self.index.descriptor.digest), self.index)
        return list(found.values())


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


class _LayerBuilder:
    """Builds layers, once per distinct content: arch-independent layers are shared."""

    def __init__(self, spec: ImageSpec, created: int, work: Path, options: BuildOptions) -> None:
        self.spec, self.created, self.work, self.options = spec, created, work, options
        self.built: dict[tuple[object, ...], Layer] = {}
        self.lock = Lock()

    def layers(self, platform: Platform) -> list[Layer]:
        chosen = [s for s in self.spec.layers if not s.platforms or platform in s.platforms]
        return [self.layer(s, layer_entries(s, self.spec.context, platform)) for s in chosen]

    def layer(self, spec: LayerSpec, entries: Sequence[Entry]) -> Layer:
        key = (spec.name, spec.codec, *entries)
        with self.lock:
            if key in self.built:
                return self.built[key]
        progress = None
        if self.options.progress is not None:
            progress = self.options.progress(spec.name, sum(e.size for e in entries))
        layer = build_layer(
            entries,
            spec.codec,
            self.created,
            self.work,
            threads=self.options.threads,
            created_by=f"bale: layer {spec.name}",
            progress=progress,
        )
        with self.lock:
            return self.built.setdefault(key, layer)


def build(options: BuildOptions) -> BuildResult:
    spec = load(options.spec_path)
    tags = tuple(dict.fromkeys(check_tag(t) for t in options.tags)) or spec.tags
    platforms = options.platforms or spec.platforms or (Platform.host(),)
    created = created_time(options.source_date_epoch, spec)
    with tempfile.TemporaryDirectory(prefix="bale-") as work:
        builder = _LayerBuilder(spec, created, Path(work), options)

        def one(platform: Platform) -> Image:
            layers = builder.layers(platform)
            return assemble(
                platform, created, spec.config, layers, dict(spec.annotations), spec.format
            )

        with ThreadPoolExecutor(max_workers=min(PLATFORM_JOBS, len(platforms))) as pool:
            images = tuple(pool.map(one, platforms))
        index = None
        root = images[0].manifest.descriptor
        if len(images) > 1 or spec.index == "always":
            index = index_blob(images, dict(spec.annotations), spec.format)
            root = index.descriptor
        result = BuildResult(root, images, tags, options.outputs, index)
        for output in options.outputs:
            write_output(output, result.blobs, root, tags, created, _single(platforms))
    return result


def _single(platforms: Sequence[Platform]) -> Platform | None:
    """The platform a one-platform sink (docker-archive) takes; None when there is a choice."""
    return platforms[0] if len(platforms) == 1 else None
