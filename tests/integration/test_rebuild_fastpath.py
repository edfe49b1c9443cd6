"""The no-change rebuild answered from stat data (builder/rebuild.py), run as the real program.

Recording needs inputs and outputs older than bale's racy window (2 s), so
the test waits that long twice; nothing here measures time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from builder.rebuild import RACY_NS
from tests.helpers import check_layout, write_toml

SPEC = """
[image]
created = "2024-01-01T00:00:00Z"
[[layers]]
name = "app"
files = [{ src = "app/", dst = "/app/" }]
"""


def bale(context: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BALE_CACHE_DIR": str(cache)}
    command = [sys.executable, "-m", "builder.cli.entry", "build", "-o", "oci:out:v1"]
    done = subprocess.run(
        command, cwd=context, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done


# The console script and both ``python -m`` forms: one start (builder/cli/entry.py).
PROGRAMS = {
    "bale": [str(Path(sys.executable).parent / "bale")],
    "python -m builder.cli.main": [sys.executable, "-m", "builder.cli.main"],
    "python -m builder.cli.entry": [sys.executable, "-m", "builder.cli.entry"],
}


def assert_replayed(
    name: str, context: Path, cache: Path, recorded: subprocess.CompletedProcess[str]
) -> None:
    """Started as ``name``, bale prints what ``recorded`` did, having imported nothing of
    the builder but builder.rebuild (and the entry module with its signal handlers)."""
    env = {**os.environ, "BALE_CACHE_DIR": str(cache), "PYTHONPROFILEIMPORTTIME": "1"}
    assert Path(PROGRAMS[name][0]).is_file(), name
    done = subprocess.run(
        [*PROGRAMS[name], "build", "-o", "oci:out:v1"],
        cwd=context,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = done.stderr.splitlines(keepends=True)
    imported = {x.rsplit("|", 1)[-1].strip() for x in lines if x.startswith("import time:")}
    said = "".join(x for x in lines if not x.startswith("import time:"))
    assert (done.returncode, done.stdout, said) == (0, recorded.stdout, recorded.stderr), name
    assert "builder.rebuild" in imported, name
    assert not {"builder.cli.main", "builder.commands.build"} & imported, name


def settle() -> None:
    """Wait out the racy window, so what was just written can be vouched for by stat."""
    time.sleep(RACY_NS / 1e9 + 0.2)


def test_a_no_change_rebuild_is_replayed_and_any_change_is_not(tmp_path: Path) -> None:
    context, cache = tmp_path / "ctx", tmp_path / "cache"
    (context / "app").mkdir(parents=True)
    (context / "app" / "a.txt").write_text("one\n")
    write_toml(context, SPEC)
    settle()
    cold = bale(context, cache)
    assert "layer app: built" in cold.stderr
    settle()
    warm = bale(context, cache)  # the full program, every layer from the local cache: recorded
    assert "layer app: local cache" in warm.stderr
    assert list((cache / "rebuilds").glob("*.json"))

    # Without the layer records a full build would rebuild; a replay does not look.
    shutil.rmtree(cache / "layers")
    for program in PROGRAMS:
        assert_replayed(program, context, cache, warm)

    # Same size, new bytes: the ctime changed, so the full program runs (and builds).
    (context / "app" / "a.txt").write_text("two\n")
    changed = bale(context, cache)
    assert "layer app: built" in changed.stderr
    assert changed.stdout != warm.stdout

    # A file added changes its directory's stat data: the new file is in the image.
    settle()
    bale(context, cache)
    settle()
    recorded = bale(context, cache)
    assert "local cache" in recorded.stderr
    (context / "app" / "new.txt").write_text("x")
    added = bale(context, cache)
    assert "layer app: built" in added.stderr and added.stdout != recorded.stdout
    (context / "app" / "new.txt").unlink()
    settle()
    bale(context, cache)
    settle()
    recorded = bale(context, cache)

    # An output blob removed: not replayed; the full program writes the layout again.
    layer = recorded.stderr.split("layer app: local cache sha256:")[1][:64]
    (context / "out" / "blobs" / "sha256" / layer).unlink()
    repaired = bale(context, cache)
    assert repaired.stdout == recorded.stdout
    check_layout(context / "out")
