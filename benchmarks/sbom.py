"""What the SBOM and provenance cost: cold builds with and without them, side by side.

    python3 benchmarks/sbom.py [--work DIR] [--debian ROOT] [--repeat N] [--cases stdlib,debian]
                               [--repo DIR]...

Two cases, each built cold (empty layer cache, new layout) and then warm (the
cache that cold build left, a new layout), with the defaults (SPDX SBOM and
provenance) and with ``--no-sbom --no-provenance``, interleaved, the median of
--repeat rounds (5 by default):

  stdlib  one layer: the running interpreter's standard library (site-packages
          excluded), the corpus of benchmarks/run.py; bale hashes every file
  debian  a one-layer Debian base (a debootstrapped tree: --debian ROOT, by
          default the test suite's /var/tmp/bale-tests/bookworm-minbase-python3)
          and one small layer on it; the SBOM reads the whole base layer

Each build's wall time and CPU time (user + system of the child) are given,
and the extra of each as a ratio to the build without them, with the load
average before and after the run. ``--repo DIR`` runs the bale of another
checkout; given several times, each round runs every checkout in turn (to
compare a branch with main under the same load). Not a test: nothing here
asserts a time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import REPO, machine, prepare

STDLIB = """[image]
created = "2024-01-01T00:00:00Z"
compression = "gzip"
[[layers]]
name = "corpus"
files = [{ src = "tree/", dst = "/corpus/" }]
"""
DEBIAN_BASE = """[image]
tags = ["deb"]
created = "2024-01-01T00:00:00Z"
compression = "gzip"
sbom = false
provenance = false
[[layers]]
name = "debian"
tar = "rootfs.tar"
"""
DEBIAN_TOP = """[image]
base = "oci:{base}:deb"
created = "2024-01-01T00:00:00Z"
[[layers]]
name = "app"
content = [{{ dst = "/srv/app.txt", text = "app" }}]
"""
VARIANTS = {"with SBOM + provenance": [], "without": ["--no-sbom", "--no-provenance"]}
PHASES = ("cold", "warm")
Times = tuple[float, float]


def timed(command: list[str], env: dict[str, str], cwd: Path) -> Times:
    """Wall seconds and CPU seconds (user + system) of the command's process tree.

    ``cwd`` is the checkout whose bale runs: ``python -m`` imports from the
    working directory before PYTHONPATH.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=env, cwd=cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"failed: {' '.join(command)}")
    return wall, usage.ru_utime + usage.ru_stime


def builds(spec: Path, out: Path, extra: list[str], repo: Path) -> list[Times]:
    """Wall and CPU seconds of a cold build and of a warm one after it."""
    env = {**os.environ, "PYTHONPATH": str(repo), "BALE_CACHE_DIR": str(out) + "-cache"}
    shutil.rmtree(env["BALE_CACHE_DIR"], ignore_errors=True)
    command = [sys.executable, "-m", "builder.cli.entry", "build", "-q", "-f", str(spec), *extra]
    found = []
    for _ in PHASES:
        shutil.rmtree(out, ignore_errors=True)
        found.append(timed([*command, "-o", f"oci:{out}"], env, repo))
    return found


def row(case: str, phase: str, plain: list[Times], full: list[Times]) -> str:
    """One table row: medians of wall and CPU, without and with, and the extras."""
    wall0, wall1 = (statistics.median(t[0] for t in times) for times in (plain, full))
    cpu0, cpu1 = (statistics.median(t[1] for t in times) for times in (plain, full))
    return (
        f"| {case} | {phase} | {wall0:.2f} | {cpu0:.2f} | {wall1:.2f} | {cpu1:.2f} "
        f"| {(wall1 - wall0) / wall0:+.0%} | {(cpu1 - cpu0) / cpu0:+.0%} |"
    )


def debian_spec(work: Path, root: Path) -> Path:
    """A base layout of ``root`` (made once) and the image.toml of a layer on it."""
    base_dir = work / "debian"
    base = base_dir / "base"
    if not base.exists():
        ctx = base_dir / "base-ctx"
        ctx.mkdir(parents=True, exist_ok=True)
        tar = ["tar", "-C", str(root), "--exclude=./dev/*", "-cf", str(ctx / "rootfs.tar"), "."]
        subprocess.run(tar, check=True)
        (ctx / "image.toml").write_text(DEBIAN_BASE)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        command = [sys.executable, "-m", "builder.cli.entry", "build", "-q", "--no-cache"]
        command += ["-f", str(ctx / "image.toml"), "-o", f"oci:{base}"]
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
        shutil.rmtree(ctx)
    (base_dir / "image.toml").write_text(DEBIAN_TOP.format(base=base))
    return base_dir / "image.toml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/bale-bench"))
    parser.add_argument(
        "--debian", type=Path, default=Path("/var/tmp/bale-tests/bookworm-minbase-python3")
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cases", default="stdlib,debian")
    parser.add_argument("--repo", type=Path, action="append")
    args = parser.parse_args()
    args.work = args.work.resolve()
    repos = [repo.resolve() for repo in args.repo or [REPO]]
    print(machine(), flush=True)
    cases = {}
    for case in args.cases.split(","):
        if case == "stdlib":
            tree = prepare(args.work, "stdlib", quick=False)
            (tree.parent / "sbom.toml").write_text(STDLIB)
            cases["stdlib"] = tree.parent / "sbom.toml"
        elif case == "debian" and args.debian.is_dir():
            cases["debian"] = debian_spec(args.work, args.debian)
    print("| case | build | without s | CPU s | with SBOM + provenance s | CPU s | extra | CPU |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for case, spec in cases.items():
        times: dict[tuple[Path, str, str], list[Times]] = {}
        for _ in range(max(1, args.repeat)):
            for repo in repos:
                for name, extra in VARIANTS.items():
                    found = builds(spec, spec.parent / "sbom-out", extra, repo)
                    for phase, measured in zip(PHASES, found, strict=True):
                        times.setdefault((repo, name, phase), []).append(measured)
        for repo in repos:
            label = case if len(repos) == 1 else f"{case}, {repo}"
            for phase in PHASES:
                plain = times[(repo, "without", phase)]
                full = times[(repo, "with SBOM + provenance", phase)]
                print(row(label, phase, plain, full), flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} at the end", flush=True)


if __name__ == "__main__":
    main()
