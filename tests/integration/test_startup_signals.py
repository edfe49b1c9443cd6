"""SIGINT and SIGTERM swept over bale's start-up (benchmarks/reliability/startup.py)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.reliability.startup import main, outcome
from tests.conftest import require_tool

BESIDE = Path(sys.executable).with_name("bale")
ENTRY_FRAME = '  File "/x/builder/cli/entry.py", line 30, in run\n'
SCRIPT_FRAME = '  File "/x/bin/bale", line 4, in <module>\n'
HOLD_FRAME = '  File "/x/builder/cli/signals.py", line 40, in hold\n'


def test_the_outcomes_are_told_apart() -> None:
    line = "bale: interrupted; outputs were left as they were\n"
    trace = "Traceback (most recent call last):\n"
    assert outcome(signal.SIGINT, 130, line) == "one_line"
    assert outcome(signal.SIGINT, 130, line + line) == "bale"
    assert outcome(signal.SIGTERM, 143, line) == "bale"
    assert outcome(signal.SIGINT, 0, "") == "finished"
    assert outcome(signal.SIGINT, -2, "") == "silent"
    assert outcome(signal.SIGINT, -2, trace + SCRIPT_FRAME + "KeyboardInterrupt\n") == (
        "python_script"
    )
    assert outcome(signal.SIGINT, -2, trace + ENTRY_FRAME + "KeyboardInterrupt\n") == "bale"
    held = trace + SCRIPT_FRAME + HOLD_FRAME + "KeyboardInterrupt\n"
    assert outcome(signal.SIGINT, -2, held) == "python_script"
    fatal = "Fatal Python error: init_import_site: Failed to import the site module\n"
    assert outcome(signal.SIGINT, 1, fatal) == "python_startup"
    assert outcome(signal.SIGINT, 1, "KeyboardInterrupt\n") == "python_startup"
    loader = "python: failed to set __main__.__loader__\n" + trace
    assert outcome(signal.SIGINT, 1, loader + "KeyboardInterrupt: \n") == "python_startup"


def test_no_signal_during_start_up_gets_more_than_bale_s_line() -> None:
    """Every run swept from 0 ms until bale settles: one line, finished, or before bale ran."""
    program = str(BESIDE) if BESIDE.exists() else shutil.which("bale")
    if program is None:
        require_tool("bale")
    argv = ["--bale", str(program), "--max-ms", "100", "--step-ms", "5", "--settle", "3"]
    figures = main(argv)
    for name in ("SIGINT", "SIGTERM"):
        seen = figures[name]
        assert "bale" not in seen, (name, seen["bale"])
        assert len(seen.get("one_line", [])) + len(seen.get("finished", [])) >= 3
    assert "python_script" not in figures["SIGTERM"]


@pytest.mark.parametrize(
    ("sig", "code", "word"), [("SIGINT", 130, "interrupted"), ("SIGTERM", 143, "terminated")]
)
def test_a_signal_between_the_entry_module_and_run_is_held_then_reported(
    sig: str, code: int, word: str, tmp_path: Path
) -> None:
    """It used to give a KeyboardInterrupt traceback (SIGINT) or a silent death (SIGTERM)."""
    program = (
        "import os, signal, sys\n"
        "import builder.cli.entry as entry\n"
        f"os.kill(os.getpid(), signal.{sig})\n"
        "sys.argv = ['bale', '--version']\n"
        "entry.run()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert (result.returncode, result.stderr) == (
        code,
        f"bale: {word}; outputs were left as they were\n",
    )
    assert result.stdout == ""


def test_a_signal_whose_exception_was_lost_still_stops_bale(tmp_path: Path) -> None:
    """CPython can drop a handler's exception while it compiles a module (no .pyc): the
    import went on and the whole build ran, exiting 0, after a SIGTERM."""
    program = (
        "import os, signal, sys, time\n"
        "import builder.cli.entry as entry\n"
        "from builder.cli import signals\n"
        "signals.install()\n"
        "try:\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(5)\n"
        "except signals.Terminated:\n"
        "    pass\n"
        "sys.argv = ['bale', '--version']\n"
        "entry.run()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert (result.returncode, result.stderr, result.stdout) == (
        143,
        "bale: terminated; outputs were left as they were\n",
        "",
    )


def test_an_interrupt_wrapped_by_class_creation_still_ends_in_one_line(tmp_path: Path) -> None:
    """A SIGINT inside ``__set_name__`` (``import platform``) reaches bale as a RuntimeError
    caused by the KeyboardInterrupt; it used to print that traceback and exit 1."""
    program = (
        "import sys\n"
        "import builder.cli.entry as entry\n"
        "class Descriptor:\n"
        "    def __set_name__(self, owner, name):\n"
        "        raise KeyboardInterrupt\n"
        "def import_that_makes_a_class():\n"
        "    class Made:\n"
        "        field = Descriptor()\n"
        "entry._replay = import_that_makes_a_class\n"
        "sys.argv = ['bale', '--version']\n"
        "entry.run()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert (result.returncode, result.stderr) == (
        130,
        "bale: interrupted; outputs were left as they were\n",
    )
