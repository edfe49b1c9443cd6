"""``bale index create``: argparse in, an image index out (see builder.commands.index)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from builder.cli.common import finish, summary_head, tag_arg
from builder.cli.registry import add_registry_flags, clients
from builder.errors import UsageError
from builder.spec.locations import DEFAULT_OUTPUT, SOURCE_FORMS, parse_output
from builder.spec.values import FORMATS

if TYPE_CHECKING:
    from builder.commands.index import IndexResult


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
