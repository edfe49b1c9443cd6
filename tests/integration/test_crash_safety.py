"""Crashes and concurrency: locked outputs, cleanup after publication, stale temps, signals."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import builder.formats.layout
from builder.cli.main import main
from builder.locking import locked_dir
from tests.conftest import require_tool
from tests.helpers import check_layout

REF_NAME = "org.opencontainers.image.ref.name"
BALE = [sys.executable, "-m", "builder.cli.entry"]
IMAGE = """\
[image]
created = "2024-01-01T00:00:00Z"
[[layers]]
name = "files"
files = [{ src = "files/", dst = "/files/" }]
"""


def context(root: Path, text: str, count: int = 3) -> Path:
    (root / "files").mkdir(parents=True, exist_ok=True)
    (root / "image.toml").write_text(IMAGE)
    for number in range(count):
        (root / "files" / f"f{number}.txt").write_text(f"{text} {number}\n")
    return root / "image.toml"


def tags_of(layout: Path) -> dict[str, str]:
    index = json.loads((layout / "index.json").read_bytes())
    named = {m.get("annotations", {}).get(REF_NAME): m["digest"] for m in index["manifests"]}
    return {name: digest for name, digest in named.items() if name}


def temps_under(*tops: Path) -> list[Path]:
    return [
        Path(parent) / name
        for top in tops
        for parent, dirs, files in os.walk(top)
        for name in dirs + files
        if name.endswith((".bale-tmp", ".bale-new"))
    ]


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A TMPDIR and cache of this test's own, for this process and the bales it starts."""
    tmp, cache = tmp_path / "tmpdir", tmp_path / "cache"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setenv("BALE_CACHE_DIR", str(cache))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    yield tmp


def test_concurrent_builds_into_one_new_layout_keep_every_tag(tmp_path: Path) -> None:
    layout = tmp_path / "new-layout"
    specs = [context(tmp_path / f"c{n}", f"writer {n}") for n in range(4)]
    for round_number in range(2):
        commands = [
            [
                *BALE,
                "build",
                "-q",
                "-f",
                str(spec),
                "-t",
                f"r{round_number}w{n}",
                "-o",
                f"oci:{layout}",
            ]
            for n, spec in enumerate(specs)
        ]
        with ThreadPoolExecutor(4) as pool:
            results = list(
                pool.map(lambda c: subprocess.run(c, capture_output=True, text=True), commands)
            )
        assert [r.stderr for r in results if r.returncode] == []
        tags = tags_of(layout)
        for n, result in enumerate(results):
            assert tags[f"r{round_number}w{n}"] == result.stdout.strip()
    check_layout(layout)


def test_a_second_build_waits_for_the_lock_and_says_so(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    spec = context(tmp_path / "c", "waiting")
    assert main(["build", "-q", "-f", str(spec), "-t", "first", "-o", f"oci:{layout}"]) == 0
    with locked_dir(layout, "the test's layout"):
        command = [*BALE, "build", "-q", "-f", str(spec), "-t", "second", "-o", f"oci:{layout}"]
        process = subprocess.Popen(
            command, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert process.stderr is not None
        line = process.stderr.readline()
        assert line == f"bale: waiting for another bale to finish writing the OCI layout {layout}\n"
        assert process.poll() is None
    _, err = process.communicate()
    assert process.returncode == 0, err
    assert set(tags_of(layout)) == {"first", "second"}


def test_blobs_stay_once_index_json_names_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupt in the directory fsync after index.json was renamed deletes nothing."""
    layout = tmp_path / "layout"
    assert (
        main(
            [
                "build",
                "-q",
                "-f",
                str(context(tmp_path / "a", "a")),
                "-t",
                "a",
                "-o",
                f"oci:{layout}",
            ]
        )
        == 0
    )
    real = builder.formats.layout._fsync_dir

    def interrupted(path: Path) -> None:
        if path == layout:
            raise KeyboardInterrupt
        real(path)

    monkeypatch.setattr(builder.formats.layout, "_fsync_dir", interrupted)
    spec = context(tmp_path / "b", "b")
    assert main(["build", "-q", "-f", str(spec), "-t", "b", "-o", f"oci:{layout}"]) == 130
    assert set(tags_of(layout)) == {"a", "b"}
    assert len(check_layout(layout)) == 2


def test_stale_temps_go_and_live_ones_stay(tmp_path: Path, private_tmp: Path) -> None:
    layout, archives, cache = tmp_path / "layout", tmp_path / "archives", tmp_path / "cache"
    spec = context(tmp_path / "c", "temps")
    outputs = ["-o", f"oci:{layout}", "-o", f"oci-archive:{archives / 'img.tar'}"]
    assert main(["build", "-q", "-f", str(spec), "-t", "one", *outputs]) == 0
    stale = [
        layout / "blobs" / "sha256" / ".0123abcd.x1.bale-tmp",
        layout / ".index.json.x2.bale-tmp",
        archives / ".img.tar.x3.bale-tmp",
        cache / "blobs" / "sha256" / ".layer.x4.bale-tmp",
        cache / "layers" / ".key.json.x5.bale-tmp",
    ]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"left by a killed bale")
    (private_tmp / "bale-build-x6.bale-tmp").mkdir()
    (private_tmp / "bale-build-x6.bale-tmp" / "import-1.tar").write_bytes(b"x")
    live = cache / "blobs" / "sha256" / ".layer.live.bale-tmp"
    live.write_bytes(b"a running bale's")
    with open(live, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        (spec.parent / "files" / "f0.txt").write_text("changed\n")
        assert main(["build", "-q", "-f", str(spec), "-t", "two", *outputs]) == 0
    assert temps_under(layout, archives, cache, private_tmp) == [live]
    umoci = require_tool("umoci")
    subprocess.run([umoci, "gc", "--layout", str(layout)], check=True, capture_output=True)
    assert main(["cache", "prune"]) == 0
    assert temps_under(cache) == []


def test_temp_names_are_bales_and_never_digests(tmp_path: Path) -> None:
    from builder.atomic import temp_file

    fd, path = temp_file(tmp_path, "0" * 64)
    os.close(fd)
    assert path.name.endswith(".bale-tmp")
    assert not re.fullmatch("[0-9a-f]{64}", path.name)


@pytest.mark.parametrize(
    ("sig", "code", "line"),
    [
        (signal.SIGINT, 130, "bale: interrupted; outputs were left as they were"),
        (signal.SIGTERM, 143, "bale: terminated; outputs were left as they were"),
    ],
)
def test_a_signal_during_start_up_ends_with_one_line(
    tmp_path: Path, sig: signal.Signals, code: int, line: str
) -> None:
    """The signal lands while bale imports its modules (the import-time log says when)."""
    spec = context(tmp_path / "c", "signal")
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    command = [*BALE, "build", "-f", str(spec), "-o", f"oci:{tmp_path / 'o'}"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, env=env, text=True)
    assert process.stderr is not None
    for text in process.stderr:
        if "builder.layer" in text:
            break
    process.send_signal(sig)
    rest = process.stderr.read()
    assert process.wait() == code
    printed = [t for t in rest.splitlines() if not t.startswith("import time:")]
    assert printed == [line]
    assert not (tmp_path / "o").exists()


def test_inspect_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    spec = context(tmp_path / "c", "many files", count=2000)
    assert main(["build", "-q", "-f", str(spec), "-o", f"oci:{layout}"]) == 0
    command = [*BALE, "inspect", "--files", f"oci:{layout}"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().startswith(b"oci:")
    process.stdout.close()
    err = process.stderr.read()
    assert process.wait() == 1
    assert err == b""


def test_archive_outputs_refuse_devices_fifos_and_symlinks(tmp_path: Path) -> None:
    spec = context(tmp_path / "c", "archive")
    fifo, target, link = tmp_path / "fifo", tmp_path / "target", tmp_path / "link"
    os.mkfifo(fifo)
    target.write_text("keep me\n")
    link.symlink_to(target)
    places = [fifo, link]
    if os.geteuid() == 0:
        device = tmp_path / "null"
        os.mknod(device, 0o666 | 0o020000, os.makedev(1, 3))
        places.append(device)
    for place in places:
        for transport in ("oci-archive", "docker-archive"):
            assert main(["build", "-q", "-f", str(spec), "-o", f"{transport}:{place}"]) == 1
    assert fifo.is_fifo() and link.is_symlink() and target.read_text() == "keep me\n"
    if os.geteuid() == 0:
        assert (tmp_path / "null").is_char_device()
    assert temps_under(tmp_path) == []


SWALLOWED = """
import weakref
import time

from builder.cli import signals

signals.install()


class A:
    pass


def callback(_):
    raise {exc}


a = A()
r = weakref.ref(a, callback)
try:
    del a
    time.sleep(10)
    print("went on")
except {exc}:
    print("stopped")
"""


@pytest.mark.parametrize("exc", ["KeyboardInterrupt", "signals.Terminated"])
def test_an_interrupt_python_would_swallow_still_stops_bale(exc: str) -> None:
    """A signal inside a weakref callback (the import machinery's module locks) is not lost."""
    code = SWALLOWED.format(exc=exc)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (result.stdout, result.stderr) == ("stopped\n", "")
