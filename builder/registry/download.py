"""Streaming a blob into a file while checking its size and digest.

A registry, CDN or proxy can hand back the wrong bytes; we hash as we write
and, on a mismatch, empty the destination (when it is seekable) so nothing
usable is left behind, then raise DigestMismatch.
"""

from __future__ import annotations

from typing import BinaryIO

import httpx

from builder.errors import DigestMismatch
from builder.model import BlobCheck, Descriptor
from builder.registry.failures import TransientError
from builder.registry.transport import Call, Transport, describe


def download(transport: Transport, call: Call, descriptor: Descriptor, dest: BinaryIO) -> None:
    """Fetch ``call`` (a streamed GET) into ``dest``, retrying from the start if seekable."""
    start = dest.tell() if dest.seekable() else None
    budget = transport.budget(call.operation)
    while True:
        try:
            _stream_once(transport, call, descriptor, dest)
            return
        except TransientError as error:
            if start is None:
                raise
            budget.spend(error)
            _rewind(dest, start)
        except DigestMismatch:
            if start is not None:
                _rewind(dest, start)
            raise


def _stream_once(transport: Transport, call: Call, descriptor: Descriptor, dest: BinaryIO) -> None:
    response = transport.attempt(call)
    check = BlobCheck(descriptor)
    try:
        for chunk in response.iter_bytes():
            if not check.update(chunk):
                break
            dest.write(chunk)
    except httpx.TransportError as exc:
        kind, what = describe(exc, call.url, transport.timeouts)
        raise TransientError(f"download interrupted: {what}", kind=kind) from None
    finally:
        response.close()
    if not check.ok:
        raise DigestMismatch(
            f"{call.operation}: {check.problem()}; the registry or something between us "
            "corrupted it. Nothing was kept: try again"
        )


def _rewind(dest: BinaryIO, start: int) -> None:
    dest.seek(start)
    dest.truncate()
