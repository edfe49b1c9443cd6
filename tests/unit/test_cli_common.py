from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from builder.cli.common import platforms_arg, tag_arg
from builder.errors import UsageError
from builder.model import Platform


@pytest.mark.parametrize(
    ("texts", "platforms", "wants_all"),
    [
        ([], (), False),
        (
            ["linux/arm64/v8", "linux/arm"],
            (Platform("linux", "arm64"), Platform("linux", "arm", "v7")),
            False,
        ),
        (["all"], (), True),
        ([" ALL "], (), True),
    ],
)
def test_platform_flags(texts: list[str], platforms: tuple[Platform, ...], wants_all: bool) -> None:
    assert platforms_arg(texts) == (platforms, wants_all)


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["all", "linux/amd64"], "stands alone"),
        (["linux"], "--platform: invalid platform 'linux'"),
    ],
)
def test_bad_platform_flags_are_usage_errors(texts: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        platforms_arg(texts)


def test_tag_flag() -> None:
    assert tag_arg("v1.2_3-rc") == "v1.2_3-rc"
    with pytest.raises(UsageError, match=r"--tag: invalid tag '\.hidden'"):
        tag_arg(".hidden")


def test_the_program_flushes_its_output_and_keeps_the_exit_code(tmp_path: Path) -> None:
    """``bale`` ends with os._exit: what it printed must still arrive, with its status."""
    program = [sys.executable, "-m", "builder.cli.main"]
    env = {**os.environ, "BALE_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(
        [*program, "cache", "dir"], capture_output=True, text=True, env=env, check=False
    )
    assert (done.returncode, done.stdout) == (0, f"{tmp_path / 'cache'}\n")
    missing = tmp_path / "nothing.toml"
    done = subprocess.run(
        [*program, "build", "-f", str(missing)], capture_output=True, text=True, check=False
    )
    assert done.returncode != 0 and str(missing) in done.stderr
    assert "Traceback" not in done.stderr
