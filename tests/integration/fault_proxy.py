"""A fault-injecting HTTP proxy between the client and a plain-HTTP registry.

One request per connection (``Connection: close`` is forced upstream). Armed
faults fire on matching requests a given number of times (``every``: only on
every n-th match):

- ``drop``: forward the head and ``after`` body bytes, then cut both connections;
- ``status``: answer ``status`` itself (with ``Retry-After`` if given);
- ``stall``: read the request, then say nothing for ``seconds`` and close;
- ``corrupt``: relay the upstream answer with the last body byte flipped;
- ``truncate``: relay only the first half of the upstream answer, then close;
- ``restart``: forward the head and ``after`` body bytes, then kill the registry
  (``restarter``), cut the client's connection, stop listening (so that, as with
  a registry without a proxy, new connections are refused) and start the
  registry again, then listen again on the same port.

``random_faults(rate, seed)`` also faults that share of all other requests,
each with a kind drawn from RANDOM_MIX (resets mid-body, 500/502/503, 429 with
Retry-After, stalls, truncated answers): the reliability harness uses it. With a
``restarter`` and a ``restart_rate``, that share of all requests (counted within
``rate``) restarts the registry instead.

Everything is bounded: socket timeouts, and reads limited by Content-Length.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

_TIMEOUT = 10.0
_MAX_HEAD = 65536
RANDOM_MIX = ("drop", "500", "502", "503", "429", "stall", "truncate")


class Restarter(Protocol):
    def restart(self, between: Callable[[], None]) -> bool: ...


@dataclass
class Fault:
    kind: str
    method: str
    path_contains: str = ""
    times: int = 1
    after: int = 0
    status: int = 500
    retry_after: str | None = None
    seconds: float = 0.0
    every: int = 1  # fire on the 1st, (1+every)th, ... matching request only
    seen: int = 0

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and method == self.method and self.path_contains in path


class FaultProxy:
    def __init__(self, upstream: tuple[str, int], port: int = 0) -> None:
        """``port``: where to listen (0: any); a proxy with a ``restarter`` needs one
        outside the ephemeral range, as it stops listening while the registry restarts."""
        self.upstream = upstream
        self.faults: list[Fault] = []
        self.fired: Counter[str] = Counter()
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", port))
        self._listener.settimeout(0.2)
        self._port: int = self._listener.getsockname()[1]
        self._listening = threading.Event()
        self._listening.set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._rate = 0.0
        self._stall = 0.0
        self._random = random.Random(0)
        self._restart_rate = 0.0
        self.restarter: Restarter | None = None

    def random_faults(
        self, rate: float, seed: int, stall_seconds: float, restart_rate: float = 0.0
    ) -> None:
        """Fault ``rate`` of the requests no armed fault matches, kinds from RANDOM_MIX;
        ``restart_rate`` of all requests (part of ``rate``) restart the registry."""
        with self._lock:
            self._rate, self._random, self._stall = rate, random.Random(seed), stall_seconds
            self._restart_rate = restart_rate

    def _draw(self, method: str, length: int) -> Fault | None:
        if self._rate <= 0:
            return None
        draw = self._random.random()
        if draw >= self._rate:
            return None
        if self.restarter is not None and draw < self._restart_rate:
            return Fault("restart", method, after=self._random.randrange(length + 1))
        kind = self._random.choice(RANDOM_MIX)
        if kind.isdigit():
            retry = "1" if kind == "429" else None
            return Fault("status", method, status=int(kind), retry_after=retry)
        if kind == "stall":
            return Fault("stall", method, seconds=self._stall)
        return Fault(kind, method, after=self._random.randrange(length + 1))

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._port}"

    def arm(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._listening.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._listening.wait(timeout=30) and not self._stop.is_set():
                    continue
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _close_listener(self) -> None:
        self._listening.clear()
        self._listener.close()

    def _reopen_listener(self, port: int) -> None:
        """Listen on ``port`` again (the accept loop waits for it)."""
        for _ in range(100):
            try:
                self._listener = socket.create_server(("127.0.0.1", port))
                break
            except OSError:
                time.sleep(0.05)
        self._listener.settimeout(0.2)
        self._listening.set()

    def _take(self, method: str, path: str, length: int) -> Fault | None:
        with self._lock:
            self.requests.append((method, path))
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.seen += 1
                    if (fault.seen - 1) % fault.every:
                        continue
                    fault.times -= 1
                    self.fired[fault.kind] += 1
                    return fault
            drawn = self._draw(method, length)
            if drawn is not None:
                self.fired[drawn.kind] += 1
            return drawn

    def _handle(self, client: socket.socket) -> None:
        client.settimeout(_TIMEOUT)
        try:
            head, rest = _read_head(client)
            method, path, length = _parse_head(head)
            fault = self._take(method, path, length)
            if fault is not None and fault.kind not in ("corrupt", "truncate"):
                self._inject(client, fault, head, rest, length)
                return
            self._relay(client, _force_close(head), rest, length, fault)
        except OSError:
            return
        finally:
            client.close()

    def _inject(
        self, client: socket.socket, fault: Fault, head: bytes, rest: bytes, length: int
    ) -> None:
        if fault.kind == "restart" and self.restarter is not None:
            self._restart(client, head, rest, length, fault.after)
            return
        if fault.kind == "drop":
            with socket.create_connection(self.upstream, timeout=_TIMEOUT) as up:
                up.sendall(_force_close(head))
                body = rest + _read_exact(client, max(0, min(fault.after, length) - len(rest)))
                up.sendall(body[: fault.after])
                time.sleep(0.2)
            client.shutdown(socket.SHUT_RDWR)
            return
        _read_exact(client, length - len(rest))
        if fault.kind == "stall":
            time.sleep(fault.seconds)
            return
        extra = f"Retry-After: {fault.retry_after}\r\n" if fault.retry_after else ""
        client.sendall(
            f"HTTP/1.1 {fault.status} Injected\r\n{extra}Content-Length: 0\r\n"
            "Connection: close\r\n\r\n".encode()
        )

    def _restart(
        self, client: socket.socket, head: bytes, rest: bytes, length: int, after: int
    ) -> None:
        """Kill the registry with this request in flight, cut the client, start it again."""
        assert self.restarter is not None

        def down() -> None:
            client.shutdown(socket.SHUT_RDWR)
            self._close_listener()

        with socket.create_connection(self.upstream, timeout=_TIMEOUT) as up:
            up.sendall(_force_close(head))
            body = rest + _read_exact(client, max(0, min(after, length) - len(rest)))
            up.sendall(body[:after])
            try:
                restarted = self.restarter.restart(down)
            finally:
                if not self._listening.is_set():
                    self._reopen_listener(self._port)
            if not restarted:
                client.shutdown(socket.SHUT_RDWR)

    def _relay(
        self, client: socket.socket, head: bytes, rest: bytes, length: int, fault: Fault | None
    ) -> None:
        with socket.create_connection(self.upstream, timeout=_TIMEOUT) as up:
            up.sendall(head + rest)
            left = length - len(rest)
            while left > 0:
                data = client.recv(min(65536, left))
                if not data:
                    return
                up.sendall(data)
                left -= len(data)
            answer = _read_all(up)
        if fault is not None and fault.kind == "corrupt" and answer:
            answer = answer[:-1] + bytes([answer[-1] ^ 0xFF])
        if fault is not None and fault.kind == "truncate":
            answer = answer[: len(answer) // 2]
        client.sendall(answer)


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not data and chunk[:1] == b"\x16":
            raise OSError("a TLS handshake: this proxy speaks plain HTTP only")
        if not chunk or len(data) > _MAX_HEAD:
            raise OSError("no complete request head")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n", rest


def _parse_head(head: bytes) -> tuple[str, str, int]:
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    return method, path, length


def _force_close(head: bytes) -> bytes:
    lines = [
        line
        for line in head.decode("latin-1").split("\r\n")
        if line and not line.lower().startswith(("connection:", "keep-alive:"))
    ]
    return ("\r\n".join([*lines, "Connection: close"]) + "\r\n\r\n").encode("latin-1")


def _read_exact(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(min(65536, count - len(data)))
        if not chunk:
            break
        data += chunk
    return data


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
