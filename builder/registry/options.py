"""How to talk to registries: per-host options, the command line's settings, the clients.

One ``RegistryClient`` per registry host is shared by everything a command
does (a base pull, a push, a mount), so tokens and the HTTPS/HTTP choice are
learned once. ``--verbose`` logs method, redacted URL and status only, one
whole line per write so parallel uploads never run together.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from builder.errors import UsageError
from builder.registry.failures import RetryPolicy
from builder.registry.locations import BlobLocations

if TYPE_CHECKING:
    from builder.registry.client import RegistryClient

MiB = 1 << 20
DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds to wait for a connection (TCP and TLS), and for each read or write after."""

    connect: float = 10.0
    read: float = 30.0


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
    timeouts: Timeouts = Timeouts()
    on_request: OnRequest | None = None


_DEFAULTS = RegistryOptions()


@dataclass(frozen=True, slots=True)
class RegistryConfig:
    """The registry flags (``--ca-cert``, ``--insecure-registry``, ``--verbose``,
    timeouts, retries) for every registry client, and where blob locations are kept."""

    ca_file: Path | None = None
    insecure: frozenset[str] = frozenset()
    verbose: bool = False
    retry: RetryPolicy = DEFAULT_RETRY
    chunk_threshold: int = _DEFAULTS.chunk_threshold
    chunk_size: int = _DEFAULTS.chunk_size
    timeouts: Timeouts = _DEFAULTS.timeouts
    locations_file: Path | None = None

    def __post_init__(self) -> None:
        if self.ca_file is not None and not self.ca_file.is_file():
            raise UsageError(f"--ca-cert {self.ca_file}: no such file")

    def options(self, host: str) -> RegistryOptions:
        log = _log if self.verbose else None
        return RegistryOptions(
            ca_file=self.ca_file,
            insecure=host in self.insecure,
            retry=self.retry,
            chunk_threshold=self.chunk_threshold,
            chunk_size=self.chunk_size,
            timeouts=self.timeouts,
            on_request=log,
        )


_LOG_LOCK = threading.Lock()


def _log(method: str, url: str, status: int) -> None:
    shown = status if status else "no response"
    line = f"registry: {method} {url} -> {shown}\n"
    with _LOG_LOCK:
        sys.stderr.write(line)
        sys.stderr.flush()


@dataclass
class Clients:
    """The clients of one command, created on first use and closed together."""

    config: RegistryConfig = field(default_factory=RegistryConfig)
    _made: dict[str, RegistryClient] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _locations: BlobLocations | None = None

    @property
    def locations(self) -> BlobLocations:
        """Where blobs were seen before (``locations_file``; in memory only without one)."""
        with self._lock:
            if self._locations is None:
                self._locations = BlobLocations(self.config.locations_file)
            return self._locations

    def get(self, registry: str) -> RegistryClient:
        from builder.registry.client import (
            RegistryClient,  # the HTTP stack, only when a registry is used
        )

        with self._lock:
            if registry not in self._made:
                self._made[registry] = RegistryClient(
                    registry, options=self.config.options(registry)
                )
            return self._made[registry]

    def close(self) -> None:
        with self._lock:
            for client in self._made.values():
                client.close()
            self._made.clear()

    def __enter__(self) -> Clients:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
