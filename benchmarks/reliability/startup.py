"""Signals during start-up: SIGINT and SIGTERM sent at fixed delays after bale starts.

    python benchmarks/reliability/startup.py [--max-ms 300] [--step-ms 2] [--repeat 1]

Starts the ``bale`` program (the console script beside this Python, or
``--bale PATH``) on a small build, sends the signal after each delay from 0
to ``--max-ms`` and sorts what happened:

- ``one_line``: exit 130 (SIGINT) or 143 (SIGTERM) with exactly bale's line;
- ``finished``: exit 0 and nothing on stderr (the build was already done);
- ``silent``: killed by the signal with nothing printed (it came before the
  interpreter installed its own SIGINT handler, or SIGTERM before bale's);
- ``python``: anything else, such as CPython's KeyboardInterrupt traceback
  or "Fatal Python error: init_import_site" (the window out of bale's reach).

Prints one line per outcome with the delays it was seen at, and, with
``--json``, the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

LINES = {
    signal.SIGINT: "bale: interrupted; outputs were left as they were",
    signal.SIGTERM: "bale: terminated; outputs were left as they were",
}
IMAGE_TOML = """\
[image]
created = "2024-01-01T00:00:00Z"

[[layers]]
name = "data"
content = [{ dst = "/hello.txt", text = "hello" }]
"""


def outcome(sig: signal.Signals, code: int, err: str) -> str:
    """Which of the four outcomes one run had."""
    if code == 128 + sig and err == LINES[sig] + "\n":
        return "one_line"
    if code == 0 and not err:
        return "finished"
    if code == -sig and not err:
        return "silent"
    return "python"


def trial(command: list[str], sig: signal.Signals, delay: float, env: dict[str, str]) -> str:
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    time.sleep(delay)
    process.send_signal(sig)
    _, err = process.communicate()
    return outcome(sig, process.returncode, err.decode(errors="replace"))


def sweep(
    command: list[str], sig: signal.Signals, delays: list[float], env: dict[str, str]
) -> dict[str, list[float]]:
    """The delays (in ms) at which each outcome was seen."""
    seen: dict[str, list[float]] = {}
    for delay in delays:
        seen.setdefault(trial(command, sig, delay, env), []).append(round(delay * 1000, 1))
    return seen


def _default_bale() -> str:
    beside = Path(sys.executable).with_name("bale")
    return str(beside) if beside.exists() else "bale"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bale", default=_default_bale(), help="the program to start")
    parser.add_argument("--max-ms", type=float, default=300)
    parser.add_argument("--step-ms", type=float, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="runs at each delay")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    steps = int(args.max_ms / args.step_ms) + 1
    delays = [i * args.step_ms / 1000 for i in range(steps) for _ in range(args.repeat)]
    figures: dict[str, Any] = {"bale": args.bale, "trials_per_signal": len(delays)}
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as work:
        context = Path(work) / "ctx"
        context.mkdir()
        (context / "image.toml").write_text(IMAGE_TOML)
        env = {**os.environ, "BALE_CACHE_DIR": f"{work}/cache", "TMPDIR": work}
        env.pop("CI", None)
        command = [args.bale, "build", "-q", "--no-cache", "-f", str(context / "image.toml")]
        command += ["-o", f"oci:{work}/layout:t"]
        for sig in (signal.SIGINT, signal.SIGTERM):
            figures[sig.name] = seen = sweep(command, sig, delays, env)
            for name, at in sorted(seen.items()):
                print(f"{sig.name}: {name}: {len(at)} (at {min(at)}–{max(at)} ms)")
    if args.json:
        print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
