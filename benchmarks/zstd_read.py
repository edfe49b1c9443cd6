"""Reading zstd layers: bale's truncation-checking reader against zstandard's stream reader.

    python3 benchmarks/zstd_read.py [TREE] [--limit MB] [--rounds N]

Tars TREE (default: the interpreter's standard library) with bale's tar
writer, compresses it as bale does (zstd level 3, one frame per 4 MiB), and
reads it back in tarfile's 10 KiB pieces and in 1 MiB pieces; the same for
256 MiB of zeros (a thousandfold expansion). Prints MB/s of uncompressed
output per core (CPU time, best of N rounds).
"""

from __future__ import annotations

import argparse
import io
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import zstandard

from benchmarks.codecs import tar_of
from builder.layer.decompress import decompressed

Reader = Callable[[BinaryIO], BinaryIO]
READERS: dict[str, Reader] = {
    "zstandard stream_reader (no truncation check)": lambda f: (
        zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True)
    ),
    "bale decompressed(.., 'zstd')": lambda f: decompressed(f, "zstd"),
}


def frames(data: bytes, chunk: int = 4 << 20) -> bytes:
    compressor = zstandard.ZstdCompressor(level=3)
    return b"".join(compressor.compress(data[i : i + chunk]) for i in range(0, len(data), chunk))


def speed(make: Reader, compressed: bytes, total: int, size: int, rounds: int) -> float:
    best = 0.0
    for _ in range(rounds):
        start = time.process_time()
        reader, seen = make(io.BytesIO(compressed)), 0
        while chunk := reader.read(size):
            seen += len(chunk)
        assert seen == total, (seen, total)
        best = max(best, total / (time.process_time() - start) / 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("tree", nargs="?", default=sysconfig.get_paths()["stdlib"])
    parser.add_argument("--limit", type=int, default=128, help="MB of tar to use")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    corpora = {"tar": tar_of(Path(args.tree), args.limit << 20), "zeros": bytes(256 << 20)}
    print("| data | reader | read size | MB/s per core |")
    print("|---|---|---:|---:|")
    for name, data in corpora.items():
        compressed = frames(data)
        for size in (10 << 10, 1 << 20):
            for label, make in READERS.items():
                rate = speed(make, compressed, len(data), size, args.rounds)
                print(f"| {name} | {label} | {size >> 10} KiB | {rate:.0f} |")


if __name__ == "__main__":
    main()
