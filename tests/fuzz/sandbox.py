"""Run one bale command on hostile input, bounded, and judge how it ended.

Each case gets a fresh directory ``ROOT`` with ``ROOT/ctx`` (the build context,
where the command runs), ``ROOT/out`` (an output that already exists) and
``ROOT/outside`` (files a hostile input may try to reach). The command runs in
a forked child of this process (``builder`` imported once, so thousands of
cases fit in minutes) under RLIMIT_AS, RLIMIT_FSIZE and a wall-clock timeout;
``exec=True`` runs the real ``bale`` program instead.

A case passes when bale exits 0 (only where the case allows it), or 1 (2 for
usage) with exactly one ``bale: error:`` line and no traceback, without
touching anything outside ``out``, ``tmp`` and ``cache``, and, when it failed,
leaving ``out`` byte for byte as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MEMORY_LIMIT = 2 << 30
FILE_LIMIT = 1 << 30
TIMEOUT = 60.0
_WRITABLE = ("out", "tmp", "cache")
_CRASH = 99

Prepare = Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    """A command and how to lay out its directory; ``ok_allowed``: exit 0 is a pass."""

    name: str
    argv: tuple[str, ...]
    prepare: Prepare
    ok_allowed: bool = False
    # ``bale diff`` exits 1 listing differences: a clean outcome where allowed.
    differs_allowed: bool = False
    env: tuple[tuple[str, str], ...] = ()


@dataclass
class Result:
    name: str
    # ok | error | differs: passed; accepted (exit 0 where an error was due), traceback,
    # hang, crash (killed by a signal), noisy (not one error line), escape, clobbered
    verdict: str
    code: int | None
    stderr: str
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.verdict in ("ok", "error", "differs")


def _snapshot(root: Path, skip: Sequence[str]) -> dict[str, str]:
    """Path → a fingerprint of type, size and content (symlinks by target), under root."""
    seen: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel.split(os.sep)[0] in skip:
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            key = os.path.relpath(path, root)
            if key.split(os.sep)[0] in skip:
                continue
            seen[key] = _fingerprint(path)
    return seen


def _fingerprint(path: str) -> str:
    st = os.lstat(path)
    if os.path.islink(path):
        return "link:" + os.readlink(path)
    if os.path.isdir(path):
        return f"dir:{st.st_mode:o}"
    if not os.path.isfile(path):
        return f"special:{st.st_mode:o}"
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return f"file:{st.st_mode:o}:{digest.hexdigest()}"


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _child(case: Case, root: Path) -> None:
    """In the forked child: limits, streams, environment, then bale's ``main``."""
    code = _CRASH
    try:
        os.setsid()
        _limit()
        err = os.open(root / "stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        out = os.open(root / "stdout", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        # Under pytest, sys.stdout and sys.stderr are its capture objects: rebind them.
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        os.chdir(root / "ctx")
        os.environ.update(_environment(case, root))
        from builder.cli.main import main

        code = main(list(case.argv))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 2
    except BaseException:
        traceback.print_exc()
        code = _CRASH
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _environment(case: Case, root: Path) -> dict[str, str]:
    return {
        "TMPDIR": str(root / "tmp"),
        "BALE_CACHE_DIR": str(root / "cache"),
        "HOME": str(root / "tmp"),
        # Any registry request fails at once: no network in a fuzz run.
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "",
        "DOCKER_CONFIG": str(root / "tmp"),
        "REGISTRY_AUTH_FILE": str(root / "tmp" / "auth.json"),
        "CI": "",
        **dict(case.env),
    }


def _wait(pid: int, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _exec(case: Case, root: Path, timeout: float) -> int | None:
    env = {**os.environ, **_environment(case, root)}
    with open(root / "stderr", "wb") as err, open(root / "stdout", "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "builder.cli.main", *case.argv],
            cwd=root / "ctx",
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            preexec_fn=_limit,
            start_new_session=True,
        )
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return None


def run(case: Case, *, timeout: float = TIMEOUT, exec_: bool = False, keep: bool = False) -> Result:
    """Lay out the case, run it bounded, and judge the outcome."""
    with tempfile.TemporaryDirectory(prefix="bale-fuzz-") as tmp:
        root = Path(tmp)
        for name in ("ctx", "out", "outside", "tmp", "cache"):
            (root / name).mkdir()
        case.prepare(root)
        before = _snapshot(root, _WRITABLE)
        output = _snapshot(root / "out", ())
        start = time.monotonic()
        if exec_:
            code = _exec(case, root, timeout)
        else:
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _child(case, root)
            code = _wait(pid, timeout)
        seconds = time.monotonic() - start
        stderr = (root / "stderr").read_text("utf-8", "replace")
        result = _judge(case, code, stderr, seconds)
        (root / "stderr").unlink()
        (root / "stdout").unlink()
        escaped = _diff(before, _snapshot(root, _WRITABLE))
        if escaped and result.passed:
            result.verdict, result.notes = "escape", escaped
        if code not in (0, None) and result.passed and _snapshot(root / "out", ()) != output:
            result.verdict = "clobbered"
        if keep:
            os.system(f"cp -a {tmp} {tmp}-kept")
        return result


def _diff(before: dict[str, str], after: dict[str, str]) -> list[str]:
    changed = [k for k in before.keys() | after.keys() if before.get(k) != after.get(k)]
    return sorted(changed)[:5]


def _judge(case: Case, code: int | None, stderr: str, seconds: float) -> Result:
    def result(verdict: str) -> Result:
        return Result(case.name, verdict, code, stderr, seconds)

    if code is None:
        return result("hang")
    if "Traceback (most recent call last)" in stderr or code == _CRASH:
        return result("traceback")
    if code == 0:
        return result("ok" if case.ok_allowed else "accepted")
    if code not in (1, 2):
        return result("crash")
    errors = [line for line in stderr.splitlines() if line.startswith("bale: error:")]
    if not errors and code == 1 and case.differs_allowed:
        return result("differs")
    if len(errors) != 1:
        return result("noisy")
    return result("error")
