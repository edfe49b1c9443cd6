"""The registry layer cache on the standard-library corpus, and the choice of content hash.

    python3 benchmarks/registry_cache.py [--work DIR] [--rounds 3] [--python PY] [--hashes]

``--hashes``, the hash: MB/s on one core of each candidate hash of the
standard library's bytes (up to 256 MB, 1 MiB pieces), against bale's gzip
(level 2) and zstd compression of the same pieces. CPU flags are printed
(sha_ni: the SHA extensions OpenSSL's sha256 uses).

The runners: CI runners against Debian's docker-registry on loopback, each
build in a fresh copy of the corpus (new inodes and mtimes) with an empty
BALE_CACHE_DIR, each push into a fresh repository. Per flag set (bale's
defaults, SBOM and provenance on; and ``--no-sbom --no-provenance``) one
seed build fills a cache (``--cache-to``); then each round runs, in turn:

- cold: build + push, no cache;
- hit: build + push with ``--cache-from`` (every layer a registry hit, mounted);

the two flag sets and the order of cold and hit alternating from round to
round, so the machine's other load falls on both alike. Each run's wall time
and CPU time (user + sys of the bale process) are printed, then the medians
and hit / cold of each, and the cost of the content keys alone (hashing
every file of a fresh copy, in this process) against the cold build. bale
runs as ``PY -m builder.cli.entry`` (``--python``: a venv with bale
installed; default: this interpreter with the checkout on PYTHONPATH). The
load average is printed before and after. Not a test: nothing asserts a time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import blake3

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from builder.layer.compress import compress  # noqa: E402
from builder.layer.contentkey import hash_host_files  # noqa: E402
from builder.layer.entries import Entry, HostFile, Kind  # noqa: E402
from builder.model import Codec  # noqa: E402
from tests.integration.registry_fixtures import RunningRegistry, plain_registry  # noqa: E402

SPEC = """[image]
created = "2024-01-01T00:00:00Z"
[[layers]]
name = "corpus"
files = [{ src = "tree/", dst = "/corpus/" }]
"""
PIECE = 1 << 20
LIMIT = 256 << 20
FLAG_SETS = {"defaults": (), "no-sbom": ("--no-sbom", "--no-provenance")}


def corpus_bytes(tree: Path) -> list[bytes]:
    pieces, total, pending = [], 0, bytearray()
    for path in sorted(tree.rglob("*")):
        if path.is_file() and not path.is_symlink() and total < LIMIT:
            pending += path.read_bytes()
            while len(pending) >= PIECE:
                pieces.append(bytes(pending[:PIECE]))
                del pending[:PIECE]
                total += PIECE
    return pieces


def rate(pieces: list[bytes], work: Callable[[bytes], object]) -> float:
    start = time.perf_counter()
    for piece in pieces:
        work(piece)
    return len(pieces) * PIECE / 1e6 / (time.perf_counter() - start)


def hashes(tree: Path) -> None:
    flags = set(Path("/proc/cpuinfo").read_text().split())
    print("cpu flags:", " ".join(f for f in ("sha_ni", "avx2", "avx512f") if f in flags))
    pieces = corpus_bytes(tree)
    print(f"{len(pieces)} MiB of the standard library, one core")
    rows: list[tuple[str, Callable[[bytes], object]]] = [
        (name, lambda b, n=name: hashlib.new(n, b).digest())
        for name in ("sha256", "blake2b", "blake2s", "sha512", "sha1", "md5")
    ]
    rows.append(("blake3", lambda b: blake3.blake3(b).digest()))
    for codec in (Codec.of("gzip"), Codec.of("zstd")):
        rows.append((f"{codec.name} level {codec.level}", lambda b, c=codec: compress(c, b)))
    print("| work | MB/s |\n|---|---:|")
    for name, work in rows:
        print(f"| {name} | {rate(pieces, work):.0f} |")


@dataclass
class Times:
    """Wall and CPU seconds of each run of one kind."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


@dataclass
class Bench:
    corpus: Path
    scratch: Path
    registry: RunningRegistry
    python: list[str]
    env: dict[str, str]
    runs: int = 0

    def clone(self) -> Path:
        """A fresh checkout: new directory, new inodes, new mtimes."""
        self.runs += 1
        target = self.scratch / f"run{self.runs}"
        shutil.copytree(self.corpus, target / "tree", symlinks=True)
        (target / "image.toml").write_text(SPEC)
        return target

    def bale(self, *flags: str) -> tuple[float, float, list[str]]:
        """One build + push in a fresh clone with an empty cache: wall, CPU, layer sources."""
        context = self.clone()
        out = f"docker://{self.registry.host}/bench/run{self.runs}:v1"
        cache = self.scratch / f"cache{self.runs}"
        env = {**self.env, "BALE_CACHE_DIR": str(cache)}
        command = [*self.python, "-m", "builder.cli.entry", "build", "--json"]
        command += ["-f", str(context / "image.toml"), "-o", out, *flags]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(
            command, cwd=self.scratch, env=env, capture_output=True, text=True, check=True
        )
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        layers = json.loads(done.stdout)["images"][0]["layers"]
        shutil.rmtree(context)
        shutil.rmtree(cache)
        return wall, cpu, [str(x["source"]) for x in layers]

    def key_time(self) -> tuple[float, float]:
        """Wall and CPU seconds of hashing every file of a fresh copy (the content keys)."""
        context = self.clone()
        entries = [
            Entry(str(p), Kind.FILE, 0o644, content=HostFile.of(str(p), p.lstat()))
            for p in sorted((context / "tree").rglob("*"))
            if p.is_file() and not p.is_symlink()
        ]
        start, cpu = time.perf_counter(), time.process_time()
        hash_host_files(entries)
        found = time.perf_counter() - start, time.process_time() - cpu
        shutil.rmtree(context)
        return found


def rounds(bench: Bench, count: int) -> tuple[dict[str, Times], Times]:
    """Seed each flag set's cache, then ``count`` interleaved rounds of cold and hit."""
    caches = {name: f"docker://{bench.registry.host}/bench/cache-{name}:main" for name in FLAG_SETS}
    for name, flags in FLAG_SETS.items():
        wall, cpu, sources = bench.bale("--cache-to", caches[name], *flags)
        print(f"seed {name}: {wall:.2f} s wall, {cpu:.2f} s CPU, {sources}")
    found = {f"{name} {kind}": Times() for name in FLAG_SETS for kind in ("cold", "hit")}
    keys = Times()
    for number in range(count):
        for name, flags, kind in _order(number):
            extra = ("--cache-from", caches[name]) if kind == "hit" else ()
            wall, cpu, sources = bench.bale(*extra, *flags)
            times = found[f"{name} {kind}"]
            times.wall.append(wall)
            times.cpu.append(cpu)
            print(f"round {number + 1} {name} {kind}: {wall:.2f} s, {cpu:.2f} s CPU, {sources}")
        wall, cpu = bench.key_time()
        keys.wall.append(wall)
        keys.cpu.append(cpu)
    return found, keys


def _order(number: int) -> Iterator[tuple[str, tuple[str, ...], str]]:
    """Round ``number``'s runs: flag sets and cold/hit swapped every other round."""
    names = list(FLAG_SETS) if number % 2 == 0 else list(reversed(FLAG_SETS))
    kinds = ("cold", "hit") if number % 2 == 0 else ("hit", "cold")
    for name in names:
        for kind in kinds:
            yield name, FLAG_SETS[name], kind


def report(found: dict[str, Times], keys: Times) -> None:
    med = statistics.median
    print(
        "| flags | cold wall (s) | hit wall (s) | hit/cold wall | cold CPU (s) | hit CPU (s) "
        "| hit/cold CPU |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in FLAG_SETS:
        cold, hit = found[f"{name} cold"], found[f"{name} hit"]
        cw, hw, cc, hc = med(cold.wall), med(hit.wall), med(cold.cpu), med(hit.cpu)
        print(
            f"| {name} | {cw:.2f} | {hw:.2f} | {hw / cw:.2f}x | {cc:.2f} | {hc:.2f} "
            f"| {hc / cc:.2f}x |"
        )
        ratios = [h / c for h, c in zip(hit.wall, cold.wall, strict=True)]
        print(f"  {name}: per-round hit/cold wall {' '.join(f'{r:.2f}' for r in ratios)}")
    cold = found["defaults cold"]
    kw, kc = med(keys.wall), med(keys.cpu)
    print(
        f"content keys alone: {kw:.2f} s wall ({kw / med(cold.wall):.2f}x of the cold build), "
        f"{kc:.2f} s CPU ({kc / med(cold.cpu):.2f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bale-bench")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--python", help="the interpreter of a venv with bale installed")
    parser.add_argument("--hashes", action="store_true", help="also the table of hash speeds")
    args = parser.parse_args()
    corpus = args.work / "stdlib" / "tree"
    if not corpus.exists():
        shutil.copytree(
            sysconfig.get_paths()["stdlib"],
            corpus,
            ignore=shutil.ignore_patterns("site-packages"),
            ignore_dangling_symlinks=True,
        )
    if shutil.which("docker-registry") is None:
        sys.exit("docker-registry is not installed (apt-get install docker-registry)")
    if args.hashes:
        hashes(corpus)
    env = dict(os.environ)
    python = [args.python] if args.python else [sys.executable]
    if not args.python:
        env["PYTHONPATH"] = str(REPO)
    print("load average before:", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    with tempfile.TemporaryDirectory(dir=args.work) as scratch:
        base = Path(scratch)
        (base / "registry").mkdir()
        registry = plain_registry(base / "registry")
        try:
            bench = Bench(corpus, base, next(registry), python, env)
            found, keys = rounds(bench, args.rounds)
        finally:
            registry.close()
    print("load average after:", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    report(found, keys)


if __name__ == "__main__":
    main()
