"""Kill, interrupt and race bale, then judge what it left behind.

    python benchmarks/reliability/crash.py [--kills 300] [--sigints 100] [--rounds 30]

Three trials, all against one OCI layout that already holds an image:

- kill: a build (into the layout and an oci-archive, with or without the
  layer cache) gets SIGKILL at a random moment from start-up to its end. The
  layout must be valid (every tag's manifest, config and layers present and
  matching their digests; umoci and skopeo read it). Then a complete build
  runs; afterwards no bale temp file may remain in the layout, beside the
  archive, in the cache or in TMPDIR, and ``umoci gc`` must succeed.
- sigint: the same with SIGINT; bale must exit 130 with one line (or 0 if it
  had finished), leave no temp file at all, and the layout must be valid. A
  SIGINT that lands while the Python interpreter itself starts, before bale's
  first line (sorted as in ``startup.py``: a silent end, CPython's start-up
  message or a traceback through module-level code only), is counted apart
  as ``python_startup``.
- race: N rounds of 4 concurrent builds, each with its own tag, into the
  layout; every round must keep all 4 tags, each naming the digest its build
  printed.

Prints one line per trial kind and, with --json, the figures as JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.reliability.startup import outcome

BEFORE_BALE = ("silent", "python_startup", "python_script")
TEMP_SUFFIXES = (".bale-tmp", ".bale-new")
INTERRUPTED = "bale: interrupted; outputs were left as they were"
IMAGE_TOML = """\
[image]
tags = ["base"]
created = "2024-01-01T00:00:00Z"

[[layers]]
name = "data"
files = [{ src = "data/", dst = "/data/" }]

[[layers]]
name = "stamp"
files = [{ src = "stamp.txt", dst = "/stamp.txt" }]
"""


class Bench:
    """A work directory: contexts, the layout, an archive directory, cache and TMPDIR."""

    def __init__(self, work: Path, seed: int) -> None:
        self.work = work
        self.random = random.Random(seed)
        self.layout = work / "layout"
        self.archives = work / "archives"
        self.cache = work / "cache"
        self.tmp = work / "tmp"
        for path in (self.archives, self.cache, self.tmp):
            path.mkdir(parents=True)
        self.env = {**os.environ, "BALE_CACHE_DIR": str(self.cache), "TMPDIR": str(self.tmp)}
        self.env.pop("CI", None)

    def context(self, name: str) -> Path:
        """A build context whose random file and stamp change on every call."""
        path = self.work / "contexts" / name
        data = path / "data"
        if not data.exists():
            data.mkdir(parents=True)
            (path / "image.toml").write_text(IMAGE_TOML)
            for number in range(6):
                text = "".join(f"{name} line {number} {i}\n" for i in range(40_000))
                (data / f"text{number}.txt").write_text(text)
        (data / "random.bin").write_bytes(self.random.randbytes(1 << 20))
        (path / "stamp.txt").write_text(f"{self.random.random()}\n")
        return path

    def command(self, context: Path, tag: str, *extra: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "builder.cli.entry",
            "build",
            "-q",
            "-f",
            str(context / "image.toml"),
            "-t",
            tag,
            "-o",
            f"oci:{self.layout}",
            *extra,
        ]

    def start(self, command: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

    def run(self, command: list[str]) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(command, env=self.env, capture_output=True, check=False)

    def temps(self) -> list[str]:
        """Every bale temp file or directory left anywhere bale writes."""
        found = []
        for top in (self.layout, self.archives, self.cache, self.tmp):
            for path in _walk(top):
                if path.name.endswith(TEMP_SUFFIXES) or path.name.startswith("bale-"):
                    found.append(str(path.relative_to(self.work)))
        return found


def _walk(top: Path) -> Iterator[Path]:
    for parent, dirs, files in os.walk(top):
        for name in dirs + files:
            yield Path(parent) / name


def layout_problems(layout: Path, seen: dict[tuple[str, int, int], bytes]) -> list[str]:
    """What is wrong with the layout: unreadable index, missing or damaged blobs.

    ``seen`` remembers blobs already verified (by path, size and mtime): a blob
    is never rewritten in place, so each is hashed once per run.
    """
    try:
        index = json.loads((layout / "index.json").read_bytes())
    except (OSError, ValueError) as exc:
        return [f"index.json: {exc}"]
    problems: list[str] = []
    for entry in index.get("manifests", []):
        manifest = _blob(layout, entry, seen, problems)
        if manifest is None:
            continue
        document = json.loads(manifest)
        for item in [document["config"], *document["layers"]]:
            _blob(layout, item, seen, problems)
    return problems


def _blob(
    layout: Path,
    descriptor: dict[str, Any],
    seen: dict[tuple[str, int, int], bytes],
    problems: list[str],
) -> bytes | None:
    algorithm, _, encoded = descriptor["digest"].partition(":")
    path = layout / "blobs" / algorithm / encoded
    try:
        st = path.stat()
    except FileNotFoundError:
        problems.append(f"missing blob {descriptor['digest']}")
        return None
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key in seen:
        return seen[key]
    data = path.read_bytes()
    if len(data) != descriptor["size"] or hashlib.new(algorithm, data).hexdigest() != encoded:
        problems.append(f"damaged blob {descriptor['digest']}")
        return None
    seen[key] = data if len(data) < (1 << 20) else b""
    return data


def judge(layout: Path, tags: list[str]) -> list[str]:
    """umoci lists the layout and skopeo reads each of ``tags``."""
    problems = []
    listed = subprocess.run(["umoci", "ls", "--layout", str(layout)], capture_output=True)
    if listed.returncode:
        problems.append(f"umoci ls: {listed.stderr.decode().strip()}")
    names = set(listed.stdout.decode().split())
    for tag in tags:
        if tag not in names:
            continue
        seen = subprocess.run(["skopeo", "inspect", f"oci:{layout}:{tag}"], capture_output=True)
        if seen.returncode:
            problems.append(f"skopeo inspect {tag}: {seen.stderr.decode().strip()}")
    return problems


def timed_build(bench: Bench) -> float:
    """Seconds one full build takes (the range the signals are spread over)."""
    times = []
    for number in range(2):
        started = time.monotonic()
        result = bench.run(bench.command(bench.context("timing"), f"timing{number}", "--no-cache"))
        if result.returncode:
            raise SystemExit(f"a plain build failed: {result.stderr.decode()}")
        times.append(time.monotonic() - started)
    return max(times)


def kill_trials(bench: Bench, count: int, span: float, sig: signal.Signals) -> dict[str, Any]:
    figures: dict[str, Any] = {"trials": count, "valid": 0, "clean": 0, "failures": []}
    if sig == signal.SIGINT:
        figures.update(exited_130=0, finished=0, one_line=0, python_startup=0)
    seen: dict[tuple[str, int, int], bytes] = {}
    for number in range(count):
        tag = f"{sig.name.lower()}{number}"
        extra = ["-o", f"oci-archive:{bench.archives / 'image.tar'}"]
        if number % 2:
            extra.append("--no-cache")
        process = bench.start(bench.command(bench.context("trial"), tag, *extra))
        time.sleep(bench.random.uniform(0, span))
        process.send_signal(sig)
        _, err = process.communicate()
        problems = layout_problems(bench.layout, seen) + judge(bench.layout, ["base", tag])
        if sig == signal.SIGINT:
            problems += _interrupt_problems(figures, process.returncode, err.decode())
            left = bench.temps()
        else:
            after = bench.run(bench.command(bench.context("trial"), "after", *extra))
            left = bench.temps()
            if after.returncode:
                problems.append(f"the build after the kill failed: {after.stderr.decode()}")
            gc = subprocess.run(["umoci", "gc", "--layout", str(bench.layout)], capture_output=True)
            if gc.returncode:
                problems.append(f"umoci gc: {gc.stderr.decode().strip()}")
        figures["valid"] += not [p for p in problems if "temp" not in p]
        figures["clean"] += not left
        if left:
            problems.append(f"temp files left: {left}")
        if problems:
            figures["failures"].append({"trial": number, "problems": problems})
    return figures


def _interrupt_problems(figures: dict[str, Any], code: int, err: str) -> list[str]:
    lines = err.strip().splitlines()
    if code == 0:
        figures["finished"] += 1
        figures["one_line"] += not lines
        return [f"a finished build printed {lines}"] if lines else []
    if outcome(signal.SIGINT, code, err) in BEFORE_BALE:
        # The signal came while the interpreter started, before bale's first
        # line: CPython's own message or a silent end, out of bale's reach.
        figures["python_startup"] += 1
        return []
    if code != 130:
        return [f"exit {code}: {err.strip()[-300:]}"]
    figures["exited_130"] += 1
    if lines != [INTERRUPTED]:
        return [f"not one line: {err.strip()[-300:]}"]
    figures["one_line"] += 1
    return []


def race_rounds(bench: Bench, rounds: int, writers: int) -> dict[str, Any]:
    figures: dict[str, Any] = {"rounds": rounds, "writers": writers, "kept_all": 0, "failures": []}
    seen: dict[tuple[str, int, int], bytes] = {}
    for number in range(rounds):
        commands = [
            bench.command(bench.context(f"writer{w}"), f"r{number}w{w}") for w in range(writers)
        ]
        with ThreadPoolExecutor(writers) as pool:
            results = list(pool.map(bench.run, commands))
        index = json.loads((bench.layout / "index.json").read_bytes())
        names = {
            m.get("annotations", {}).get("org.opencontainers.image.ref.name"): m["digest"]
            for m in index["manifests"]
        }
        problems = layout_problems(bench.layout, seen)
        for w, result in enumerate(results):
            tag, printed = f"r{number}w{w}", result.stdout.decode().strip()
            if result.returncode:
                problems.append(f"{tag} failed: {result.stderr.decode().strip()}")
            elif names.get(tag) != printed:
                problems.append(f"{tag} names {names.get(tag)}, its build printed {printed}")
        figures["kept_all"] += not problems
        if problems:
            figures["failures"].append({"round": number, "problems": problems})
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=300)
    parser.add_argument("--sigints", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    for tool in ("umoci", "skopeo"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (scripts/test.sh installs it)")
    with tempfile.TemporaryDirectory(prefix="crash-bench-") as work:
        bench = Bench(Path(work), args.seed)
        base = bench.run(bench.command(bench.context("base"), "base"))
        if base.returncode:
            raise SystemExit(f"the first build failed: {base.stderr.decode()}")
        span = timed_build(bench) * 1.1
        figures = {
            "build_seconds": round(span / 1.1, 2),
            "kill": kill_trials(bench, args.kills, span, signal.SIGKILL),
            "sigint": kill_trials(bench, args.sigints, span, signal.SIGINT),
            "race": race_rounds(bench, args.rounds, args.writers),
        }
    kill, sigint, race = figures["kill"], figures["sigint"], figures["race"]
    print(f"SIGKILL: {kill['valid']}/{kill['trials']} valid, {kill['clean']} clean after a build")
    print(
        f"SIGINT: {sigint['valid']}/{sigint['trials']} valid, {sigint['clean']} clean, "
        f"{sigint['exited_130']} exited 130 and {sigint['finished']} finished, "
        f"{sigint['one_line']} with one line or none; {sigint['python_startup']} came "
        "during the interpreter's own start-up"
    )
    print(f"race: {race['kept_all']}/{race['rounds']} rounds kept all {race['writers']} tags")
    if args.json:
        print(json.dumps(figures, indent=2))
    failed = kill["failures"] or sigint["failures"] or race["failures"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
