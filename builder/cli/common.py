"""What several subcommands share: flag checks and the human report on stderr."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from builder.errors import BaleError, UsageError
from builder.model import Descriptor, Digest, Platform
from builder.spec.load import check_tag
from builder.spec.locations import Output
from builder.spec.values import ALL_PLATFORMS

TRUST = (
    "do not read the base's layers to check them (digest, diff_id, media type, tar) "
    "unless the build needs their files; see docs/bases.md"
)


def tag_arg(text: str) -> str:
    """A ``--tag`` value, or a usage error saying what a tag may hold."""
    try:
        return check_tag(text)
    except BaleError as exc:
        raise UsageError(f"--tag: {exc}") from None


def platform_arg(text: str) -> Platform:
    """A ``--platform`` value, or a usage error."""
    try:
        return Platform.parse(text)
    except BaleError as exc:
        raise UsageError(f"--platform: {exc}") from None


def platforms_arg(texts: Sequence[str]) -> tuple[tuple[Platform, ...], bool]:
    """Repeated ``--platform`` values; ``all`` (alone) asks for every platform of the base."""
    wants_all = any(t.strip().lower() == ALL_PLATFORMS for t in texts)
    if wants_all and len(texts) != 1:
        raise UsageError("--platform all stands alone; give it once, without other platforms")
    return (() if wants_all else tuple(platform_arg(t) for t in texts)), wants_all


def github_output(
    digest: Digest, outputs: Sequence[Output], tags: Sequence[str], pushed: Sequence[str]
) -> None:
    """In GitHub Actions, append ``digest=`` and ``image=`` to $GITHUB_OUTPUT.

    ``image`` is the first pushed reference, else the first output with its tag.
    """
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return
    image = pushed[0] if pushed else ""
    if not image and outputs:
        output = outputs[0]
        image = str(replace(output, tag=output.tag or (tags[0] if tags else "")))
    try:
        with open(path, "a", encoding="utf-8") as out:
            out.write(f"digest={digest}\nimage={image}\n")
    except OSError as exc:
        raise BaleError(f"cannot append to GITHUB_OUTPUT={path}: {exc}") from None


def summary_head(
    root: Descriptor, tags: Sequence[str], outputs: Sequence[Output], pushed: Sequence[str]
) -> dict[str, Any]:
    """The fields every ``--json`` summary of a written image starts with."""
    return {
        "digest": str(root.digest),
        "mediaType": root.media_type,
        "size": root.size,
        "tags": list(tags),
        "outputs": [str(o) for o in outputs],
        "pushed": list(pushed),
    }


def say(message: str) -> None:
    """A warning or note on stderr, prefixed ``bale:``."""
    print(f"bale: {message}", file=sys.stderr)


def finish(
    args: argparse.Namespace,
    root: Descriptor,
    outputs: Sequence[Output],
    tags: Sequence[str],
    pushed: Sequence[str],
    summary: dict[str, Any],
) -> int:
    """What build and index create print: the --json summary, or the outputs on stderr,
    each pushed reference, and the root digest as the last stdout line."""
    github_output(root.digest, outputs, tags, pushed)
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
        return 0
    if not args.quiet:
        report_outputs(outputs, tags, pushed)
        for reference in pushed:
            print(reference)
    print(root.digest)
    return 0


def report_outputs(outputs: Sequence[Output], tags: Sequence[str], pushed: Sequence[str]) -> None:
    """One stderr line per output written and per reference pushed."""
    for output in outputs:
        named = output.tag or ", ".join(tags) or "no tag"
        print(f"wrote {output} ({named})", file=sys.stderr)
    for reference in pushed:
        print(f"pushed {reference}", file=sys.stderr)
