"""The merged view below a layer, and delete/opaque globs → whiteout entries."""

from __future__ import annotations

import pytest

from builder.errors import SourceError
from builder.layer.entries import Kind
from builder.layer.lower import LowerFS, Node, whiteout_entries
from builder.model import Codec
from builder.spec.values import LayerSpec

DIR, FILE = Node(Kind.DIR, 0o755), Node(Kind.FILE, 0o644)


def lower() -> LowerFS:
    fs = LowerFS()
    fs.apply(
        [
            ("etc", DIR),
            ("etc/apt", DIR),
            ("etc/apt/sources.list", FILE),
            ("etc/nginx", Node(Kind.DIR, 0o750, 101, 101)),
            ("etc/nginx/conf.d", DIR),
            ("etc/nginx/conf.d/a.conf", FILE),
            ("var", DIR),
            ("var/cache", DIR),
            ("var/cache/apt", DIR),
            ("var/cache/apt/a.bin", FILE),
            ("var/cache/apt/b.bin", FILE),
        ]
    )
    return fs


def test_apply_whiteouts_and_opaque() -> None:
    fs = lower()
    fs.apply(
        [
            ("etc/.wh.apt", FILE),
            ("etc/nginx/conf.d/.wh..wh..opq", FILE),
            ("etc/nginx/conf.d/b.conf", FILE),
            ("var/cache/apt/.wh.a.bin", FILE),
        ]
    )
    assert sorted(fs.nodes) == [
        "etc",
        "etc/nginx",
        "etc/nginx/conf.d",
        "etc/nginx/conf.d/b.conf",
        "var",
        "var/cache",
        "var/cache/apt",
        "var/cache/apt/b.bin",
    ]


def test_file_replacing_dir_drops_subtree() -> None:
    fs = lower()
    fs.apply([("etc/apt", FILE)])
    assert "etc/apt/sources.list" not in fs.nodes
    nginx = fs.nodes["etc/nginx"]
    assert (nginx.mode, nginx.uid, nginx.gid) == (0o750, 101, 101)


@pytest.mark.parametrize(
    ("delete", "opaque", "expected"),
    [
        (("/etc/apt",), (), ["etc/.wh.apt"]),
        (("/var/cache/apt/*",), (), ["var/cache/apt/.wh.a.bin", "var/cache/apt/.wh.b.bin"]),
        (("/var/cache/apt/a.*",), (), ["var/cache/apt/.wh.a.bin"]),
        # a deleted directory covers deletions inside it
        (("/etc/apt", "/etc/apt/*"), (), ["etc/.wh.apt"]),
        ((), ("/etc/nginx/conf.d",), ["etc/nginx/conf.d/.wh..wh..opq"]),
        (("/etc/*",), ("/etc/nginx/conf.d",), ["etc/.wh.apt", "etc/.wh.nginx"]),
        # ** spans any number of directories, none included
        (("/**/*.bin",), (), ["var/cache/apt/.wh.a.bin", "var/cache/apt/.wh.b.bin"]),
        (("/etc/**/a.conf",), (), ["etc/nginx/conf.d/.wh.a.conf"]),
        (("/etc/apt/**/sources.list",), (), ["etc/apt/.wh.sources.list"]),
    ],
)
def test_whiteouts(delete: tuple[str, ...], opaque: tuple[str, ...], expected: list[str]) -> None:
    layer = LayerSpec("l", Codec(), delete=delete, opaque=opaque, where="layers[0]")
    entries = whiteout_entries(layer, lower())
    assert [e.path for e in entries] == expected
    assert all(e.kind is Kind.FILE and e.size == 0 for e in entries)


@pytest.mark.parametrize(
    ("delete", "opaque", "message"),
    [
        (("/nope",), (), "delete '/nope' matches nothing"),
        ((), ("/etc/apt/sources.list",), "is not a directory"),
        (("/",), (), "root cannot be deleted"),
    ],
)
def test_errors(delete: tuple[str, ...], opaque: tuple[str, ...], message: str) -> None:
    layer = LayerSpec("l", Codec(), delete=delete, opaque=opaque, where="layers[0]")
    with pytest.raises(SourceError, match=message):
        whiteout_entries(layer, lower())


def test_missing_ok() -> None:
    layer = LayerSpec("l", Codec(), delete=("/nope", "/etc/apt"), missing_ok=True)
    assert [e.path for e in whiteout_entries(layer, lower())] == ["etc/.wh.apt"]


def test_globs_follow_the_gitignore_dialect_of_exclude() -> None:
    """delete/opaque and exclude read globs one way: a trailing '/' means directories only,
    and a matched directory stands for what is below it."""
    fs = lower()
    assert fs.glob("/etc/apt/") == ["etc/apt"]
    assert fs.glob("/etc/apt/sources.list/") == []
    assert fs.glob("/**/*.bin") == ["var/cache/apt/a.bin", "var/cache/apt/b.bin"]
    assert fs.glob("/var") == ["var"]


def test_a_run_of_double_stars_over_a_deep_tree_is_linear() -> None:
    """The hand-written matcher recursed per '**' and per level (exponential, and a
    RecursionError at 1,200 levels); the gitignore dialect compiles to one regex."""
    fs = LowerFS()
    path = ""
    for _ in range(1500):
        path = f"{path}/d" if path else "d"
        fs.apply([(path, DIR)])
    assert fs.glob("/**/**/**/**/**/**/**/**/nomatch") == []
