"""What the SBOM and provenance cost: cold builds with and without them, side by side.

    python3 benchmarks/sbom.py [--work DIR] [--debian ROOT] [--repeat N]

Two cases, each built cold (empty layer cache, new layout) and then warm (the
cache that cold build left, a new layout), with the defaults (SPDX SBOM and
provenance) and with ``--no-sbom --no-provenance``, interleaved, the median of
--repeat rounds (5 by default):

  stdlib  one layer: the running interpreter's standard library (site-packages
          excluded), the corpus of benchmarks/run.py; bale hashes every file
  debian  a one-layer Debian base (a debootstrapped tree: --debian ROOT, by
          default the test suite's /var/tmp/bale-tests/bookworm-minbase-python3)
          and one small layer on it; the SBOM reads the whole base layer

The extra time is given as a ratio to the build without them. Not a test:
nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import REPO, machine, prepare, timed

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


def builds(spec: Path, out: Path, extra: list[str]) -> tuple[float, float]:
    """Wall seconds of a cold build and of a warm one after it."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "BALE_CACHE_DIR": str(out) + "-cache"}
    shutil.rmtree(env["BALE_CACHE_DIR"], ignore_errors=True)
    command = [sys.executable, "-m", "builder.cli.entry", "build", "-q", "-f", str(spec), *extra]
    walls = []
    for _ in ("cold", "warm"):
        shutil.rmtree(out, ignore_errors=True)
        wall, _, _ = timed([*command, "-o", f"oci:{out}"], env)
        walls.append(wall)
    return walls[0], walls[1]


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
    args = parser.parse_args()
    print(machine(), flush=True)
    tree = prepare(args.work, "stdlib", quick=False)
    (tree.parent / "sbom.toml").write_text(STDLIB)
    cases = {"stdlib": tree.parent / "sbom.toml"}
    if args.debian.is_dir():
        cases["debian"] = debian_spec(args.work, args.debian)
    print("| case | build | without s | with SBOM + provenance s | extra / build |")
    print("|---|---|---:|---:|---:|")
    for case, spec in cases.items():
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(max(1, args.repeat)):
            for name, extra in VARIANTS.items():
                cold, warm = builds(spec, spec.parent / "sbom-out", extra)
                times.setdefault((name, "cold"), []).append(cold)
                times.setdefault((name, "warm"), []).append(warm)
        for phase in ("cold", "warm"):
            plain = statistics.median(times[("without", phase)])
            full = statistics.median(times[("with SBOM + provenance", phase)])
            print(
                f"| {case} | {phase} | {plain:.2f} | {full:.2f} | {(full - plain) / plain:+.0%} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
