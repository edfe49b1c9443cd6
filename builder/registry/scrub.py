"""Removing credentials from server text before bale prints it.

A registry or proxy may echo what it was sent (the ``Authorization`` header in
a 403 body, a token in an error message). Every form of a secret we know of
is replaced by ``<redacted>``: a whole header value, the part after its
scheme, a Basic value's base64 and its decoded ``user:password``, the
password alone, and each of those percent-encoded.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from urllib.parse import quote

REDACTED = "<redacted>"
# A password shorter than this is hidden only inside longer forms (user:password,
# base64): replacing every occurrence of two letters would garble the message.
_MIN_ALONE = 4


def secret_forms(secret: str) -> set[str]:
    """The strings that reveal ``secret`` (an Authorization value, a password, a token)."""
    value = secret.strip()
    if not value:
        return set()
    forms = {value}
    scheme, _, rest = value.partition(" ")
    rest = rest.strip()
    if rest:
        forms.add(rest)
        if scheme.lower() == "basic":
            forms |= _basic_forms(rest)
    forms |= {quote(form, safe="") for form in forms}
    return {form for form in forms if len(form) >= _MIN_ALONE}


def _basic_forms(encoded: str) -> set[str]:
    try:
        pair = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return set()
    _, _, password = pair.partition(":")
    return {pair, password} if password else {pair}


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every form of every secret replaced by ``<redacted>``."""
    forms: set[str] = set()
    for secret in secrets:
        forms |= secret_forms(secret)
    if not forms or not text:
        return text
    pattern = "|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True))
    return re.sub(pattern, REDACTED, text, flags=re.IGNORECASE)
