"""bale's temp files: locked while their maker lives, swept once it is gone."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from builder.atomic import NEW_STALE_S, atomic_write, sweep, temp_dir, temp_file
from builder.locking import locked_dir


def test_sweep_keeps_live_temps_and_removes_dead_ones(tmp_path: Path) -> None:
    fd, live = temp_file(tmp_path, "live")
    dead = tmp_path / ".dead.x.bale-tmp"
    dead.write_bytes(b"12345")
    young, old = tmp_path / ".young.x.bale-new", tmp_path / ".old.x.bale-new"
    young.write_bytes(b"")
    old.write_bytes(b"")
    os.utime(old, (time.time() - NEW_STALE_S - 1,) * 2)
    (tmp_path / "dead-dir.bale-tmp").mkdir()
    (tmp_path / "dead-dir.bale-tmp" / "f").write_bytes(b"123")
    (tmp_path / "unrelated.tmp").write_bytes(b"")
    assert sweep(tmp_path) == 8
    os.close(fd)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [live.name, young.name, "unrelated.tmp"]
    )


def test_sweep_honours_the_prefix_and_a_missing_directory(tmp_path: Path) -> None:
    (tmp_path / ".a.tar.x.bale-tmp").write_bytes(b"")
    (tmp_path / ".b.tar.x.bale-tmp").write_bytes(b"")
    sweep(tmp_path, ".a.tar.")
    assert [p.name for p in tmp_path.iterdir()] == [".b.tar.x.bale-tmp"]
    assert sweep(tmp_path / "missing") == 0


def test_a_temp_dir_is_locked_while_in_use_and_gone_after(tmp_path: Path) -> None:
    with temp_dir("unit") as work:
        assert work.name.startswith("bale-unit-") and work.name.endswith(".bale-tmp")
        sweep(work.parent, "bale-unit-")
        assert work.is_dir()
    assert not work.exists()


def test_atomic_write_leaves_no_temp_on_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), atomic_write(tmp_path / "f") as out:
        out.write(b"half")
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []


def test_locked_dir_waits_and_notes_once(tmp_path: Path) -> None:
    notes: list[str] = []
    order: list[str] = []
    release = threading.Event()

    def holder() -> None:
        with locked_dir(tmp_path / "d", "d"):
            order.append("first")
            release.wait()

    thread = threading.Thread(target=holder)
    thread.start()
    while not order:
        time.sleep(0.01)

    def second() -> None:
        with locked_dir(tmp_path / "d", "the place", notes.append):
            order.append("second")

    waiter = threading.Thread(target=second)
    waiter.start()
    while not notes:
        time.sleep(0.01)
    assert order == ["first"]
    release.set()
    thread.join()
    waiter.join()
    assert order == ["first", "second"]
    assert notes == ["waiting for another bale to finish writing the place"]
