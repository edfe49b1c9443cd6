"""Pushes through a flaky network: a fault proxy in front of a real registry.

Starts Debian's ``docker-registry`` on loopback and the fault proxy of
tests/integration/fault_proxy.py in front of it, which faults the given share
of all requests (resets mid-body, 500/502/503, 429 with Retry-After, stalls
longer than the read timeout, truncated answers, and registry restarts: the
registry process is killed with a request in flight and started again on the
same storage and port, which loses every open upload session). Builds N images (a layer
shared by all, so mounts happen too, and a large unique layer sent in chunks)
and pushes each through the proxy to its own repository, with bale's default
retry policy. Then reads every pushed manifest and blob back from the
registry directly and compares the bytes with the local OCI layout.

Run from the repository root::

    python3 benchmarks/reliability/pushes.py --pushes 25 --rate 0.2

``--restart-rate`` sets the share of requests that restart the registry (part of
``--rate``; by default an eighth of it, an even share of the eight fault kinds).

It prints one line per push and a summary; the exit status is 1 when a
completed push read back different bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from builder.commands.build import BuildOptions, build
from builder.errors import BaleError
from builder.registry.options import Clients, RegistryConfig, Timeouts
from builder.spec.locations import parse_output
from tests.integration.fault_proxy import Fault, FaultProxy
from tests.integration.registry_fixtures import RegistryProcess, RunningRegistry, steady_port

MiB = 1 << 20
TIMEOUTS = Timeouts(connect=2.0, read=2.0)
STALL_SECONDS = 3.0
ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"
SPEC = """
[image]
compression = "none"
[[layers]]
files = [{{ src = "shared.bin", dst = "/data/shared.bin" }}]
[[layers]]
files = [{{ src = "unique.bin", dst = "/data/unique.bin" }}]
content = [{{ dst = "/etc/push", text = "{name}" }}]
"""


@dataclass
class Outcome:
    """What a run of pushes gave."""

    pushed: int = 0
    identical: int = 0
    failures: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    restarts: int = 0
    seconds: float = 0.0

    def summary(self, pushes: int, rate: float) -> str:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.faults.items()))
        return (
            f"rate {rate:.0%}: {self.pushed}/{pushes} pushes completed, "
            f"{self.identical}/{self.pushed} read back identical; {self.requests} requests, "
            f"{sum(self.faults.values())} faulted ({kinds}); "
            f"{self.restarts} registry restarts; {self.seconds:.0f} s"
        )


def make_context(root: Path, name: str, shared: bytes, unique_size: int) -> Path:
    ctx = root / name
    ctx.mkdir(parents=True)
    (ctx / "shared.bin").write_bytes(shared)
    (ctx / "unique.bin").write_bytes(os.urandom(unique_size))
    spec = ctx / "image.toml"
    spec.write_text(SPEC.format(name=name))
    return spec


def push_one(spec: Path, proxy: FaultProxy, repo: str, config: RegistryConfig) -> None:
    """Build ``spec`` into a local layout beside it and push it through the proxy."""
    outputs = (
        parse_output(f"oci:{spec.parent / 'layout'}:v1"),
        parse_output(f"docker://{proxy.host}/{repo}:v1"),
    )
    with Clients(config) as clients:
        build(BuildOptions(spec_path=spec, outputs=outputs, clients=clients))


def read_back(registry: RunningRegistry, repo: str, layout: Path) -> list[str]:
    """Differences between the registry's copy of ``repo:v1`` and the local layout."""
    blobs = layout / "blobs" / "sha256"
    index = json.loads((layout / "index.json").read_bytes())
    root = index["manifests"][0]["digest"]
    base = f"http://{registry.host}/v2/{repo}"
    with httpx.Client(timeout=30) as http:
        answer = http.get(f"{base}/manifests/v1", headers={"Accept": ACCEPT})
        local = (blobs / root.split(":")[1]).read_bytes()
        wrong = [] if answer.content == local else [f"manifest {root}"]
        manifest = json.loads(local)
        for descriptor in [manifest["config"], *manifest["layers"]]:
            digest = descriptor["digest"]
            remote = http.get(f"{base}/blobs/{digest}", follow_redirects=True).content
            if remote != (blobs / digest.split(":")[1]).read_bytes():
                wrong.append(f"blob {digest}")
    return wrong


def run(
    pushes: int,
    rate: float,
    seed: int,
    work: Path,
    unique_size: int = 6 * MiB,
    restart_rate: float | None = None,
    armed: tuple[Fault, ...] = (),
) -> Outcome:
    """Push ``pushes`` images at fault ``rate``; every completed push is read back.

    ``restart_rate`` (default ``rate / 8``) of the requests restart the registry;
    ``armed`` faults fire on the requests they match, before any drawn one.
    """
    outcome = Outcome()
    registry = RegistryProcess(work / "registry")
    running = registry.running
    proxy = FaultProxy(("127.0.0.1", running.port), steady_port())
    proxy.restarter = registry
    proxy.start()
    restarts = rate / 8 if restart_rate is None else restart_rate
    config = RegistryConfig(
        timeouts=TIMEOUTS,
        chunk_threshold=MiB,
        chunk_size=MiB,
        locations_file=work / "blob-locations.json",
    )
    shared = os.urandom(2 * MiB)
    started = time.monotonic()
    try:
        proxy.random_faults(rate, seed, STALL_SECONDS, restarts)
        for fault in armed:
            proxy.arm(fault)
        for number in range(pushes):
            name = f"push{number:03d}"
            spec = make_context(work / "contexts", name, shared, unique_size)
            try:
                push_one(spec, proxy, f"reliability/{name}", config)
            except BaleError as exc:
                outcome.failures.append(f"{name}: {exc}")
                print(f"{name}: FAILED: {exc}", flush=True)
                continue
            outcome.pushed += 1
            wrong = read_back(running, f"reliability/{name}", spec.parent / "layout")
            outcome.identical += not wrong
            outcome.mismatches += [f"{name}: {w}" for w in wrong]
            print(f"{name}: pushed, {'identical' if not wrong else 'DIFFERENT'}", flush=True)
    finally:
        proxy.random_faults(0.0, seed, STALL_SECONDS)
        outcome.faults = Counter(proxy.fired)
        outcome.requests = len(proxy.requests)
        outcome.restarts = registry.restarts
        outcome.seconds = time.monotonic() - started
        proxy.stop()
        registry.stop()
    return outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=25, help="images to push (default 25)")
    parser.add_argument(
        "--rate", type=float, action="append", help="share of faulted requests (repeatable)"
    )
    parser.add_argument("--seed", type=int, default=1, help="the fault sequence's seed")
    parser.add_argument(
        "--restart-rate",
        type=float,
        help="share of requests that restart the registry (part of --rate; default rate/8)",
    )
    args = parser.parse_args()
    worst = 0
    for rate in args.rate or [0.1, 0.2]:
        with tempfile.TemporaryDirectory(prefix="bale-reliability-") as work:
            outcome = run(args.pushes, rate, args.seed, Path(work), restart_rate=args.restart_rate)
        print(outcome.summary(args.pushes, rate), flush=True)
        worst = max(worst, len(outcome.mismatches))
    return 1 if worst else 0


if __name__ == "__main__":
    sys.exit(main())
