"""Measure compression level and chunk size choices on one tree (single core).

    python3 benchmarks/codecs.py [TREE] [--limit MB]

Tars TREE (default: the interpreter's standard library, site-packages
excluded) in memory with bale's tar writer, then compresses it chunk by chunk
as bale does, printing speed per core and the ratio for each choice.
"""

from __future__ import annotations

import argparse
import io
import sys
import sysconfig
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from builder.layer.compress import compress
from builder.layer.sources import layer_entries
from builder.layer.tarwriter import write_tar
from builder.model import Codec, Platform
from builder.spec.values import FileSpec, LayerSpec


def tar_of(tree: Path, limit: int) -> bytes:
    spec = FileSpec(src=".", dst="/t/", exclude=("site-packages/",), where="bench")
    layer = LayerSpec(name="t", codec=Codec.of("none"), files=(spec,))
    out = io.BytesIO()
    write_tar(layer_entries(layer, tree, Platform.host()), 0, out.write)
    return out.getvalue()[:limit]


def measure(data: bytes, name: str, level: int, chunk: int) -> tuple[float, float]:
    """Compress as the layer pipeline does: Codec.compress on uncopied slices."""
    codec = Codec.of(name, level)
    start = time.process_time()
    total = 0
    view = memoryview(data)
    for offset in range(0, len(data), chunk):
        total += len(compress(codec, view[offset : offset + chunk]))
    seconds = time.process_time() - start
    return len(data) / seconds / 1e6, total / len(data)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("tree", nargs="?", default=sysconfig.get_paths()["stdlib"])
    parser.add_argument("--limit", type=int, default=128, help="MB of tar to use")
    args = parser.parse_args()
    data = tar_of(Path(args.tree), args.limit << 20)
    print(f"{len(data) / 1e6:.0f} MB of tar from {args.tree}")
    print("| codec | level | chunk | MB/s per core | ratio |")
    print("|---|---:|---:|---:|---:|")
    choices = [("gzip", level, 1 << 20) for level in (1, 2, 3, 4, 5, 6, 7, 9)]
    choices += [("gzip", 6, size) for size in (256 << 10, 4 << 20)]
    choices += [("zstd", level, 4 << 20) for level in (1, 3, 6)]
    choices += [("zstd", 3, 1 << 20)]
    for name, level, chunk in choices:
        speed, ratio = measure(data, name, level, chunk)
        print(f"| {name} | {level} | {chunk >> 10} KiB | {speed:.0f} | {ratio:.4f} |")


if __name__ == "__main__":
    main()
