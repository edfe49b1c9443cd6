"""A no-change rebuild into an existing OCI layout, against its floor.

    python3 benchmarks/warm.py [--work DIR] [--pairs 5]

The floor is the same interpreter starting and lstat-ing every path of the
build context (what any stat-vouched rebuild must at least do). The corpus is
the standard library (site-packages excluded). bale runs as the ``bale``
program does (``python -m builder.cli.entry``), byte-compiled; after a cold build
and one warm build (which records the rebuild once its inputs are older than
the 2 s racy window), pairs of (bale, floor) alternate and the medians are
printed with their ratio. Not a test: nothing asserts a time.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPEC = """[image]
created = "2024-01-01T00:00:00Z"
[[layers]]
name = "corpus"
files = [{ src = "tree/", dst = "/corpus/" }]
"""
FLOOR = """
import os, sys
def walk(path):
    with os.scandir(path) as children:
        for child in children:
            child.stat(follow_symlinks=False)
            if child.is_dir(follow_symlinks=False):
                walk(child.path)
os.lstat(sys.argv[1])
walk(sys.argv[1])
"""


def wall(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bale-warm")
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    context = args.work / "context"
    if not context.exists():
        shutil.copytree(
            sysconfig.get_paths()["stdlib"],
            context / "tree",
            ignore=shutil.ignore_patterns("site-packages", "__pycache__"),
            ignore_dangling_symlinks=True,
        )
        (context / "image.toml").write_text(SPEC)
    files = sum(len(f) + len(d) for _, d, f in os.walk(context))
    compileall.compile_dir(REPO / "builder", quiet=1)
    env = {**os.environ, "BALE_CACHE_DIR": str(args.work / "cache"), "PYTHONPATH": str(REPO)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    bale = [sys.executable, "-m", "builder.cli.entry", "build", "-q"]
    bale += ["-o", f"oci:{args.work / 'out'}"]
    floor = [sys.executable, "-c", FLOOR, str(context)]
    time.sleep(2.2)  # a fresh copy is racy: its layer would not be recorded
    wall(bale, context, env)
    time.sleep(2.2)
    wall(bale, context, env)  # the full program once more: it records the rebuild
    times: dict[str, list[float]] = {"bale": [], "floor": []}
    for _ in range(args.pairs):
        times["bale"].append(wall(bale, context, env))
        times["floor"].append(wall(floor, context, env))
    b, f = (statistics.median(times[k]) for k in ("bale", "floor"))
    print(f"{files} paths; no-change rebuild {b:.3f} s, floor {f:.3f} s, ratio {b / f:.2f}x")
    print("bale:", " ".join(f"{t:.3f}" for t in times["bale"]))
    print("floor:", " ".join(f"{t:.3f}" for t in times["floor"]))


if __name__ == "__main__":
    main()
