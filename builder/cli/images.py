"""The subcommands that read images: ``inspect``, ``diff``, ``verify``, ``index create``.

Exit codes: 0 success (identical, reproducible), 1 a difference, a failed
build or an unreadable image, 2 bad usage. The modules behind each command
load when it runs, so a build never pays for them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from builder.cli.common import (
    TRUST,
    finish,
    platform_arg,
    platforms_arg,
    say,
    summary_head,
    tag_arg,
)
from builder.cli.registry import add_registry_flags, clients
from builder.errors import UsageError
from builder.model import Platform
from builder.spec.locations import DEFAULT_OUTPUT, SOURCE_FORMS, parse_output
from builder.spec.values import FORMATS

if TYPE_CHECKING:
    from builder.commands.diff import Difference
    from builder.commands.index import IndexResult
    from builder.commands.verify import VerifyResult


def add_inspect(commands: Any) -> None:
    p = commands.add_parser("inspect", help="show an image: index, manifests, config, layers")
    p.add_argument("source", metavar="SRC", help=" | ".join(SOURCE_FORMS))
    p.add_argument("--platform", help="only this OS/ARCH[/VARIANT] of an index")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--raw", action="store_true", help="print the exact manifest/index bytes")
    what.add_argument("--config", action="store_true", help="print the exact config bytes")
    p.add_argument("--files", action="store_true", help="list each layer's entries (tar tv)")
    p.add_argument("--json", action="store_true", help="print everything as JSON")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    add_registry_flags(p)
    p.set_defaults(run=_inspect)


def add_diff(commands: Any) -> None:
    p = commands.add_parser("diff", help="compare two images (exit 0 identical, 1 different)")
    p.add_argument("a", metavar="A", help="first image (" + " | ".join(SOURCE_FORMS) + ")")
    p.add_argument("b", metavar="B", help="second image")
    p.add_argument("--platform", help="compare only this OS/ARCH[/VARIANT]")
    p.add_argument("--json", action="store_true", help="print the differences as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing; exit code only")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    add_registry_flags(p)
    p.set_defaults(run=_diff)


def add_verify(commands: Any) -> None:
    p = commands.add_parser("verify", help="build twice in altered copies and compare digests")
    p.add_argument("-f", "--file", default="image.toml", help="the image file (image.toml)")
    p.add_argument(
        "--platform",
        action="append",
        default=[],
        help="OS/ARCH[/VARIANT] (repeatable), or 'all': every platform of the base",
    )
    p.add_argument("--source-date-epoch", type=int, metavar="N", help="creation time (seconds)")
    p.add_argument("--jobs", "-j", type=int, default=0, help="compression threads (0: cores)")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="print only the digest")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    add_registry_flags(p)
    p.set_defaults(run=_verify)


def parse_platform(text: str | None) -> Platform | None:
    return platform_arg(text) if text is not None else None


def _inspect(args: argparse.Namespace) -> int:
    from builder.commands.inspect import describe, one_image, raw_root, render
    from builder.formats.locate import open_source

    platform = parse_platform(args.platform)
    with clients(args) as active, open_source(args.source, active) as source:
        if args.raw or args.config:
            data = raw_root(source, platform) if args.raw else one_image(source, platform)
            raw = data if isinstance(data, bytes) else data.config_bytes
            sys.stdout.buffer.write(raw)
            sys.stdout.flush()
            return 0
        doc = describe(source, platform, args.files)
    if args.json:
        print(json.dumps(doc, indent=2, sort_keys=True))
    else:
        print("\n".join(render(doc)))
    return 0


def _diff(args: argparse.Namespace) -> int:
    from builder.commands.diff import diff_sources
    from builder.formats.locate import open_source

    platform = parse_platform(args.platform)
    with (
        clients(args) as active,
        open_source(args.a, active) as a,
        open_source(args.b, active) as b,
    ):
        found = diff_sources(a, b, platform)
        digests = (str(a.root.digest), str(b.root.digest))
    if args.json:
        print(json.dumps(diff_json(digests, found), indent=2, sort_keys=True))
    elif not args.quiet:
        for difference in found:
            print(difference.line())
        print("identical" if not found else f"{len(found)} difference(s)")
    return 1 if found or digests[0] != digests[1] else 0


def diff_json(digests: tuple[str, str], found: list[Difference]) -> dict[str, Any]:
    return {
        "identical": digests[0] == digests[1],
        "a": digests[0],
        "b": digests[1],
        "differences": [d.to_json() for d in found],
    }


def _verify(args: argparse.Namespace) -> int:
    from builder.commands.build import BuildOptions
    from builder.commands.verify import verify

    if args.source_date_epoch is not None and args.source_date_epoch < 0:
        raise UsageError("--source-date-epoch must be 0 or more")
    platforms, all_platforms = platforms_arg(args.platform)
    with clients(args) as active:
        options = BuildOptions(
            spec_path=Path(args.file),
            outputs=(),
            platforms=platforms,
            all_platforms=all_platforms,
            source_date_epoch=args.source_date_epoch,
            threads=args.jobs,
            clients=active,
        )
        return report_verify(verify(options), args.json, args.quiet)


def report_verify(result: VerifyResult, as_json: bool, quiet: bool) -> int:
    """Print the outcome; 0 when reproducible, 1 otherwise."""
    first = result.first_file
    if as_json:
        doc = {
            "reproducible": result.reproducible,
            "digests": [str(result.first.digest), str(result.second.digest)],
            "firstDifferingFile": first.path if first else None,
            "differences": [d.to_json() for d in result.differences],
            "referrers": [
                [digest for _, digest in artifacts]
                for artifacts in (result.first_artifacts, result.second_artifacts)
            ],
            "differingReferrers": result.differing_artifacts,
        }
        print(json.dumps(doc, indent=2, sort_keys=True))
    elif result.reproducible:
        if not quiet:
            print("reproducible: both builds made the same image", file=sys.stderr)
        print(result.first.digest)
    elif result.first.digest == result.second.digest:
        print(
            f"bale: not reproducible: the images match ({result.first.digest}) but these "
            f"artifacts beside them differ: {', '.join(result.differing_artifacts)}",
            file=sys.stderr,
        )
    else:
        print(
            f"bale: not reproducible: {result.first.digest} != {result.second.digest}",
            file=sys.stderr,
        )
        if first is not None:
            print(f"first differing file: /{first.path} ({first.where})", file=sys.stderr)
        if not quiet:
            for difference in result.differences:
                print(difference.line(), file=sys.stderr)
    return 0 if result.reproducible else 1


def add_index(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    index = commands.add_parser("index", help="image indexes (multi-platform images)")
    actions = index.add_subparsers(dest="action", required=True, parser_class=parser_class)
    p = actions.add_parser(
        "create", help="make an OCI image index from single-platform images, in the order given"
    )
    p.add_argument("sources", nargs="+", metavar="SRC", help=" | ".join(SOURCE_FORMS))
    p.add_argument(
        "--output",
        "-o",
        action="append",
        default=[],
        help=f"where to write the index and every blob (repeatable; default {DEFAULT_OUTPUT})",
    )
    p.add_argument("--tag", "-t", action="append", default=[], help="tag (repeatable)")
    p.add_argument(
        "--annotation",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an annotation of the index (repeatable)",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="oci",
        help="oci: an OCI image index (default); docker: a Docker manifest list",
    )
    p.add_argument("--trust-base", action="store_true", help=TRUST.replace("base", "sources"))
    add_registry_flags(p)
    p.add_argument("--quiet", "-q", action="store_true", help="print only the digest")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(run=_create)


def _create(args: argparse.Namespace) -> int:
    from builder.commands.index import IndexOptions, create_index

    registries = clients(args)
    options = IndexOptions(
        sources=tuple(args.sources),
        outputs=tuple(parse_output(o) for o in (args.output or [DEFAULT_OUTPUT])),
        tags=tuple(dict.fromkeys(tag_arg(t) for t in args.tag)),
        annotations=_annotations(args.annotation),
        format=args.format,
        clients=registries,
        trust_sources=args.trust_base,
        warn=say,
        note=None if args.quiet else say,
    )
    try:
        result = create_index(options)
    finally:
        registries.close()
    return finish(args, result.root, result.outputs, result.tags, result.pushed, summary(result))


def _annotations(texts: list[str]) -> tuple[tuple[str, str], ...]:
    """``KEY=VALUE`` pairs in the order given; a repeated key keeps its last value."""
    found: dict[str, str] = {}
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--annotation '{text}': expected KEY=VALUE")
        found[key.strip()] = value
    return tuple(found.items())


def summary(result: IndexResult) -> dict[str, Any]:
    """The machine-readable description of ``index create`` (``--json``)."""
    return {
        **summary_head(result.root, result.tags, result.outputs, result.pushed),
        "manifests": [
            {
                "source": member.source,
                "platform": str(member.platform),
                "digest": str(member.manifest.digest),
                "mediaType": member.manifest.media_type,
                "size": member.manifest.size,
            }
            for member in result.members
        ],
    }
