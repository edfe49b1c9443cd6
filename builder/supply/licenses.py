"""Declared licences → SPDX licence expressions.

Each term of a declaration is looked up among the SPDX licence ids and their
aliases, case-insensitively (``mit`` → ``MIT``, ``LGPL-2.1+`` →
``LGPL-2.1-or-later``); Debian's ``GPL-2+`` and ``GPL-2`` are read as
``GPL-2.0+`` and ``GPL-2.0``; a ``WITH`` term's licence and exception are
looked up the same way (as license-expression's SPDX parser would). Any other
term becomes ``LicenseRef-<name>`` and keeps its original text, so every SBOM
stays valid without inventing a licence. Operators are kept (upper-cased).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from license_expression import ExpressionError, Licensing, get_license_index

_REF_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")
_SPLIT = re.compile(r"(\s+(?:AND|OR|and|or)\s+|[()])")
_SHORT_VERSION = re.compile(r"^([A-Za-z]+-\d)(\+?)$")
_WITH = re.compile(r"\s+with\s+", re.IGNORECASE)
_REF = "LicenseRef-"


@dataclass(frozen=True, slots=True)
class License:
    """An SPDX expression and, per ``LicenseRef-`` in it, the text it stands for."""

    expression: str
    extracted: tuple[tuple[str, str], ...] = ()

    @property
    def is_spdx(self) -> bool:
        """Whether the expression names only SPDX licences (no ``LicenseRef-``)."""
        return not self.extracted


@cache
def _license_index() -> list[dict[str, Any]]:
    """license-expression's vendored licence index (read once)."""
    found: list[dict[str, Any]] = get_license_index()
    return found


@cache
def _known() -> dict[str, str]:
    """Every SPDX licence id and alias, lower-cased → the id (``LicenseRef-`` aliases left out).

    Read from the licence index alone: license-expression's full parser costs far more.
    """
    return _index(exceptions=False, ref_aliases=False)


@cache
def _index(exceptions: bool, ref_aliases: bool) -> dict[str, str]:
    """The SPDX ids of the licences (or of the exceptions), each under its lower-cased id
    and aliases (``LicenseRef-`` ones too if ``ref_aliases``); the first entry wins."""
    found: dict[str, str] = {}
    for entry in _license_index():
        key = entry.get("spdx_license_key")
        if not key or bool(entry.get("is_exception")) != exceptions or key.startswith(_REF):
            continue
        for name in (key, *(entry.get("other_spdx_license_keys") or [])):
            if ref_aliases or not name.startswith(_REF):
                found.setdefault(name.lower(), key)
    return found


@cache
def _with_term(text: str) -> str | None:
    """A ``LICENCE WITH EXCEPTION`` term, normalised, or None if it is not one.

    Both names are looked up as license-expression's SPDX parser resolves them
    (every alias, the first entry of the index winning), without building it.
    """
    parts = _WITH.split(text)
    if len(parts) != 2:
        return None
    licence = _index(exceptions=False, ref_aliases=True).get(parts[0].lower())
    exception = _index(exceptions=True, ref_aliases=True).get(parts[1].lower())
    if licence is None or exception is None:
        return None
    return f"{licence} WITH {exception}"


@cache
def _term(text: str) -> str | None:
    """One licence's SPDX id (or a WITH expression), None when it names none."""
    known = _known()
    found = known.get(text.lower())
    short = _SHORT_VERSION.match(text)
    if found is None and short is not None:
        found = known.get(f"{short.group(1)}.0{short.group(2)}".lower())
    if found is None and " with " in text.lower():
        found = _with_term(text)
    return found


def license_ref(text: str) -> str:
    """``LicenseRef-`` and the text with every character SPDX ids disallow made ``-``."""
    return _REF + (_REF_UNSAFE.sub("-", text).strip("-") or "unknown")


@cache
def spdx_license(declared: str) -> License | None:
    """The SPDX form of a declaration; None when nothing is declared.

    A text whose operators and parentheses do not parse is one ``LicenseRef-``.
    """
    text = " ".join(declared.replace("(", " ( ").replace(")", " ) ").split())
    if not text:
        return None
    extracted: dict[str, str] = {}
    pieces = []
    for piece in _SPLIT.split(text):
        term = piece.strip()
        if not term or _SPLIT.fullmatch(piece):
            pieces.append(f" {term.upper()} " if term.isalpha() else term)
            continue
        known = _term(term)
        if known is None:
            known = license_ref(term)
            extracted[known] = term
        pieces.append(f"({known})" if " AND " in known or " OR " in known else known)
    rebuilt = "".join(pieces)
    if not _well_formed(rebuilt):
        ref = license_ref(text)
        return License(ref, ((ref, text),))
    return License(rebuilt, tuple(sorted(extracted.items())))


@cache
def _well_formed(text: str) -> bool:
    """Whether ``text`` parses as an expression, whatever licences it names."""
    try:
        Licensing().parse(text, validate=False)
    except (ExpressionError, AttributeError):
        return False
    return True
