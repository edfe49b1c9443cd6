"""The TLS context that verifies registries, its CA certificates loaded on first need.

Loading the system's CA bundle (``load_default_certs``) costs 45 ms or more; a run
that only speaks plain HTTP (a loopback registry, a host given with
``--insecure-registry``) never needs it. The context itself is made at once and
handed to httpx; the certificates are added before the first HTTPS request that
must verify (transport.py, endpoint.py), and a context without them refuses every
certificate, so a forgotten load can only fail closed.
"""

from __future__ import annotations

import ssl
import threading
from pathlib import Path

from builder.errors import RegistryError


class LazyTrust:
    """A verifying client context (as ``ssl.create_default_context``) plus ``ca_file``."""

    def __init__(self, ca_file: Path | None = None) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self._ca_file = ca_file
        self._lock = threading.Lock()
        self.loaded = False

    def load(self) -> None:
        """Add the system's CA certificates and ``ca_file`` (once)."""
        if self.loaded:
            return
        with self._lock:
            if self.loaded:
                return
            self.context.load_default_certs(ssl.Purpose.SERVER_AUTH)
            if self._ca_file is not None:
                try:
                    self.context.load_verify_locations(cafile=str(self._ca_file))
                except (ssl.SSLError, OSError) as exc:
                    raise RegistryError(
                        f"--ca-cert {self._ca_file}: not a PEM CA certificate bale can use "
                        f"({getattr(exc, 'reason', None) or exc}); give the registry's CA "
                        "certificate in PEM form"
                    ) from None
            self.loaded = True
