"""``--cache-from``/``--cache-to``/``--cache-max-entries`` and their environment variables.

The command line wins over the environment (``BALE_CACHE_FROM``,
``BALE_CACHE_TO``: references separated by commas or spaces;
``BALE_CACHE_MAX_ENTRIES``), which wins over image.toml's ``[cache]``; each
of the three is decided on its own.
"""

from __future__ import annotations

import argparse
import os
import re
from typing import Any

from builder.errors import BaleError, UsageError
from builder.reference import Reference
from builder.spec.load import parse_cache_ref

_SEPARATORS = re.compile(r"[\s,]+")


def add_cache_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache-from",
        action="append",
        default=None,
        metavar="REF",
        help="read layers from the registry cache docker://REF (repeatable; env BALE_CACHE_FROM)",
    )
    parser.add_argument(
        "--cache-to",
        action="append",
        default=None,
        metavar="REF",
        help="merge this build's layers into the registry cache docker://REF "
        "(repeatable; env BALE_CACHE_TO)",
    )
    parser.add_argument(
        "--cache-max-entries",
        type=int,
        default=None,
        metavar="N",
        help="keep at most N layers in a --cache-to cache, the oldest dropped "
        "(default 1000; env BALE_CACHE_MAX_ENTRIES)",
    )


def cache_options(args: argparse.Namespace) -> dict[str, Any]:
    """``BuildOptions`` fields: what the command line or environment sets (None: image.toml's).

    ``--no-cache`` reads no registry cache either.
    """
    sources = _refs(args.cache_from, "--cache-from", "BALE_CACHE_FROM")
    return {
        "cache_from": sources if args.cache else (),
        "cache_to": _refs(args.cache_to, "--cache-to", "BALE_CACHE_TO"),
        "cache_max_entries": _limit(args.cache_max_entries),
    }


def _refs(given: list[str] | None, flag: str, variable: str) -> tuple[Reference, ...] | None:
    texts = given
    source = flag
    if texts is None:
        value = os.environ.get(variable, "").strip()
        if not value:
            return None
        texts, source = _SEPARATORS.split(value), variable
    refs = []
    for text in texts:
        try:
            refs.append(parse_cache_ref(text.strip()))
        except BaleError as exc:
            raise UsageError(f"{source}: {exc}") from None
    return tuple(dict.fromkeys(refs))


def _limit(given: int | None) -> int | None:
    if given is None:
        text = os.environ.get("BALE_CACHE_MAX_ENTRIES", "").strip()
        if not text:
            return None
        if not text.isdigit():
            raise UsageError(f"BALE_CACHE_MAX_ENTRIES='{text}' is not a whole number")
        given = int(text)
    if given < 1:
        raise UsageError("--cache-max-entries must be 1 or more")
    return given
