"""Real registries for the integration tests: Debian's ``docker-registry`` on 127.0.0.1.

Three setups (plain HTTP; TLS + htpasswd; token auth) and a fault-injecting
proxy. Each registry runs in its own tmp dir with its request log (info
level: one line per request, query included) captured to ``log_path``.
"""

from __future__ import annotations

import random
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import require_tool
from tests.integration.fault_proxy import FaultProxy
from tests.integration.pki import make_ca, make_server_cert, make_signer
from tests.integration.token_server import ISSUER, SERVICE, TokenServer

USERNAME = "bale-user"
PASSWORD = "s3cret-Pa55word"
_READY_TIMEOUT = 15.0


@dataclass(frozen=True)
class RunningRegistry:
    host: str
    scheme: str
    log_path: Path
    ca_path: Path | None = None
    cert_dir: Path | None = None
    username: str = ""
    password: str = ""
    token_server: TokenServer | None = None

    @property
    def port(self) -> int:
        return int(self.host.rsplit(":", 1)[1])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def steady_port() -> int:
    """A free port below the kernel's ephemeral range, for a server that stops listening for
    a while: no outgoing connection can take it in the meantime (a free_port could)."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(max(1024, low - 12000), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def _config(root: Path, port: int, extra: str) -> Path:
    path = root / "config.yml"
    path.write_text(
        "version: 0.1\nlog:\n  level: info\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n{extra}"
    )
    return path


def _serve(
    root: Path, port: int, extra: str, scheme: str, ca: Path | None
) -> subprocess.Popen[bytes]:
    binary = require_tool("docker-registry")
    config = _config(root, port, extra)
    log = (root / "registry.log").open("ab")
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + _READY_TIMEOUT
    url = f"{scheme}://127.0.0.1:{port}/v2/"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {(root / 'registry.log').read_text()}")
        try:
            if httpx.get(url, verify=_context(ca), timeout=1).status_code in (200, 401):
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    _stop(proc)
    raise RuntimeError(f"docker-registry did not answer {url} within {_READY_TIMEOUT}s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


class RegistryProcess:
    """A plain-HTTP registry that can be killed and started again on its storage and port.

    Its config sets no ``http.secret``, so (as with any registry without one) a restart
    invalidates every open upload session.
    """

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.port = steady_port()
        self.restarts = 0
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = _serve(root, self.port, "", "http", None)

    @property
    def running(self) -> RunningRegistry:
        return RunningRegistry(f"127.0.0.1:{self.port}", "http", self.root / "registry.log")

    def restart(self, between: Callable[[], None] = lambda: None) -> bool:
        """SIGKILL the registry, call ``between``, start it again; False if one is under way."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            self.kill()
            between()
            self.start()
            return True
        finally:
            self._lock.release()

    def kill(self) -> None:
        """SIGKILL the registry (requests in flight are cut; the port refuses connections)."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(timeout=5)
        self._proc = None

    def start(self) -> None:
        """Start it again on the same storage and port; return once it answers."""
        self._proc = _serve(self.root, self.port, "", "http", None)
        self.restarts += 1

    def stop(self) -> None:
        with self._lock:
            if self._proc is not None:
                _stop(self._proc)
            self._proc = None


def plain_registry(root: Path) -> Iterator[RunningRegistry]:
    process = RegistryProcess(root)
    try:
        yield process.running
    finally:
        process.stop()


def tls_basic_registry(root: Path) -> Iterator[RunningRegistry]:
    htpasswd = require_tool("htpasswd")
    entry = subprocess.run(
        [htpasswd, "-Bbn", USERNAME, PASSWORD], check=True, capture_output=True, text=True
    ).stdout.strip()
    (root / "htpasswd").write_text(entry + "\n")
    ca = make_ca()
    cert_dir = root / "certs"
    cert_dir.mkdir()
    ca_path, _ = ca.write(root, "ca")
    (cert_dir / "ca.crt").write_bytes(ca_path.read_bytes())
    crt, key = make_server_cert(ca).write(root, "server")
    extra = (
        f"  tls:\n    certificate: {crt}\n    key: {key}\n"
        f"auth:\n  htpasswd:\n    realm: bale-test\n    path: {root / 'htpasswd'}\n"
    )
    port = free_port()
    proc = _serve(root, port, extra, "https", ca_path)
    try:
        yield RunningRegistry(
            f"127.0.0.1:{port}",
            "https",
            root / "registry.log",
            ca_path,
            cert_dir,
            USERNAME,
            PASSWORD,
        )
    finally:
        _stop(proc)


def token_registry(root: Path) -> Iterator[RunningRegistry]:
    signer = make_signer()
    bundle, _ = signer.write(root, "signer")
    tokens = TokenServer(signer, USERNAME, PASSWORD)
    tokens.start()
    extra = (
        f"auth:\n  token:\n    realm: {tokens.realm}\n    service: {SERVICE}\n"
        f"    issuer: {ISSUER}\n    rootcertbundle: {bundle}\n"
    )
    port = free_port()
    try:
        proc = _serve(root, port, extra, "http", None)
        try:
            yield RunningRegistry(
                f"127.0.0.1:{port}",
                "http",
                root / "registry.log",
                None,
                None,
                USERNAME,
                PASSWORD,
                tokens,
            )
        finally:
            _stop(proc)
    finally:
        tokens.stop()


def fault_proxy(target: RunningRegistry) -> Iterator[FaultProxy]:
    proxy = FaultProxy(("127.0.0.1", target.port))
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def _context(ca: Path | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca) if ca else None)
