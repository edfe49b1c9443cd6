"""``bale sbom`` and the SBOM/provenance flags of ``bale build``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from builder.cli.common import platform_arg
from builder.cli.registry import add_registry_flags, clients
from builder.errors import UsageError
from builder.spec.locations import SOURCE_FORMS
from builder.spec.values import SBOM_FORMATS


def add_supply_flags(parser: argparse.ArgumentParser) -> None:
    """``--sbom FORMAT`` (repeatable), ``--no-sbom`` and ``--[no-]provenance`` for a build."""
    parser.add_argument(
        "--sbom",
        action="append",
        default=[],
        choices=SBOM_FORMATS,
        metavar="FORMAT",
        help="attach this SBOM format (spdx or cyclonedx; repeatable; overrides [image] sbom)",
    )
    parser.add_argument(
        "--no-sbom", action="store_true", help="attach no SBOM (overrides [image] sbom)"
    )
    parser.add_argument(
        "--provenance",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="attach SLSA provenance (default: [image] provenance, on unless set false)",
    )


def supply_overrides(args: argparse.Namespace) -> tuple[tuple[str, ...] | None, bool | None]:
    """The SBOM formats and provenance switch the flags ask for (None: image.toml decides)."""
    if args.no_sbom and args.sbom:
        raise UsageError("--no-sbom and --sbom contradict each other; give one of them")
    sbom = () if args.no_sbom else (tuple(dict.fromkeys(args.sbom)) or None)
    return sbom, args.provenance


def add_sbom(commands: Any) -> None:
    p = commands.add_parser("sbom", help="print the SBOM of an image (computed from its layers)")
    p.add_argument("source", metavar="SRC", help=" | ".join(SOURCE_FORMS))
    p.add_argument(
        "--format",
        choices=SBOM_FORMATS,
        default=SBOM_FORMATS[0],
        help="spdx (default) or cyclonedx",
    )
    p.add_argument("--platform", help="the OS/ARCH[/VARIANT] image of an index")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    add_registry_flags(p)
    p.set_defaults(run=_sbom)


def _sbom(args: argparse.Namespace) -> int:
    from builder.commands.sbom import SbomOptions, image_sbom

    platform = platform_arg(args.platform) if args.platform else None
    active = clients(args)
    try:
        document = image_sbom(SbomOptions(args.source, args.format, platform, active))
    finally:
        active.close()
    sys.stdout.buffer.write(document + b"\n")
    return 0
