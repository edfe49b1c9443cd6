"""What a registry answers, read under bounds: the body only up to a limit, JSON
only under the limits bale applies to every image document.

A registry, a token server or a proxy in front of them may answer with a body
of any size, compressed or not, nested to any depth. Every answer bale reads
into memory (manifests, tag lists, referrers indexes, token answers, error
bodies, probes) is streamed and decoded here, a piece at a time, and reading
stops one byte past the limit: the gzip or deflate decoder is told how much it
may produce, and other content encodings are refused. Blobs are not read here:
they stream to a file, checked against their descriptor (download.py).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

import httpx

from builder.errors import ImageError, RegistryError
from builder.image.documents import MAX_DOCUMENT, parse_json
from builder.registry.failures import safe_url

MAX_ANSWER = MAX_DOCUMENT
"""The largest answer bale reads: 4 MiB, the manifest limit the distribution spec names."""
MAX_ERROR_BODY = 64 << 10
"""How much of an error answer is kept for its message; the rest is never read."""
ACCEPT_ENCODING = "gzip, deflate"
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS}


class TooLarge(RegistryError):
    """An answer held more bytes than bale reads."""


def where(response: httpx.Response) -> str:
    """``METHOD URL`` of the request ``response`` answers, safe to print."""
    return f"{response.request.method} {safe_url(response.request.url)}"


def read_limited(response: httpx.Response, operation: str, limit: int, cut: bool = False) -> bytes:
    """The decoded body of a streamed ``response`` (closed after), at most ``limit`` bytes.

    More is TooLarge, or with ``cut`` the first ``limit`` bytes (and a body that cannot be
    decoded gives what was decoded). ``httpx`` transport errors pass through for the
    caller to classify.
    """
    data = bytearray()
    try:
        for piece in _decoded(response, operation, limit + 1):
            data += piece
            if len(data) > limit and not cut:
                raise TooLarge(
                    f"{operation}: {where(response)} answered with more than {limit} bytes, "
                    "more than any document bale reads from a registry; the registry or a proxy "
                    "in front of it is misbehaving"
                )
    except RegistryError:
        if not cut:
            raise
    finally:
        response.close()
    return bytes(data[:limit])


def _decoded(response: httpx.Response, operation: str, room: int) -> Iterator[bytes]:
    if response.is_stream_consumed:
        # Held in memory and decoded already (as httpx.MockTransport makes them).
        yield response.content
        return
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity") and encoding not in _WBITS:
        raise RegistryError(
            f"{operation}: {where(response)} answered with Content-Encoding "
            f"'{encoding[:40]}', which bale did not ask for and does not read (it asks for "
            f"{ACCEPT_ENCODING})"
        )
    decoder = zlib.decompressobj(_WBITS[encoding]) if encoding in _WBITS else None
    produced = 0
    for raw in response.iter_raw():
        try:
            piece = raw if decoder is None else decoder.decompress(raw, room - produced)
        except zlib.error:
            raise RegistryError(
                f"{operation}: {where(response)} answered with a body that is not valid {encoding}"
            ) from None
        produced += len(piece)
        yield piece
        if produced >= room:
            return


def buffered(response: httpx.Response, data: bytes) -> httpx.Response:
    """A copy of a streamed ``response`` that holds ``data`` (already decoded) as its body."""
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() != "content-encoding"]
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=data,
        request=response.request,
        extensions=response.extensions,
    )


def json_answer(response: httpx.Response, operation: str) -> Any:
    """The JSON value of a buffered answer, under the image documents' limits
    (size, depth, finite numbers, unique keys); RegistryError naming the URL."""
    try:
        return parse_json(response.content, f"{operation}: {where(response)}")
    except ImageError as error:
        raise RegistryError(
            f"{error}; the registry (or a proxy in front of it) sent an answer bale will not "
            "read: report it to the registry's operator"
        ) from None


def json_object(response: httpx.Response, operation: str) -> dict[str, Any]:
    """``json_answer``, which must be an object."""
    value = json_answer(response, operation)
    if not isinstance(value, dict):
        raise RegistryError(
            f"{operation}: {where(response)} answered with JSON that is not an object; "
            "the registry is not following the distribution API"
        )
    return value


def wrong_type(response: httpx.Response, operation: str, field: str, kind: str) -> RegistryError:
    """The error for an answer whose ``field`` is not the ``kind`` the API gives it."""
    return RegistryError(
        f"{operation}: {where(response)} answered with '{field}' that is not {kind}; "
        "the registry is not following the distribution API"
    )
