"""The registry layer cache on the standard-library corpus, and the choice of content hash.

    python3 benchmarks/registry_cache.py [--work DIR]

Part 1, the hash: MB/s on one core of each candidate hash of the standard
library's bytes (up to 256 MB, 1 MiB pieces), against bale's gzip (level 2)
and zstd compression of the same pieces. CPU flags are printed (sha_ni:
the SHA extensions OpenSSL's sha256 uses).

Part 2, two CI runners against Debian's docker-registry on loopback, each
build in a fresh copy of the corpus (new inodes and mtimes) with an empty
BALE_CACHE_DIR, each push into a fresh repository, one run each:

- seed: build + push with ``--cache-to`` (fills the cache);
- cold: build + push, no cache;
- hit: build + push with ``--cache-from`` (every layer a registry hit, mounted).

All three run twice: with bale's defaults (SBOM and provenance attached, which
hash every file again for the SBOM) and with ``--no-sbom --no-provenance``.

It prints hit / cold, and the cost of the content keys alone (hashing every
file of a fresh copy) against the cold build. Not a test: nothing asserts a time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from builder.layer.compress import compress  # noqa: E402
from builder.layer.contentkey import hash_host_files  # noqa: E402
from builder.layer.entries import Entry, HostFile, Kind  # noqa: E402
from builder.model import Codec  # noqa: E402
from tests.integration.registry_fixtures import plain_registry  # noqa: E402

SPEC = """[image]
created = "2024-01-01T00:00:00Z"
[[layers]]
name = "corpus"
files = [{ src = "tree/", dst = "/corpus/" }]
"""
PIECE = 1 << 20
LIMIT = 256 << 20


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
    for codec in (Codec.of("gzip"), Codec.of("zstd")):
        rows.append((f"{codec.name} level {codec.level}", lambda b, c=codec: compress(c, b)))
    print("| work | MB/s |\n|---|---:|")
    for name, work in rows:
        print(f"| {name} | {rate(pieces, work):.0f} |")


def clone(corpus: Path, target: Path) -> Path:
    """A fresh checkout: new directory, new inodes, new mtimes."""
    shutil.copytree(corpus, target / "tree", symlinks=True)
    (target / "image.toml").write_text(SPEC)
    return target


def bale(context: Path, cache: Path, *flags: str) -> tuple[float, dict[str, object]]:
    env = {**os.environ, "BALE_CACHE_DIR": str(cache), "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "builder.cli.entry", "build", "--json"]
    command += ["-f", str(context / "image.toml"), *flags]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, json.loads(done.stdout)


def runners(corpus: Path, work: Path, extra: tuple[str, ...]) -> None:
    print("flags:", " ".join(extra) or "(defaults: SBOM and provenance on)")
    with tempfile.TemporaryDirectory(dir=work) as scratch:
        base = Path(scratch)
        registry = plain_registry(base / "registry")
        (base / "registry").mkdir()
        reg = next(registry)
        try:
            cache = f"docker://{reg.host}/bench/cache:main"
            times = {}
            for name, flags in (
                ("seed", ("--cache-to", cache)),
                ("cold", ()),
                ("hit", ("--cache-from", cache)),
            ):
                context = clone(corpus, base / name)
                out = f"docker://{reg.host}/bench/{name}:v1"
                cache_dir = base / f"cache-{name}"
                times[name], summary = bale(context, cache_dir, "-o", out, *flags, *extra)
                layers = summary["images"][0]["layers"]  # type: ignore[index]
                print(f"{name}: {times[name]:.2f} s, layers {[x['source'] for x in layers]}")
            keys = key_time(clone(corpus, base / "keys"))
        finally:
            registry.close()
    print(f"build + push, registry-cache hit / no cache: {times['hit'] / times['cold']:.2f}x")
    print(f"content keys alone: {keys:.2f} s = {keys / times['cold']:.2f}x of the cold build")


def key_time(context: Path) -> float:
    entries = [
        Entry(str(p), Kind.FILE, 0o644, content=HostFile.of(str(p), p.lstat()))
        for p in sorted((context / "tree").rglob("*"))
        if p.is_file() and not p.is_symlink()
    ]
    start = time.perf_counter()
    hash_host_files(entries)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bale-bench")
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
    hashes(corpus)
    runners(corpus, args.work, ())
    runners(corpus, args.work, ("--no-sbom", "--no-provenance"))


if __name__ == "__main__":
    main()
