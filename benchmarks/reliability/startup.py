"""Signals during start-up: SIGINT and SIGTERM sent at fixed delays after bale starts.

    python benchmarks/reliability/startup.py [--max-ms 300] [--step-ms 2] [--repeat 1]

Starts the ``bale`` program (the console script beside this Python, or
``--bale PATH``) on a small build, sends the signal after each delay from 0
to ``--max-ms`` and sorts what happened:

- ``one_line``: exit 130 (SIGINT) or 143 (SIGTERM) with exactly bale's line;
- ``finished``: exit 0 and nothing on stderr (the build was already done);
- ``silent``: killed by the signal with nothing printed (it came before the
  interpreter installed its own SIGINT handler, or SIGTERM before bale's);
- ``python_startup``: CPython's own start-up messages: "Fatal Python error:
  init_..." (such as init_import_site or init_sys_streams), a bare
  "KeyboardInterrupt" with no traceback (no Python code was running yet),
  "Error processing line N of X.pth" (site reports the interrupt and goes
  on, so bale may even finish) or "failed to set __main__.__loader__";
- ``python_script``: CPython's KeyboardInterrupt traceback from the console
  script's own imports (``re``, the builder package), every frame of bale at
  module level or in ``signals.hold`` itself: before bale holds the signals;
- ``bale``: anything else (a traceback through a function of bale, two lines,
  a wrong exit code): a failure of bale's handling.

The sweep goes on past ``--max-ms`` until ``--settle`` runs in a row have
ended with bale's line or finished, so a slow machine is swept as far as
its start-up lasts. Prints one line per outcome with the delays it was seen
at, and, with ``--json``, the figures as JSON; exits 1 if any run was ``bale``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
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


FRAME = re.compile(r'File "([^"]*)", line \d+, in (\S+)')
SETTLED = ("one_line", "finished")
# What CPython prints when a signal lands in its own start-up: importing site,
# a .pth file's code (site reports it and goes on), preparing __main__.
STARTUP_MESSAGES = (
    "Fatal Python error: init_",
    "Error processing line",
    "failed to set __main__.__loader__",
)


def outcome(sig: signal.Signals, code: int, err: str) -> str:
    """Which of the five outcomes one run had."""
    if code == 128 + sig and err == LINES[sig] + "\n":
        return "one_line"
    if code == 0 and not err:
        return "finished"
    if code == -sig and not err:
        return "silent"
    if any(text in err for text in STARTUP_MESSAGES) or err.strip() == "KeyboardInterrupt":
        return "python_startup"
    frames = FRAME.findall(err)
    # Module-level code, and ``hold`` until its first call returns, run before bale's
    # handler is in place.
    in_bale = [f for path, f in frames if "/builder/" in path and f not in ("<module>", "hold")]
    if frames and "KeyboardInterrupt" in err and not in_bale:
        return "python_script"
    return "bale"


def trial(command: list[str], sig: signal.Signals, delay: float, env: dict[str, str]) -> str:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(delay)
    process.send_signal(sig)
    _, err = process.communicate()
    text = err.decode(errors="replace")
    found = outcome(sig, process.returncode, text)
    if found == "bale":
        print(f"{sig.name} at {delay * 1000:.1f} ms: exit {process.returncode}: {text[-1500:]}")
    return found


def sweep(
    command: list[str], sig: signal.Signals, sweep_args: argparse.Namespace, env: dict[str, str]
) -> dict[str, list[float]]:
    """The delays (in ms) at which each outcome was seen."""
    seen: dict[str, list[float]] = {}
    settled, step = 0, 0
    while step * sweep_args.step_ms <= sweep_args.max_ms or settled < sweep_args.settle:
        delay = step * sweep_args.step_ms
        for _ in range(sweep_args.repeat):
            found = trial(command, sig, delay / 1000, env)
            seen.setdefault(found, []).append(round(delay, 1))
            settled = settled + 1 if found in SETTLED else 0
        step += 1
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
    parser.add_argument("--settle", type=int, default=5, help="settled runs that end a sweep")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {"bale": args.bale}
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as work:
        context = Path(work) / "ctx"
        context.mkdir()
        (context / "image.toml").write_text(IMAGE_TOML)
        env = {**os.environ, "BALE_CACHE_DIR": f"{work}/cache", "TMPDIR": work}
        env.pop("CI", None)
        command = [args.bale, "build", "-q", "--no-cache", "-f", str(context / "image.toml")]
        command += ["-o", f"oci:{work}/layout:t"]
        for sig in (signal.SIGINT, signal.SIGTERM):
            figures[sig.name] = seen = sweep(command, sig, args, env)
            for name, at in sorted(seen.items()):
                print(f"{sig.name}: {name}: {len(at)} (at {min(at)} to {max(at)} ms)")
    if args.json:
        print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    found = main()
    sys.exit(1 if any("bale" in found[s.name] for s in LINES) else 0)
