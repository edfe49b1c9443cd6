"""Benchmark bale against umoci, pigz and gzip on the same corpora, in one run.

    python3 benchmarks/run.py [--work DIR] [--corpora stdlib,small,big] [--quick] [--repeat N]

Corpora (prepared once under --work, reused afterwards):
  stdlib  the running interpreter's standard library, site-packages excluded
  small   100,000 small files (--quick: 10,000)
  big     one 1 GiB file of mixed content: random, text and zero runs (--quick: 128 MiB)

For each corpus: bale cold (empty cache, new layout) and warm (nothing
changed, same layout) builds with gzip and zstd, ``umoci insert`` of the tree into a new layout,
``tar -c | pigz -6 -p2`` and ``tar -c | gzip -6``. The table gives wall
time (the median of --repeat rounds, 3 by default, each round running every
tool once), compressed size, peak RSS and the ratios against umoci. Not a test:
nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPEC = """[image]
created = "2024-01-01T00:00:00Z"
compression = "{codec}"
[[layers]]
name = "corpus"
files = [{{ src = "tree/", dst = "/corpus/" }}]
"""


@dataclass(frozen=True)
class Run:
    corpus: str
    tool: str
    wall: float
    size: int
    rss_kib: int


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (KiB, the largest process of the tree) and stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.exit(f"failed ({proc.returncode}): {' '.join(command)}")
    return wall, usage.ru_maxrss, out


def prepare(work: Path, corpus: str, quick: bool) -> Path:
    tree = work / corpus / "tree"
    if tree.exists():
        return tree
    staging = tree.with_name("staging")
    shutil.rmtree(staging, ignore_errors=True)
    if corpus == "stdlib":
        stdlib = sysconfig.get_paths()["stdlib"]
        shutil.copytree(
            stdlib,
            staging,
            ignore=shutil.ignore_patterns("site-packages"),
            ignore_dangling_symlinks=True,
        )
    elif corpus == "small":
        rng = random.Random(1)
        for i in range(10_000 if quick else 100_000):
            directory = staging / f"d{i // 1000:03d}"
            if i % 1000 == 0:
                directory.mkdir(parents=True)
            words = " ".join(str(rng.randrange(10**6)) for _ in range(rng.randrange(4, 200)))
            (directory / f"f{i:06d}.txt").write_text(words)
    else:
        staging.mkdir(parents=True)
        rng = random.Random(2)
        stdlib = Path(sysconfig.get_paths()["stdlib"])
        text = b"".join(p.read_bytes() for p in sorted(stdlib.glob("*.py")))[: 1 << 20]
        remaining = (128 if quick else 1024) << 20
        with open(staging / "mixed.bin", "wb") as out:
            while remaining > 0:
                kind = rng.randrange(3)
                piece = (rng.randbytes(1 << 20), text[: 1 << 20], bytes(1 << 20))[kind]
                out.write(piece[:remaining])
                remaining -= len(piece)
    os.replace(staging, tree)
    time.sleep(2.5)  # older than bale's racy window, as a real build context would be
    return tree


def bale_runs(corpus: str, base: Path) -> list[Run]:
    runs = []
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for codec in ("gzip", "zstd"):
        (base / "image.toml").write_text(SPEC.format(codec=codec))
        env["BALE_CACHE_DIR"] = str(base / f"cache-{codec}")
        shutil.rmtree(env["BALE_CACHE_DIR"], ignore_errors=True)
        for phase in ("cold", "warm"):
            out = base / f"out-{codec}"
            if phase == "cold":
                shutil.rmtree(out, ignore_errors=True)
            command = [sys.executable, "-m", "builder.cli.main", "build", "--json"]
            command += ["-f", str(base / "image.toml"), "-o", f"oci:{out}"]
            wall, rss, stdout = timed(command, env)
            size = json.loads(stdout)["images"][0]["layers"][0]["size"]
            runs.append(Run(corpus, f"bale {codec} {phase}", wall, size, rss))
    return runs


def peer_runs(corpus: str, base: Path, tree: Path) -> list[Run]:
    runs = []
    layout = base / "umoci"
    shutil.rmtree(layout, ignore_errors=True)
    subprocess.run(["umoci", "init", "--layout", str(layout)], check=True)
    subprocess.run(["umoci", "new", "--image", f"{layout}:t"], check=True)
    command = ["umoci", "insert", "--rootless", "--image", f"{layout}:t", str(tree), "/corpus"]
    wall, rss, _ = timed(command)
    size = max(p.stat().st_size for p in (layout / "blobs" / "sha256").iterdir())
    runs.append(Run(corpus, "umoci insert", wall, size, rss))
    for name, compressor in (("tar, pigz -6 -p2", "pigz -6 -p2"), ("tar, gzip -6", "gzip -6")):
        target = base / "out.tar.gz"
        script = f"tar -C {tree} -cf - . | {compressor} > {target}"
        wall, rss, _ = timed(["sh", "-c", script])
        runs.append(Run(corpus, name, wall, target.stat().st_size, rss))
        target.unlink()
    return runs


def table(runs: list[Run]) -> str:
    lines = [
        "| corpus | tool | wall s | size MB | peak RSS MB | time / umoci | size / umoci |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        umoci = next(r for r in runs if r.corpus == run.corpus and r.tool == "umoci insert")
        lines.append(
            f"| {run.corpus} | {run.tool} | {run.wall:.2f} | {run.size / 1e6:.1f} "
            f"| {run.rss_kib / 1024:.0f} | {run.wall / umoci.wall:.2f} "
            f"| {run.size / umoci.size:.3f} |"
        )
    return "\n".join(lines)


def machine() -> str:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()[0]
    return (
        f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}, Python "
        f"{platform.python_version()}; load average {load:.2f} at start"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/bale-bench"))
    parser.add_argument("--corpora", default="stdlib,small,big")
    parser.add_argument("--quick", action="store_true", help="smaller small/big corpora")
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds per corpus; the table shows medians"
    )
    args = parser.parse_args()
    compileall.compile_dir(REPO / "builder", quiet=1)
    print(machine(), flush=True)
    runs: list[Run] = []
    for corpus in args.corpora.split(","):
        tree = prepare(args.work, corpus, args.quick)
        base = tree.parent
        rounds = [
            peer_runs(corpus, base, tree) + bale_runs(corpus, base)
            for _ in range(max(1, args.repeat))
        ]
        runs += medians(rounds)
        print(f"{corpus}: done", file=sys.stderr, flush=True)
    print(table(runs))


def medians(rounds: list[list[Run]]) -> list[Run]:
    """One row per tool: the median wall time of the rounds, the largest peak RSS.

    The rounds interleave every tool, so a noisy neighbour slows all of them alike.
    """
    rows = []
    for index, first in enumerate(rounds[0]):
        same = [runs[index] for runs in rounds]
        wall = statistics.median(r.wall for r in same)
        rows.append(Run(first.corpus, first.tool, wall, first.size, max(r.rss_kib for r in same)))
    return rows


if __name__ == "__main__":
    main()
