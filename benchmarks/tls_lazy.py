"""What the lazy CA loading saves on a push to a plain-HTTP loopback registry.

Each push makes a fresh ``RegistryClient`` (as each bale command does), probes
the registry, sends one small blob and one manifest. ``lazy`` is bale as it is;
``eager`` adds ``ssl.create_default_context()`` per push, the work the client
did before the CA certificates were loaded lazily. Rounds alternate the two.
Run from the repository root: ``python3 benchmarks/tls_lazy.py [--pushes 15 --rounds 6]``.
"""

from __future__ import annotations

import argparse
import io
import json
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from builder.model import OCI_LAYER, OCI_MANIFEST, Descriptor, Digest
from builder.registry.client import RegistryClient, RegistryOptions
from builder.registry.credentials import ANONYMOUS
from tests.integration.registry_fixtures import RegistryProcess

DATA = b"hello"
BLOB = Descriptor(OCI_LAYER, Digest.of(DATA), len(DATA))


def push(host: str, number: int, eager: bool) -> float:
    start = time.perf_counter()
    if eager:
        ssl.create_default_context()
    with RegistryClient(host, ANONYMOUS, RegistryOptions()) as client:
        client.push_blob("bench/tls", BLOB, lambda: io.BytesIO(DATA))
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": BLOB.to_json(),
            "layers": [],
            "annotations": {"n": str(number)},
        }
        client.push_manifest("bench/tls", f"t{number}", OCI_MANIFEST, json.dumps(manifest).encode())
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=15, help="pushes per round")
    parser.add_argument("--rounds", type=int, default=6, help="rounds of each kind")
    args = parser.parse_args()
    medians: dict[str, list[float]] = {"lazy": [], "eager": []}
    with tempfile.TemporaryDirectory(prefix="bale-tls-") as work:
        registry = RegistryProcess(Path(work) / "registry")
        try:
            count = 0
            for _ in range(args.rounds):
                for kind in medians:
                    times = []
                    for _ in range(args.pushes):
                        count += 1
                        times.append(push(registry.running.host, count, kind == "eager"))
                    medians[kind].append(statistics.median(times))
        finally:
            registry.stop()
    for kind, values in medians.items():
        shown = ", ".join(f"{v * 1000:.0f}" for v in values)
        print(f"{kind}: median {statistics.median(values) * 1000:.0f} ms per push ({shown})")
    saved = statistics.median(medians["eager"]) - statistics.median(medians["lazy"])
    print(f"saved per push: {saved * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
