"""How to talk to one registry host: plain values, importable without the HTTP stack."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from builder.registry.retry import RetryPolicy

MiB = 1 << 20
DEFAULT_RETRY = RetryPolicy()
# Called after each response with the method, the URL (no query secrets) and the
# status (0: no response).
OnRequest = Callable[[str, str, int], None]


@dataclass(frozen=True, slots=True)
class RegistryOptions:
    """How to talk to a host. ``insecure`` allows plain HTTP and unverified TLS."""

    ca_file: Path | None = None
    insecure: bool = False
    retry: RetryPolicy = DEFAULT_RETRY
    chunk_threshold: int = 16 * MiB
    chunk_size: int = 8 * MiB
    timeout: float = 60.0
    on_request: OnRequest | None = None
