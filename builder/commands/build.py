"""The one orchestrator: image.toml → base → layers → images → index → every output."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from threading import Lock
from typing import TYPE_CHECKING

from builder.atomic import sweep, temp_dir
from builder.cachedir import cache_dir
from builder.commands.cachepublish import publish
from builder.commands.layersource import CacheClients, LayerResolver, RegistryCaches
from builder.commands.lock import pinned_base
from builder.errors import UsageError
from builder.formats.sinks import prepare_outputs, write_output
from builder.image.assemble import BaseParts, Image, JsonBlob, assemble, index_blob, rfc3339
from builder.layer.build import CREATED_BY_PREFIX, Layer, build_layer
from builder.layer.cache import LayerCache, sweep_cache
from builder.layer.entries import Entry
from builder.layer.filebody import Body, Reading
from builder.layer.plan import BaseScan, plan_layers
from builder.layer.tarwriter import tar_size
from builder.model import Blob, Codec, Descriptor, Digest, Platform
from builder.reference import Reference, parse_reference
from builder.registry.failures import RetryPolicy
from builder.registry.options import Clients
from builder.spec.load import check_tag, load
from builder.spec.locations import Location, Output
from builder.spec.values import MAX_CREATED, ImageSpec
from builder.supply.attachment import Referrer

if TYPE_CHECKING:
    from builder.commands.attach import Built
    from builder.commands.bases import BaseImage
    from builder.commands.layersource import AnyLayer
    from builder.layer.python.layer import PythonLayers
    from builder.supply.sign import SigningKey

ProgressFactory = Callable[[str, int], Callable[[int], object]]
PLATFORM_JOBS = 2
# A registry cache is an optimisation: a registry that is down costs two tries, not five.
CACHE_RETRY = RetryPolicy(tries=2)


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
    all_platforms: bool = False
    clients: Clients | None = None
    push: bool = False
    by_digest: bool = False
    locked: bool = False
    trust_base: bool = False
    warn: Callable[[str], None] | None = None
    # --cache-from, --cache-to, --cache-max-entries; each None: image.toml's [cache].
    cache_from: tuple[Reference, ...] | None = None
    cache_to: tuple[Reference, ...] | None = None
    cache_max_entries: int | None = None
    # Information that is not a warning (silent under --quiet).
    note: Callable[[str], None] | None = None
    # None: as image.toml says ([image] sbom, [image] provenance).
    sbom: tuple[str, ...] | None = None
    provenance: bool | None = None
    sign_key: SigningKey | None = None


@dataclass(frozen=True, slots=True)
class BuildResult:
    root: Descriptor
    images: tuple[Image, ...]
    tags: tuple[str, ...]
    outputs: tuple[Output, ...] = field(default_factory=tuple)
    index: JsonBlob | None = None
    pushed: tuple[str, ...] = ()
    # Built from the context alone (scratch, no tarball, no registry cache): a
    # no-change rebuild can be vouched for by stat data (builder.rebuild).
    self_contained: bool = False
    # SBOMs and provenance, each an OCI 1.1 artifact manifest whose subject is
    # a platform manifest; their blobs are not in ``blobs``.
    referrers: tuple[Referrer, ...] = ()

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
    if not env.isascii() or not env.isdigit() or len(env) > 12 or int(env) > MAX_CREATED:
        raise UsageError(
            f"SOURCE_DATE_EPOCH={env[:40]!r}: give a whole number of seconds from 0 to "
            f"{MAX_CREATED} (9999-12-31T23:59:59Z)"
        )
    return int(env)


class _LayerBuilder:
    """Builds each platform's layers; a layer whose entries come out the same for
    several platforms (arch-independent) is built once and shared by digest."""

    def __init__(
        self,
        spec: ImageSpec,
        created: int,
        work: Path,
        options: BuildOptions,
        share: bool,
        resolver: LayerResolver,
        check_base: bool = True,
    ) -> None:
        self.spec, self.created, self.work, self.options = spec, created, work, options
        self.resolver = resolver
        self.check_base = check_base  # read every base layer, to check it, though not needed
        self.share = share  # several platforms: worth hashing every entry to find shared layers
        self.built: dict[tuple[object, ...], AnyLayer] = {}
        # Each layer's entries by diff_id: the SBOM reads bale's files from them.
        self.entries: dict[Digest, Sequence[Entry]] = {}
        # With an SBOM, what it takes of each file of each layer built (not reused), by diff_id.
        self.reading = _own_reading() if spec.sbom else None
        self.bodies: dict[Digest, dict[str, Body]] = {}
        self.lock = Lock()
        self._python: PythonLayers | None = None

    def layers(
        self, platform: Platform, base: BaseImage | None, scan: BaseScan | None = None
    ) -> list[AnyLayer]:
        """The platform's layers; ``scan`` (the SBOM's) reads the base in the same pass."""
        below = base.layers if base is not None else None
        python = self.python if any(s.python for s in self.spec.layers) else None
        name = base.name if base else ""
        check, cache = self.check_base, self.options.cache
        plans = plan_layers(self.spec, platform, below, name, self.work, python, check, cache, scan)
        layers = []
        for plan in plans:
            layer = self.layer(plan.name, plan.codec, plan.entries, platform)
            with self.lock:
                self.entries.setdefault(layer.diff_id, plan.entries)
            layers.append(layer)
        return layers

    @property
    def python(self) -> PythonLayers:
        """The build's Python installer, made on first use (it imports packaging, installer)."""
        with self.lock:
            if self._python is None:
                from builder.layer.python.layer import PythonLayers

                self._python = PythonLayers(self.spec.context, cache_dir(), self.work)
            return self._python

    def close(self) -> None:
        if self._python is not None:
            self._python.close()

    def layer(
        self, name: str, codec: Codec, entries: Sequence[Entry], platform: Platform
    ) -> AnyLayer:
        key = (name, codec, *entries) if self.share else None
        if key is not None:
            with self.lock:
                if key in self.built:
                    return self.built[key]
        progress = None
        if self.options.progress is not None:
            progress = self.options.progress(name, tar_size(entries))
        created_by = f"{CREATED_BY_PREFIX}{name}"

        def make(directory: Path, hashes: dict[str, str] | None) -> Layer:
            threads = self.options.threads
            bodies: dict[str, Body] | None = {} if self.reading is not None else None
            made = build_layer(
                entries,
                codec,
                self.created,
                directory,
                threads=threads,
                created_by=created_by,
                progress=progress,
                hashes=hashes,
                reading=self.reading,
                bodies=bodies,
            )
            if bodies is not None:
                with self.lock:
                    self.bodies[made.diff_id] = bodies
            return made

        found = self.resolver.layer(entries, codec, self.created, make, platform)
        layer = dataclasses.replace(found, created_by=created_by)
        if key is None:
            return layer
        with self.lock:
            return self.built.setdefault(key, layer)


def _own_reading() -> Reading:
    from builder.commands.attach import own_reading  # the SBOM's catalogs: only with an SBOM

    return own_reading()


def _outputs(spec: ImageSpec, options: BuildOptions) -> tuple[Output, ...]:
    """The outputs asked for, plus ``[image] repository`` with ``--push``."""
    outputs = options.outputs
    if options.push:
        if not spec.repository:
            raise UsageError(
                f"--push: {spec.path} has no [image] repository; add e.g. "
                'repository = "ghcr.io/acme/app", or use --output docker://REF'
            )
        outputs = (*outputs, Output("docker", Path(), "", spec.repository))
    pushes = [o for o in outputs if o.transport == "docker"]
    if options.by_digest and not pushes:
        raise UsageError("--by-digest needs --push or an --output docker://REF")
    if options.by_digest and any(o.tag for o in pushes):
        raise UsageError("--by-digest pushes no tag; drop the tag from --output docker://REF:TAG")
    return outputs


def build(options: BuildOptions, spec: ImageSpec | None = None) -> BuildResult:
    """Build the image of ``options.spec_path`` and write it to every output.

    ``spec`` is that image.toml already read, when the caller had to adjust it
    (``bale verify`` builds a copy of the context on the original's base).
    """
    clients = options.clients or Clients()
    try:
        return _build(options, _overridden(spec or load(options.spec_path), options), clients)
    finally:
        if clients is not options.clients:
            clients.close()


def _overridden(spec: ImageSpec, options: BuildOptions) -> ImageSpec:
    """image.toml with what the command line overrides (SBOM formats, provenance)."""
    if options.sbom is not None:
        spec = dataclasses.replace(spec, sbom=options.sbom)
    if options.provenance is not None:
        spec = dataclasses.replace(spec, provenance=options.provenance)
    return spec


def _build(options: BuildOptions, spec: ImageSpec, clients: Clients) -> BuildResult:
    outputs = _outputs(spec, options)
    pinned = pinned_base(spec, options.locked)
    if pinned.note and options.warn is not None:
        options.warn(pinned.note)
    base_ref = pinned.base_ref
    tags = tuple(dict.fromkeys(check_tag(t) for t in options.tags)) or spec.tags
    requested = _requested(options, spec, base_ref, clients)
    created = created_time(options.source_date_epoch, spec)
    annotations = dict(spec.annotations)
    check = checks_base(base_ref, outputs) and not options.trust_base
    image_format = _image_format(spec, options)
    _sweep(options.cache)
    caches = _caches(options, spec)
    warn = options.warn or _quiet
    twice = Clients(dataclasses.replace(clients.config, retry=CACHE_RETRY))
    hosts = frozenset(parse_reference(o.name).registry for o in outputs if o.transport == "docker")
    cache_clients = CacheClients(clients, twice, hosts)
    needs_bytes = _needs_bytes(outputs, caches)
    cache_root = options.cache.root if options.cache else None
    with (
        temp_dir("build") as work,
        twice,
        closing(
            _LayerBuilder(
                spec,
                created,
                work,
                options,
                len(requested) > 1,
                LayerResolver(
                    options.cache, caches, cache_clients, work, needs_bytes, warn, bool(spec.sbom)
                ),
                check,
            )
        ) as builder,
    ):
        # SBOM and provenance writers load only when a build runs.
        from builder.commands.attach import Built, base_scans, referrers, with_sboms
        from builder.supply.inventory import named

        kept = builder.resolver if caches.sources else None

        def one(wanted: Platform | None) -> Built:
            base = _load_base(base_ref, wanted, clients) if base_ref else None
            platform = wanted or (base.platform if base else Platform.host())
            parts = BaseParts(base.config, base.layers, spec.base, base.digest) if base else None
            scans = base_scans(spec, platform, cache_root) if base else None
            layers = builder.layers(platform, base, scans)
            image = assemble(
                platform, created, spec.config, layers, annotations, image_format, parts
            )
            base_named = named(spec.base, base.digest, platform) if base else None
            own_from = len(base.layers) if base else 0
            own = [builder.entries[layer.diff_id] for layer in layers]
            bodies = [builder.bodies.get(layer.diff_id) for layer in layers]
            built = Built(image, own_from, base_named)
            return with_sboms(spec, built, created, own, cache_root, scans, bodies, kept)

        if len(requested) == 1:
            builds: tuple[Built, ...] = (one(requested[0]),)
        else:
            with ThreadPoolExecutor(max_workers=PLATFORM_JOBS) as pool:
                builds = tuple(pool.map(one, requested))
        images = tuple(built.image for built in builds)
        recorded = _provenance_options(spec, tags, created, image_format)
        attached = referrers(spec, builds, created, recorded)
        index = None
        root = images[0].manifest.descriptor
        if len(images) > 1 or spec.index == "always":
            index = index_blob(images, annotations, image_format)
            root = index.descriptor
        alone = spec.base_ref is None and not caches.active and not any(x.tar for x in spec.layers)
        alone = alone and options.sign_key is None  # a key file lies outside the context
        result = BuildResult(
            root, images, tags, outputs, index, referrers=attached, self_contained=alone
        )
        if options.sign_key is not None:
            signed = _signed(result, options.sign_key, _signed_name(spec, outputs), created)
            result = dataclasses.replace(result, referrers=result.referrers + signed)
        platform = images[0].platform if len(images) == 1 else None
        blobs, jobs = result.blobs, options.threads
        outputs = prepare_outputs(outputs, tags, result.referrers, options.note)
        result = dataclasses.replace(result, outputs=outputs)
        pushed: list[str] = []
        for output in outputs:
            out_tags = () if options.by_digest and output.transport == "docker" else tags
            pushed += write_output(
                output,
                blobs,
                root,
                out_tags,
                created,
                platform,
                clients,
                jobs,
                result.referrers,
                note=options.warn,
            )
        if caches.targets:
            documents = {
                key: sbom
                for built in builds
                for key, sbom in zip(built.sbom_keys, built.sboms, strict=True)
            }
            resolver = builder.resolver
            publish(resolver, caches, cache_clients, outputs, warn, cache_root, documents)
    return dataclasses.replace(result, pushed=tuple(pushed))


def _image_format(spec: ImageSpec, options: BuildOptions) -> str:
    """``format = "docker"`` with [annotations]: OCI media types, as docker buildx does.

    Docker v2.2 manifests have no annotations field, so they would be lost.
    """
    if spec.format != "docker" or not spec.annotations:
        return spec.format
    if options.warn is not None:
        options.warn(
            f"{spec.path}: [annotations] need OCI media types (Docker v2.2 manifests have no "
            'annotations); writing format = "oci" as docker buildx does. Remove '
            '[annotations] to keep format = "docker"'
        )
    return "oci"


def _sweep(cache: LayerCache | None) -> None:
    """Remove what killed bales left in the cache and TMPDIR (outputs sweep their own)."""
    if cache is not None:
        sweep_cache(cache.root)
    else:
        sweep(Path(tempfile.gettempdir()), "bale-")


def _needs_bytes(outputs: Sequence[Output], caches: RegistryCaches) -> bool:
    """Whether a registry-cache hit must be downloaded: an output that is not a push to
    a registry holding the caches (a push there HEADs or mounts the blob instead)."""
    homes = {ref.registry for ref in caches.sources}
    for output in outputs:
        if output.transport != "docker" or parse_reference(output.name).registry not in homes:
            return True
    return False


def _caches(options: BuildOptions, spec: ImageSpec) -> RegistryCaches:
    """The registry caches: each setting from the options, else from image.toml's [cache]."""
    cache = spec.cache
    sources = cache.sources if options.cache_from is None else options.cache_from
    targets = cache.targets if options.cache_to is None else options.cache_to
    limit = options.cache_max_entries or cache.max_entries or RegistryCaches().max_entries
    return RegistryCaches(sources, targets, limit)


def _quiet(message: str) -> None:
    """Warnings of a build run as a library (the CLI prints them)."""


def _signed(result: BuildResult, key: SigningKey, name: str, created: int) -> tuple[Referrer, ...]:
    """Signatures of every manifest and the index, and of each attachment the build made."""
    from builder.supply.signing import signatures

    subjects = [image.manifest.descriptor for image in result.images]
    if result.index is not None:
        subjects.append(result.index.descriptor)
    return signatures(key, subjects, result.referrers, name, rfc3339(created))


def _signed_name(spec: ImageSpec, outputs: Sequence[Output]) -> str:
    """The repository a signature names: the first push target, else [image] repository."""
    for output in outputs:
        if output.transport == "docker":
            return output.name
    return spec.repository or ""


def _provenance_options(
    spec: ImageSpec, tags: Sequence[str], created: int, image_format: str
) -> dict[str, object]:
    """The build options a provenance statement records (where outputs go is not one).

    ``image_format`` is the format written (``_image_format``), which [annotations]
    may have made OCI. Each statement adds its own ``platform``.
    """
    return {
        "tags": list(tags),
        "created": rfc3339(created),
        "format": image_format,
        "index": spec.index,
        "sbom": list(spec.sbom),
    }


def _load_base(ref: Location, wanted: Platform | None, clients: Clients) -> BaseImage:
    from builder.commands.bases import load_base  # registry and archive readers: only with a base

    return load_base(ref, wanted, clients)


def _requested(
    options: BuildOptions, spec: ImageSpec, base_ref: Location | None, clients: Clients
) -> Sequence[Platform | None]:
    """The platforms to build: --platform, else image.toml's; "all" asks the base."""
    wants_all = options.all_platforms or (spec.all_platforms and not options.platforms)
    if wants_all:
        if base_ref is None:
            raise UsageError(
                "--platform all builds every platform of the base image, and this image "
                "has no base (scratch); set [image] base or name the platforms"
            )
        from builder.commands.bases import base_platforms

        return base_platforms(base_ref, clients)
    requested: Sequence[Platform | None] = options.platforms or spec.platforms
    if not requested:
        requested = (None,) if base_ref else (Platform.host(),)
    return requested


def checks_base(base_ref: Location | None, outputs: Sequence[Output]) -> bool:
    """Whether the base's layers are read (digest, diff_id, media type, tar) before writing.

    Always when bale copies them: a local base, or any local output. A registry
    base pushed only to registries is not copied (its layers are mounted or
    already there, checked by the registry), so it is not downloaded to be read.
    """
    if base_ref is None:
        return False
    return base_ref.transport != "docker" or any(o.transport != "docker" for o in outputs)
