from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from builder.errors import SourceError
from builder.layer.entries import Entry, Kind
from builder.layer.sources import layer_entries
from builder.model import Platform
from builder.spec.load import load
from tests.helpers import write_toml


def _entries(ctx: Path, layer_toml: str) -> dict[str, Entry]:
    spec = load(write_toml(ctx, "[[layers]]\n" + layer_toml))
    entries = layer_entries(spec.layers[0], spec.context, Platform.parse("linux/amd64"))
    return {e.path: e for e in entries}


def _tree(ctx: Path) -> None:
    (ctx / "static" / "css").mkdir(parents=True)
    (ctx / "static" / "css" / "a.css").write_text("a")
    (ctx / "static" / "css" / "a.css.map").write_text("map")
    (ctx / "static" / "run.sh").write_text("#!/bin/sh\n")
    (ctx / "static" / "run.sh").chmod(0o700)
    (ctx / "static" / "secret").write_text("s")
    (ctx / "static" / "secret").chmod(0o600)
    os.symlink("css/a.css", ctx / "static" / "link")


def test_directory_copy_normalises_modes_and_keeps_symlinks(tmp_path: Path) -> None:
    _tree(tmp_path)
    got = _entries(tmp_path, 'files = [{ src = "static/", dst = "/app/", exclude = ["**/*.map"] }]')
    assert list(got) == ["app", "app/css", "app/css/a.css", "app/link", "app/run.sh", "app/secret"]
    assert got["app/run.sh"].mode == 0o755 and got["app/secret"].mode == 0o644
    assert got["app/css"].kind is Kind.DIR and got["app/css"].mode == 0o755
    assert got["app/link"].kind is Kind.SYMLINK and got["app/link"].linkname == "css/a.css"


def test_mode_and_owner_apply_to_every_entry(tmp_path: Path) -> None:
    _tree(tmp_path)
    got = _entries(
        tmp_path, 'files = [{ src = "static", dst = "/app", mode = 0o640, owner = "7:8" }]'
    )
    assert got["app/secret"].mode == 0o640 and (got["app/secret"].uid, got["app/secret"].gid) == (
        7,
        8,
    )
    assert (got["app/css"].uid, got["app/css"].gid) == (7, 8)


@pytest.mark.parametrize(
    ("dst", "path"), [("/bin/", "bin/run.sh"), ("/bin/tool", "bin/tool"), ("/", "run.sh")]
)
def test_single_file_destination(tmp_path: Path, dst: str, path: str) -> None:
    _tree(tmp_path)
    got = _entries(tmp_path, f'files = [{{ src = "static/run.sh", dst = "{dst}" }}]')
    assert got[path].kind is Kind.FILE


def test_implicit_parents_and_explicit_dirs(tmp_path: Path) -> None:
    got = _entries(
        tmp_path,
        'content = [{ dst = "/a/b/c", text = "x" }]\ndirs = [{ path = "/a", mode = 0o700, owner = "5:5" }]',
    )
    assert (got["a"].mode, got["a"].uid) == (0o700, 5)
    assert (got["a/b"].mode, got["a/b"].uid, got["a/b"].kind) == (0o755, 0, Kind.DIR)


def test_same_inode_and_explicit_hardlinks_become_tar_links(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "z").write_text("data")
    os.link(tmp_path / "src" / "z", tmp_path / "src" / "a")
    got = _entries(
        tmp_path,
        'files = [{ src = "src", dst = "/d" }]\nhardlinks = [{ path = "/b", target = "/d/z" }]',
    )
    assert got["b"].kind is Kind.FILE and got["b"].size == 4
    assert got["d/a"].kind is Kind.HARDLINK and got["d/a"].linkname == "b"
    assert got["d/z"].kind is Kind.HARDLINK and got["d/z"].linkname == "b"


@pytest.mark.parametrize(
    ("setup", "layer", "message"),
    [
        ("missing", 'files = [{ src = "nope", dst = "/a" }]', "does not exist"),
        ("escape_link", 'files = [{ src = "out", dst = "/a" }]', "outside the build context"),
        ("escape_inner", 'files = [{ src = "d", dst = "/a" }]', "points outside the build context"),
        ("whiteout", 'files = [{ src = "d", dst = "/a" }]', "reserved for whiteouts"),
        ("fifo", 'files = [{ src = "d", dst = "/a" }]', "is a named pipe"),
        ("socket", 'files = [{ src = "d", dst = "/a" }]', "is a socket"),
        (
            "plain",
            'files = [{ src = "f", dst = "/a" }]\ncontent = [{ dst = "/a", text = "" }]',
            "/a is written twice",
        ),
        (
            "plain",
            'content = [{ dst = "/a", text = "" }, { dst = "/a/b", text = "" }]',
            "needs it to be a directory",
        ),
        ("plain", 'hardlinks = [{ path = "/b", target = "/nothing" }]', "must be an absolute path"),
        ("plain", 'dirs = [{ path = "/x" }, { path = "/x" }]', "written twice"),
    ],
)
def test_bad_sources_are_refused(tmp_path: Path, setup: str, layer: str, message: str) -> None:
    ctx = tmp_path / "ctx"
    (ctx / "d").mkdir(parents=True)
    (ctx / "f").write_text("f")
    if setup == "escape_link":
        os.symlink("/etc", ctx / "out")
    elif setup == "escape_inner":
        os.symlink("../../etc/passwd", ctx / "d" / "l")
    elif setup == "whiteout":
        (ctx / "d" / ".wh.x").write_text("")
    elif setup == "fifo":
        os.mkfifo(ctx / "d" / "pipe")
    elif setup == "socket":
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(ctx / "d" / "sock"))
            with pytest.raises(SourceError, match=message):
                _entries(ctx, layer)
        return
    with pytest.raises(SourceError, match=message):
        _entries(ctx, layer)
