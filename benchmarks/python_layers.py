"""Benchmark a Python dependency layer for two platforms against ``pip install --target``.

    python3 benchmarks/python_layers.py [--work DIR] [--repeat N]

The lock is a FastAPI/uvicorn/SQLAlchemy stack (about 30 distributions, several
with C extensions), resolved once by ``pip download`` for CPython 3.11 on
manylinux x86_64 and aarch64 (that download from the public index is timed and
reported apart, and reused on later runs). A local simple index on 127.0.0.1
then serves the files, so the figures below hold no network time:

- bale cold: empty BALE_CACHE_DIR, the layer for linux/amd64 and linux/arm64
  (local downloads, hash checks, installs, layer compression);
- bale warm: the same build again, nothing changed;
- pip --target: ``pip install --no-deps --require-hashes --target`` of the
  same lock on the host (one platform only), without and with pip's cache.

The base is a small two-platform image that only looks like Debian with
Python 3.11, so no base layer reading is counted. Not a test: nothing
asserts a time.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.pyindex import SimpleIndex, sha256  # noqa: E402

STACK = ("fastapi==0.115.0", "uvicorn[standard]==0.30.6", "sqlalchemy==2.0.35", "jinja2==3.1.4")
STACK += ("httpx==0.27.2", "pyyaml==6.0.2", "orjson==3.10.7", "python-multipart==0.0.9")
MACHINES = ("x86_64", "aarch64")
SKELETON = """[image]
tags = ["skel"]
platforms = ["linux/amd64", "linux/arm64"]
[[layers]]
name = "skeleton"
symlinks = [{ path = "/usr/bin/python3", target = "python3.11" }]
dirs = [{ path = "/usr/lib/python3/dist-packages" }]
content = [
  { dst = "/usr/bin/python3.11", text = "stand-in", mode = 0o755 },
  { dst = "/var/lib/dpkg/status", text = "Package: libc6\\nVersion: 2.36-9\\n" },
]
"""
IMAGE = """[image]
base = "oci:{base}:skel"
platforms = ["linux/amd64", "linux/arm64"]
created = "2024-01-01T00:00:00Z"
[[layers]]
name = "deps"
python = {{ requirements = "requirements.txt", index_url = "{index}" }}
"""


CPU: dict[str, list[float]] = {}
LOAD: list[float] = []


def run(command: list[str], env: dict[str, str] | None = None, label: str = "") -> float:
    """Wall seconds of ``command``; its CPU seconds (user + sys) go to CPU[label]."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if label:
        CPU.setdefault(label, []).append(cpu)
    return wall


def download(work: Path) -> tuple[Path, float]:
    """The wheels of the stack for both machines (once; the time of that first download)."""
    wheels = work / "wheels"
    done = wheels / ".complete"
    if done.exists():
        return wheels, float(done.read_text())
    wheels.mkdir(parents=True, exist_ok=True)
    elapsed = 0.0
    for machine in MACHINES:
        target = ["--python-version", "3.11", "--implementation", "cp"]
        for tag in ("manylinux2014", "manylinux_2_28", "manylinux_2_34"):
            target += ["--platform", f"{tag}_{machine}"]
        command = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:"]
        elapsed += run([*command, *target, "--abi", "cp311", "-d", str(wheels), *STACK])
    done.write_text(f"{elapsed:.2f}")
    return wheels, elapsed


def lock(wheels: Path, out: Path) -> int:
    """A hash-pinned requirements.txt of every downloaded distribution; returns its size."""
    from packaging.utils import parse_wheel_filename

    pins: dict[tuple[str, str], list[str]] = {}
    for path in sorted(wheels.glob("*.whl")):
        name, version, _, _ = parse_wheel_filename(path.name)
        pins.setdefault((str(name), str(version)), []).append(sha256(path))
    lines = [
        f"{name}=={version} " + " ".join(f"--hash=sha256:{h}" for h in hashes)
        for (name, version), hashes in sorted(pins.items())
    ]
    out.write_text("\n".join(lines) + "\n")
    return len(pins)


def bale(ctx: Path, cache: Path, out: Path, label: str) -> float:
    env = {**os.environ, "BALE_CACHE_DIR": str(cache), "PIP_CONFIG_FILE": os.devnull}
    bale_cmd = [sys.executable, "-m", "builder.cli.entry", "build", "-f", str(ctx / "image.toml")]
    return run([*bale_cmd, "-o", f"oci:{out}"], env, label)


def pip_target(ctx: Path, index: str, target: Path, cache: Path | None, label: str = "") -> float:
    shutil.rmtree(target, ignore_errors=True)
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--require-hashes"]
    command += ["--index-url", index, "--target", str(target), "-r", str(ctx / "requirements.txt")]
    command += ["--cache-dir", str(cache)] if cache else ["--no-cache-dir"]
    return run(command, env, label)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/bale-bench-python"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work: Path = args.work
    wheels, fetched = download(work)
    ctx = work / "ctx"
    ctx.mkdir(exist_ok=True)
    count = lock(wheels, ctx / "requirements.txt")
    (work / "skeleton.toml").write_text(SKELETON)
    base = work / "base"
    if not base.exists():
        skeleton = ["build", "-f", str(work / "skeleton.toml"), "-o", f"oci:{base}"]
        run([sys.executable, "-m", "builder.cli.entry", *skeleton])
    times: dict[str, list[float]] = {}
    LOAD.append(os.getloadavg()[0])
    with SimpleIndex(wheels).running() as index:
        (ctx / "image.toml").write_text(IMAGE.format(base=base, index=index.url))
        for _ in range(args.repeat):
            cache, out = work / "cache", work / "out"
            shutil.rmtree(cache, ignore_errors=True)
            shutil.rmtree(out, ignore_errors=True)
            for label in ("bale cold, 2 platforms", "bale warm, 2 platforms"):
                times.setdefault(label, []).append(bale(ctx, cache, out, label))
            pip_cache = work / "pip-cache"
            shutil.rmtree(pip_cache, ignore_errors=True)
            target = work / "target"
            label = "pip --target, no cache"
            times.setdefault(label, []).append(pip_target(ctx, index.url, target, None, label))
            pip_target(ctx, index.url, target, pip_cache)
            label = "pip --target, warm cache"
            times.setdefault(label, []).append(pip_target(ctx, index.url, target, pip_cache, label))
    files = len(list(wheels.glob("*.whl")))
    print(f"{count} distributions, {files} wheels; first download from PyPI {fetched:.1f} s")
    machine = platform.processor() or platform.machine()
    print(f"{machine}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"load average before: {LOAD[0]:.1f}")
    print("| build | wall s (median) | CPU s (median) |\n|---|---:|---:|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.2f} | {statistics.median(CPU[name]):.2f} |")


if __name__ == "__main__":
    main()
