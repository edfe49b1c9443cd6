"""The ``bale`` command: argparse in, BaleError → message and exit code out."""

from __future__ import annotations

if __name__ == "__main__":
    # ``python -m builder.cli.main`` is the ``bale`` program: its one start (signal handlers,
    # then a recorded no-change rebuild) runs before the imports below, and never returns.
    from builder.cli.entry import run as _start

    _start()

import argparse
import contextlib
import dataclasses
import gc
import io
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from builder import __version__
from builder.cachedir import cache_dir
from builder.cli import signals
from builder.cli.cacheflags import add_cache_flags, cache_options
from builder.cli.common import TRUST, finish, platforms_arg, say, summary_head, tag_arg
from builder.cli.images import add_diff, add_index, add_inspect, add_verify
from builder.cli.rebuildrecord import record, snapshot
from builder.cli.registry import add_commands, add_registry_flags
from builder.cli.registry import clients as registry_clients
from builder.cli.sbom import add_sbom, add_supply_flags, supply_overrides
from builder.cli.signing import add_check_signatures, add_sign_flag, signing_key
from builder.commands.build import BuildOptions, BuildResult, build
from builder.errors import BaleError, UsageError
from builder.layer.build import CREATED_BY_PREFIX
from builder.layer.cache import LayerCache, prune
from builder.spec.locations import DEFAULT_OUTPUT, parse_output
from builder.spec.values import MAX_CREATED


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"bale: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bale", description="Build OCI images from image.toml, no daemon.")
    parser.add_argument("--version", action="version", version=f"bale {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_build(commands)
    add_inspect(commands)
    add_diff(commands)
    add_verify(commands)
    add_check_signatures(commands)
    add_index(commands, _Parser)
    add_sbom(commands)
    add_commands(commands)
    _cache_commands(commands)
    return parser


def _add_build(commands: Any) -> None:
    b = commands.add_parser("build", help="build an image and write it to its outputs")
    b.add_argument("-f", "--file", default="image.toml", help="the image file (image.toml)")
    b.add_argument(
        "--output",
        "-o",
        action="append",
        default=[],
        help=(
            "where to write the image: oci:DIR[:TAG], oci-archive:FILE[:TAG], "
            "docker-archive:FILE[[:NAME]:TAG], docker://REF[:TAG] "
            f"(repeatable; default {DEFAULT_OUTPUT} unless --push)"
        ),
    )
    b.add_argument("--tag", "-t", action="append", default=[], help="tag (repeatable)")
    b.add_argument(
        "--platform",
        action="append",
        default=[],
        help="OS/ARCH[/VARIANT] (repeatable), or 'all': every platform of the base",
    )
    b.add_argument(
        "--source-date-epoch",
        type=int,
        metavar="N",
        help="creation time in seconds since 1970 (overrides image.toml)",
    )
    b.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=0,
        help="compression threads (0: cores) and parallel blob uploads (0: 4)",
    )
    b.add_argument("--push", action="store_true", help="push to [image] repository with each tag")
    b.add_argument(
        "--by-digest",
        action="store_true",
        help="push without any tag; print REPO@DIGEST (for a later 'bale index create')",
    )
    b.add_argument(
        "--locked", action="store_true", help="fail unless image.lock exists and matches the base"
    )
    b.add_argument("--trust-base", action="store_true", help=TRUST)
    add_supply_flags(b)
    add_registry_flags(b)
    add_sign_flag(b)
    b.add_argument(
        "--no-cache",
        dest="cache",
        action="store_false",
        help="rebuild every layer; neither read the local or --cache-from caches nor write "
        "the local one (--cache-to is still written)",
    )
    add_cache_flags(b)
    _common(b)
    b.set_defaults(run=_build)


def _cache_commands(commands: Any) -> None:
    cache = commands.add_parser("cache", help="the layer and blob cache (BALE_CACHE_DIR)")
    actions = cache.add_subparsers(dest="action", required=True, parser_class=_Parser)
    actions.add_parser("dir", help="print the cache directory").set_defaults(run=_cache_dir)
    prune = actions.add_parser("prune", help="remove cached layers and blobs not used lately")
    prune.add_argument(
        "--days",
        type=float,
        default=30.0,
        help="remove what was not used in this many days (default 30)",
    )
    prune.add_argument("--all", action="store_true", help="empty the cache")
    prune.add_argument("--debug", action="store_true", help="show tracebacks")
    prune.set_defaults(run=_cache_prune)


def _cache_dir(args: argparse.Namespace) -> int:
    print(cache_dir())
    return 0


def _cache_prune(args: argparse.Namespace) -> int:
    if args.days < 0:
        raise UsageError("--days must be 0 or more")
    root = cache_dir()
    result = prune(root, None if args.all else args.days * 86400)
    print(
        f"removed {result.records} layer records and {result.blobs} blobs "
        f"({result.freed / 1e6:.1f} MB) from {root}"
    )
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", "-q", action="store_true", help="print only the digest")
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bars (default: on a terminal only)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")


class _Bars:
    """One tqdm bar per layer, all cleared before the outputs are reported."""

    def __init__(self) -> None:
        self.bars: list[Any] = []

    def __call__(self, name: str, total: int) -> Callable[[int], object]:
        from tqdm import tqdm

        bar = tqdm(
            total=total,
            desc=f"layer {name}",
            unit="B",
            unit_scale=True,
            file=sys.stderr,
            leave=False,
        )
        self.bars.append(bar)
        return bar.update

    def close(self) -> None:
        for bar in self.bars:
            bar.close()


def _progress(args: argparse.Namespace) -> _Bars | None:
    wanted = args.progress if args.progress is not None else sys.stderr.isatty()
    return _Bars() if wanted and not args.quiet else None


def _build(args: argparse.Namespace) -> int:
    if args.source_date_epoch is not None and not 0 <= args.source_date_epoch <= MAX_CREATED:
        raise UsageError(f"--source-date-epoch must be from 0 to {MAX_CREATED}")
    if args.jobs < 0:
        raise UsageError("--jobs must be 0 or more")
    default = [] if args.push else [DEFAULT_OUTPUT]
    platforms, all_platforms = platforms_arg(args.platform)
    sbom, provenance = supply_overrides(args)
    bars = _progress(args)
    options = BuildOptions(
        spec_path=Path(args.file),
        outputs=tuple(parse_output(o) for o in (args.output or default)),
        tags=tuple(tag_arg(t) for t in args.tag),
        platforms=platforms,
        all_platforms=all_platforms,
        source_date_epoch=args.source_date_epoch,
        threads=args.jobs,
        progress=bars,
        cache=LayerCache(cache_dir()) if args.cache else None,
        push=args.push,
        by_digest=args.by_digest,
        locked=args.locked,
        trust_base=args.trust_base,
        warn=say,
        note=None if args.quiet else say,
        sbom=sbom,
        provenance=provenance,
        sign_key=signing_key(args.sign_key),
        **cache_options(args),
    )
    taken = snapshot(args, options.outputs)
    active = registry_clients(args)
    try:
        result = build(dataclasses.replace(options, clients=active))
    finally:
        active.close()
        if bars is not None:
            bars.close()
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        if not args.quiet and not args.json:
            _report_layers(result)
        code = finish(
            args, result.root, result.outputs, result.tags, result.pushed, summary(result)
        )
    sys.stderr.write(err.getvalue())
    sys.stdout.write(out.getvalue())
    if code == 0:
        record(taken, args.argv, result, (out.getvalue(), err.getvalue()))
    return code


_SOURCES = {"built": "built", "local-cache": "local cache", "registry-cache": "registry cache"}


def _report_layers(result: BuildResult) -> None:
    """One stderr line per layer this build made: built, or from which cache."""
    several = len(result.images) > 1
    for image in result.images:
        for layer in image.layers:
            source = getattr(layer, "source", "")
            if source:
                name = layer.created_by.removeprefix(CREATED_BY_PREFIX)
                where = f" ({image.platform})" if several else ""
                digest = layer.descriptor.digest
                print(f"layer {name}{where}: {_SOURCES[source]} {digest}", file=sys.stderr)


def summary(result: BuildResult) -> dict[str, Any]:
    """The machine-readable description of a build (``--json``)."""
    return {
        **summary_head(result.root, result.tags, result.outputs, result.pushed),
        "images": [
            {
                "platform": str(image.platform),
                "manifest": str(image.manifest.descriptor.digest),
                "config": str(image.config.descriptor.digest),
                "layers": [
                    {
                        "digest": str(layer.descriptor.digest),
                        "diffId": str(layer.diff_id),
                        "size": layer.descriptor.size,
                        "mediaType": layer.descriptor.media_type,
                        "createdBy": layer.created_by,
                        "source": getattr(layer, "source", "base"),
                    }
                    for layer in image.layers
                ],
            }
            for image in result.images
        ],
        "referrers": [
            {
                "subject": str(referrer.subject.digest),
                "artifactType": referrer.artifact_type,
                "digest": str(referrer.manifest.descriptor.digest),
                "size": referrer.manifest.descriptor.size,
            }
            for referrer in result.referrers
        ],
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        code: int = args.run(args)
        return code
    except BaleError as exc:
        if getattr(args, "debug", False):
            raise
        print(f"bale: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        quiet_stdout()
        return 1
    except OSError as exc:
        if getattr(args, "debug", False):
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"bale: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, signals.Terminated) as exc:
        if getattr(args, "debug", False):
            raise
        line, code = signals.report(exc)
        sys.stderr.write(line)
        return code


def quiet_stdout() -> None:
    """The reader of stdout went away (``bale inspect … | head -1``): end quietly.

    Later writes and the final flush go to /dev/null instead of raising.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def run() -> NoReturn:
    """The ``bale`` program: ``main`` in a process that ends as soon as it is done.

    A build is one short process holding tens of thousands of small objects
    and making almost no reference cycles: cyclic garbage collection only
    re-scans them (measured: 5-10 % of a build), and tearing the interpreter
    down costs 25-40 ms more. So collection is off, and after flushing the
    standard streams the process exits at once; every file bale writes is
    closed (and renamed into place) before ``main`` returns.
    """
    gc.disable()
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        quiet_stdout()
        code = code or 1
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        code = code or 1
    os._exit(code)
