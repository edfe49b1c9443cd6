"""The no-change rebuild, answered from stat data alone before bale's modules load.

After a ``bale build`` whose every layer came from the local cache, into OCI
layouts only, from a scratch image without tarball imports, registry caches
or a signing key, bale records (``<cache>/rebuilds/<key>.json``) the stat data of every
path under the build context (the outputs excepted) taken *before* that build
and checked again after it, the stat data of the files it left in each
layout, and what it printed. ``key`` hashes bale's version, the arguments,
the working directory and the environment variables a build reads (CI ones included).

The next identical command lstat-s the same paths; if every one matches
(type, mode, size, mtime, ctime, inode, device, and no path added or
removed), nothing a stat check can vouch for has changed and the recorded
output is printed again, with no layer, layout or cache file opened. Stat
data changed within ``RACY_NS`` of the recording is never recorded (git's
"racily clean" problem). Only the standard library is imported here.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence

from builder import __version__
from builder.cachedir import cache_root

RACY_NS = 2_000_000_000
ENVIRONMENT = (
    "SOURCE_DATE_EPOCH",
    "BALE_CACHE_DIR",
    "BALE_CACHE_FROM",
    "BALE_CACHE_TO",
    "BALE_CACHE_MAX_ENTRIES",
    "GITHUB_OUTPUT",
)
# Provenance reads GitHub Actions' and GitLab CI's variables (builder/supply/ci.py).
CI_PREFIXES = ("GITHUB_", "GITLAB_", "CI_", "RUNNER_")
Stamp = list[int]
# A context this large is walked by no build that stays fast: not worth recording.
MAX_PATHS = 200_000
# What the recorded build printed: (stdout, stderr). A tuple, not a dataclass:
# importing dataclasses would cost this path a third of its time.
Replay = tuple[str, str]


def key(argv: Sequence[str], cwd: str, env: Mapping[str, str]) -> str:
    """The record name of one command: version, arguments, directory and environment
    (the variables a build reads, and every CI variable: provenance records some)."""
    wanted = {name: env.get(name, "") for name in ENVIRONMENT}
    wanted.update((name, env[name]) for name in env if name.startswith(CI_PREFIXES))
    text = json.dumps([__version__, list(argv), cwd, wanted])
    return hashlib.sha256(text.encode()).hexdigest()


def _stamp(st: os.stat_result) -> Stamp:
    return [st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def tree(root: str, skip: Iterable[str]) -> list[tuple[str, Stamp]]:
    """Every path under ``root`` (itself included) with its lstat data, sorted; ``skip``
    (absolute paths) are left out with everything below them. OSError past ``MAX_PATHS``."""
    skipped = {os.path.abspath(path) for path in skip}
    found = [(".", _stamp(os.lstat(root)))]
    pending = [(root, "")]
    while pending:
        if len(found) > MAX_PATHS:
            raise OSError(f"{root} holds more than {MAX_PATHS} paths; not recorded")
        directory, rel = pending.pop()
        with os.scandir(directory) as children:
            for child in children:
                if child.path in skipped:
                    continue
                name = rel + child.name
                found.append((name, _stamp(child.stat(follow_symlinks=False))))
                if child.is_dir(follow_symlinks=False):
                    pending.append((child.path, name + "/"))
    found.sort()
    return found


def files(paths: Iterable[str]) -> list[tuple[str, Stamp]]:
    """The lstat data of ``paths`` (a missing one: an empty stamp)."""
    out = []
    for path in sorted(set(paths)):
        try:
            out.append((path, _stamp(os.lstat(path))))
        except FileNotFoundError:
            out.append((path, []))
    return out


def _racy(stamps: Iterable[tuple[str, Stamp]], now: int) -> bool:
    return any(s and max(s[2], s[3]) >= now - RACY_NS for _, s in stamps)


def save(
    name: str,
    context: str,
    skip: Sequence[str],
    before: list[tuple[str, Stamp]],
    outputs: Sequence[str],
    printed: Replay,
) -> bool:
    """Record the build, if the context is as it was before it and nothing is racy."""
    after = tree(context, skip)
    left = files(outputs)
    if after != before or _racy(after, time.time_ns()) or _racy(left, time.time_ns()):
        return False
    if any(not stamp for _, stamp in left):
        return False
    document = {
        "context": context,
        "skip": list(skip),
        "tree": after,
        "outputs": left,
        "stdout": printed[0],
        "stderr": printed[1],
    }
    folder = os.path.join(cache_root(), "rebuilds")
    os.makedirs(folder, exist_ok=True)
    temp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    with open(temp, "w", encoding="utf-8") as out:
        out.write(json.dumps(document))
    os.replace(temp, os.path.join(folder, f"{name}.json"))
    return True


def replay(argv: Sequence[str], cwd: str, env: Mapping[str, str]) -> Replay | None:
    """The recorded output of this exact command, if stat data vouches that nothing changed."""
    path = _record(key(argv, cwd, env))
    try:
        with open(path, "rb") as stream:
            document = json.loads(stream.read())
        outputs = [(str(p), list(s)) for p, s in document["outputs"]]
        if files(p for p, _ in outputs) != outputs:
            return None
        recorded = [(str(p), list(s)) for p, s in document["tree"]]
        if tree(document["context"], document["skip"]) != recorded:
            return None
        return str(document["stdout"]), str(document["stderr"])
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None


def forget(argv: Sequence[str], cwd: str, env: Mapping[str, str]) -> None:
    """Drop the record of this command (a build that cannot be replayed)."""
    import contextlib  # only on the full path: this module's import stays cheap

    with contextlib.suppress(FileNotFoundError):
        os.unlink(_record(key(argv, cwd, env)))


def _record(name: str) -> str:
    return os.path.join(cache_root(), "rebuilds", f"{name}.json")


def context_of(spec_path: str) -> str:
    """The build context: the directory of image.toml, symlinks resolved."""
    return os.path.dirname(os.path.realpath(spec_path))
