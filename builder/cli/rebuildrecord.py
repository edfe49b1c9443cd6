"""Recording a no-change rebuild for ``builder.rebuild``: what the command line decides.

A command can be replayed only if it writes OCI layouts alone, reads the
local cache, pushes nothing, names no registry cache and appends nothing to
``GITHUB_OUTPUT``; the build itself must be self-contained (scratch, no tarball,
no registry cache, unsigned) and take every
layer from the local cache (so the recorded lines say what a replay does).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from builder import rebuild
from builder.cachedir import cache_dir
from builder.commands.build import BuildResult
from builder.formats.layout import blob_path
from builder.layer.build import LOCAL_CACHE
from builder.spec.locations import Output


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The context's stat data before the build, and what the walk left out."""

    context: str
    skip: tuple[str, ...]
    before: list[tuple[str, rebuild.Stamp]]


def snapshot(args: argparse.Namespace, outputs: Sequence[Output]) -> Snapshot | None:
    """Stat the context before a build that could be replayed; None otherwise."""
    flags = (args.cache_from, args.cache_to, args.cache_max_entries)
    if args.push or not args.cache or any(f is not None for f in flags):
        return None
    if os.environ.get("GITHUB_OUTPUT") or any(o.transport != "oci" for o in outputs):
        return None
    context = rebuild.context_of(args.file)
    skip = (*(str(o.path.resolve()) for o in outputs), str(cache_dir().resolve()))
    try:
        return Snapshot(context, skip, rebuild.tree(context, skip))
    except OSError:
        return None


def record(
    taken: Snapshot | None, argv: Sequence[str], result: BuildResult, printed: rebuild.Replay
) -> None:
    """Save the record when the build qualifies, else drop an old one."""
    every = [layer for image in result.images for layer in image.layers]
    cached = all(getattr(layer, "source", "") == LOCAL_CACHE for layer in every)
    name = rebuild.key(argv, os.getcwd(), os.environ)
    if taken is None or not result.self_contained or not cached:
        rebuild.forget(argv, os.getcwd(), os.environ)
        return
    paths = []
    for output in result.outputs:
        root = output.path.resolve()
        paths += [str(root / "index.json"), str(root / "oci-layout")]
        blobs = [*result.blobs]
        for referrer in result.referrers:
            blobs += [referrer.manifest, *referrer.blobs]
        paths += [str(blob_path(root, blob.descriptor)) for blob in blobs]
    try:
        rebuild.save(name, taken.context, taken.skip, taken.before, paths, printed)
    except OSError as exc:
        print(f"bale: note: could not record this build for a fast rebuild: {exc}", file=sys.stderr)
