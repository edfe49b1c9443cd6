"""What several subcommands share: flag checks and the human report on stderr."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from builder.errors import BaleError, UsageError
from builder.outputs import Output
from builder.spec import check_tag


def tag_arg(text: str) -> str:
    """A ``--tag`` value, or a usage error saying what a tag may hold."""
    try:
        return check_tag(text)
    except BaleError as exc:
        raise UsageError(f"--tag: {exc}") from None


def report_outputs(outputs: Sequence[Output], tags: Sequence[str], pushed: Sequence[str]) -> None:
    """One stderr line per output written and per reference pushed."""
    for output in outputs:
        named = output.tag or ", ".join(tags) or "no tag"
        print(f"wrote {output} ({named})", file=sys.stderr)
    for reference in pushed:
        print(f"pushed {reference}", file=sys.stderr)
