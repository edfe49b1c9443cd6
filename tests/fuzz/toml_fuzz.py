"""The image.toml fuzzer: mutations of valid image.tomls, built by ``bale build``.

Run: ``python -m tests.fuzz.toml_fuzz --count 20000 --seed 1 [--jobs 2]``. Each
case takes a seed file, applies one to three mutations (a key's value replaced
by a random TOML value or a near miss, a key dropped or added, a table
repeated, the text cut or a byte changed; sometimes a hostile
SOURCE_DATE_EPOCH or ``-j``), and builds it in the sandbox. Any outcome but a
traceback, a hang, a crash, an escape, a damaged existing output or a failure
without exactly one ``bale: error:`` line passes. Failures are printed with the
image.toml that caused them (and kept under ``--keep DIR``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import multiprocessing
import random
import sys
import time
from pathlib import Path
from typing import Any

from tests.fuzz.images import Layout, plain_tar, tar_dir
from tests.fuzz.sandbox import Case, Result, run

SEEDS: list[dict[str, Any]] = [
    {
        "image": {"tags": ["1.0"], "created": "2024-01-01T00:00:00Z"},
        "config": {"entrypoint": ["/app/run.sh"], "env": {"A": "1"}, "workdir": "/app"},
        "layers": [
            {
                "name": "app",
                "files": [{"src": "run.sh", "dst": "/app/run.sh", "mode": 0o755}],
                "content": [{"dst": "/etc/app.conf", "text": "x = 1\n"}],
            }
        ],
    },
    {
        "image": {"base": "oci:base:base", "platforms": ["linux/amd64"], "compression": "zstd"},
        "config": {"user": "app", "ports": ["8080/tcp"], "labels": {"a": "b"}},
        "users": [{"name": "app", "uid": 1000, "home": "/home/app"}],
        "groups": [{"name": "app", "gid": 1000, "members": ["app"]}],
        "layers": [
            {
                "name": "tree",
                "files": [{"src": "dir/", "dst": "/srv/", "exclude": ["*.tmp"], "owner": "app"}],
                "dirs": [{"path": "/data", "mode": 0o700, "owner": "1000:1000"}],
                "symlinks": [{"path": "/srv/link", "target": "/srv/b.txt"}],
            },
            {"name": "cleanup", "delete": ["/hello.txt"], "missing_ok": True},
        ],
    },
    {
        "image": {"index": "always", "format": "docker", "compression": "none"},
        "annotations": {"org.opencontainers.image.source": "https://example.com"},
        "layers": [
            {"name": "rootfs", "tar": "rootfs.tar", "tar_owner": "0:0"},
            {
                "name": "more",
                "content": [
                    {
                        "dst": "/bin/tool",
                        "text": "#!/bin/sh\n",
                        "mode": 0o4755,
                        "capabilities": ["cap_net_bind_service=+ep"],
                        "xattrs": {"user.origin": "bale"},
                    }
                ],
                "hardlinks": [{"path": "/bin/tool2", "target": "/bin/tool"}],
                "compression": "gzip",
                "compression_level": 9,
            },
        ],
    },
    {
        "image": {"base": "oci-archive:base.tar:base", "platforms": ["all"]},
        "config": {"cmd": ["sh"], "volumes": ["/data"], "stop_signal": "SIGTERM"},
        "layers": [
            {"name": "a", "opaque": ["/etc"], "content": [{"dst": "/etc/x", "text": ""}]},
        ],
    },
]

STRINGS = [
    "",
    "/",
    "//",
    ".",
    "..",
    "/..",
    "../x",
    "/a/../../b",
    "\0",
    "/a\0b",
    "a=b",
    "user.a=b",
    "[z-a]",
    "\\",
    "**/**/**/**/nomatch",
    "{arch}",
    "{nope}",
    "x" * 5000,
    "/" + "d/" * 300,
    "é",
    "\u202e",
    "\ud7ff",
    "0",
    "-1",
    "4294967295",
    "4294967296",
    "0:0",
    "root:root",
    "1000:",
    ":1000",
    "linux/amd64",
    "all",
    "linux/",
    "oci:",
    "oci:base",
    "oci:base:nope",
    "oci-archive:base.tar",
    "docker-archive:base.tar",
    "docker-archive:base.tar:5",
    "oci:/etc",
    "oci:../outside",
    "scratch",
    "gzip",
    "zstd",
    "none",
    "lz4",
    "cap_checkpoint_restore=+ep",
    "cap_all=+eip",
    "cap_bogus=+e",
    "9999-12-31T23:59:59-23:00",
    "0000-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "SIGRTMIN+3",
    "65536/tcp",
    "0/udp",
    "/.wh.x",
    "/a/.wh..wh..opq",
]
INTS = [0, 1, -1, 7, 0o777, 0o7777, 0o10000, 19, 22, 2**21, 2**31, 2**32 - 2, 2**32 - 1]
INTS += [2**32, 2**62, 2**63 - 1, -(2**63)]
FLOATS = [0.0, -0.0, 1.5, 1e308, math.inf, -math.inf, math.nan]
TIMES: list[Any] = [
    dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.timezone(dt.timedelta(hours=-23))),
    dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=23))),
    dt.datetime(1969, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc),
    dt.datetime(2024, 1, 1),
    dt.date(2024, 1, 1),
    dt.time(12, 0),
]
# Output locations near the grammar's edges (relative paths only: the sandbox's own).
OUTPUTS = ["oci:", "oci-archive:", "docker://", "docker-archive:", "oci:../out/layout:a:b"]
OUTPUTS += ["oci-archive:../out/a.tar:", "docker-archive:../out/d.tar:Name:tag", "nope:x"]
OUTPUTS += ["oci:../out/layout:" + "t" * 200, "oci:../out/layout/index.json", "oci:../out/layout:@"]
EPOCHS = ["", "0", "²", "١٢٣", "1" * 20, "-1", "253402300799", "253402300800", " 5 ", "1e9"]


# Near misses aimed at one key each (the keys' own pitfalls).
KEY_VALUES: dict[str, list[Any]] = {
    "exclude": [["[z-a]"], ["\\"], ["**/**/**/**/**/x"], ["[!]"], [""]],
    "created": [TIMES[0], TIMES[1], "9999-12-31T23:59:59-23:00", "2024-13-01T00:00:00Z"],
    "capabilities": [["cap_checkpoint_restore=+ep"], ["cap_bogus=+e"], ["cap_all=-e+e"], ["="]],
    "dst": ["/", "//", "/a\0b", "/.wh.x/", "/x/"],
    "path": ["/", "/a\0b", "/" + "d/" * 1300],
    "target": ["a\0b", "", "/", "../../../etc/shadow"],
    "xattrs": [{"user.a=b": "v"}, {"user.": "v"}, {"user.x": "\0"}, {"bogus.x": "v"}],
    "owner": ["4294967296", "4294967295:0", "0:4294967294", "99999999999999999999"],
    "uid": [2**32 - 1, 2**32, -1, 2**63],
    "gid": [2**32 - 1, 2**32, -1],
    "user": ["4294967296", "99999999999999999999:0", "nobody"],
    "delete": [["/**/**/**/**/**/**/**/**/nomatch"], ["/"], ["/[z-a]"]],
    "opaque": [["/"], ["/hello.txt"], ["/**"]],
    "tar": ["escape/x.tar", "/etc/passwd", "base/oci-layout", "dir", "rootfs.tar/"],
    "src": ["escape/secret", "escape", "/etc/passwd", "dir/../../outside", "{arch}"],
    "base": ["oci:escape", "oci:base:nope", "docker-archive:base.tar", "oci-archive:base"],
    "compression_level": [0, 20, 23, -5, 2**40],
    "mode": [0o10000, -1, "0o9", "777", 2**40],
    "text": ["\0" * 10, "x" * 100000],
}


def _value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if roll < 0.35:
        return rng.choice(STRINGS) if rng.random() < 0.8 else _garble(rng, rng.choice(STRINGS))
    if roll < 0.55:
        return rng.choice(INTS)
    if roll < 0.6:
        return rng.choice(FLOATS)
    if roll < 0.65:
        return rng.random() < 0.5
    if roll < 0.72:
        return rng.choice(TIMES)
    if roll < 0.88 or depth > 2:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {
        rng.choice(STRINGS)[:20] or "k": _value(rng, depth + 1) for _ in range(rng.randrange(3))
    }


def _garble(rng: random.Random, text: str) -> str:
    chars = list(text or "a")
    for _ in range(rng.randrange(1, 4)):
        chars.insert(
            rng.randrange(len(chars) + 1),
            chr(rng.choice([0, 1, 0x2F, 0x2E, 0x5C, 0x7F, 0x3D, 0xFF, 0x10FFFF, 0xD7FF])),
        )
    return "".join(chars)


def _near(rng: random.Random, value: Any) -> Any:
    """A value of the same type, slightly wrong."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return rng.choice([value + 1, value - 1, -value, value * 2**20, 2**32 - 1, 2**32])
    if isinstance(value, str):
        return _garble(rng, value) if value else rng.choice(STRINGS)
    if isinstance(value, list):
        return value * rng.randrange(0, 3) if value else [rng.choice(STRINGS)]
    return _value(rng)


def _paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(document, dict):
        for key, value in document.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += _paths(value, (*prefix, index))
    return found


def _parent(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        document = document[step]
    return document


def mutate(rng: random.Random, document: dict[str, Any]) -> dict[str, Any]:
    """One random change, in place; returns the document."""
    paths = _paths(document)
    path = rng.choice(paths)
    parent, key = _parent(document, path), path[-1]
    aimed = [p for p in paths if p[-1] in KEY_VALUES]
    if aimed and rng.random() < 0.25:
        path = rng.choice(aimed)
        _parent(document, path)[path[-1]] = rng.choice(KEY_VALUES[path[-1]])
        return document
    roll = rng.random()
    if roll < 0.45:
        parent[key] = _value(rng)
    elif roll < 0.7:
        parent[key] = _near(rng, parent[key])
    elif roll < 0.8:
        del parent[key]
    elif roll < 0.9 and isinstance(parent, dict):
        parent[rng.choice(["nmae", "src", "dst", "path", "extra", "base", "tags"])] = _value(rng)
    elif isinstance(parent, list):
        parent.append(json.loads(json.dumps(parent[key], default=str)))
    else:
        parent[key] = _value(rng)
    return document


def _key(name: Any) -> str:
    return json.dumps(str(name))


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value).replace("inf", "inf").replace("nan", "nan")
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_literal(v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value))


def to_toml(document: dict[str, Any]) -> str:
    """TOML text: top-level tables as [t], arrays of tables as [[t]], the rest inline."""
    lines = []
    tables = []
    for key, value in document.items():
        if isinstance(value, dict):
            tables.append((f"[{_key(key)}]", value))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            tables += [(f"[[{_key(key)}]]", v) for v in value]
        else:
            lines.append(f"{_key(key)} = {_literal(value)}")
    for header, table in tables:
        lines.append(header)
        lines += [f"{_key(k)} = {_literal(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _text_damage(rng: random.Random, text: str) -> str:
    data = text.encode("utf-8", "surrogatepass")
    roll = rng.random()
    if roll < 0.3:
        data = data[: rng.randrange(len(data) + 1)]
    elif roll < 0.7:
        at = rng.randrange(len(data))
        data = data[:at] + bytes([rng.randrange(256)]) + data[at + 1 :]
    else:
        at = rng.randrange(len(data) + 1)
        data = (
            data[:at] + rng.choice([b"[", b"]", b"=", b'"', b"\n[[layers]]\n", b"\0"]) + data[at:]
        )
    return data.decode("utf-8", "surrogateescape")


def make_case(number: int, seed: int) -> tuple[Case, str]:
    """Case ``number`` of a run: deterministic in (seed, number)."""
    rng = random.Random(f"{seed}:{number}")
    document = json.loads(json.dumps(rng.choice(SEEDS)))
    for _ in range(rng.randrange(1, 4)):
        if _paths(document):
            mutate(rng, document)
    text = to_toml(document)
    if rng.random() < 0.1:
        text = _text_damage(rng, text)
    argv: list[str] = ["build", "-o", "oci:../out/layout:new"]
    env: list[tuple[str, str]] = []
    if rng.random() < 0.05:
        env.append(("SOURCE_DATE_EPOCH", rng.choice(EPOCHS)))
    if rng.random() < 0.03:
        argv += rng.choice(
            [["-j", "1000"], ["-j", "-1"], ["--source-date-epoch", "99999999999999"]]
        )
    if rng.random() < 0.05:
        argv[1:3] = ["-o", rng.choice(OUTPUTS)]

    def prepare(root: Path) -> None:
        _context(root)
        (root / "ctx" / "image.toml").write_bytes(text.encode("utf-8", "surrogateescape"))

    return Case(
        f"toml/{seed}/{number}", tuple(argv), prepare, ok_allowed=True, env=tuple(env)
    ), text


def _context(root: Path) -> None:
    ctx = root / "ctx"
    (root / "outside" / "secret").write_text("secret\n")
    (ctx / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (ctx / "dir").mkdir()
    (ctx / "dir" / "b.txt").write_text("b\n")
    (ctx / "dir" / "c.tmp").write_text("c\n")
    (ctx / "rootfs.tar").write_bytes(plain_tar({"etc/os-release": b"ID=test\n"}))
    Layout().write(ctx / "base")
    (ctx / "base.tar").write_bytes(tar_dir(ctx / "base"))
    (ctx / "escape").symlink_to("../outside")
    Layout().write(root / "out" / "layout")


def _one(job: tuple[int, int, float]) -> tuple[Result, str]:
    number, seed, timeout = job
    case, text = make_case(number, seed)
    return run(case, timeout=timeout), text


def preload() -> None:
    """Import what a build imports, once, so each forked case starts warm."""
    import builder.cli.main
    import builder.commands.bases
    import builder.formats.archive
    import builder.layer.libmagic

    builder.layer.libmagic.describe(b"\x1f\x8b", mime=True)
    import pathspec  # noqa: F401


def fuzz(
    count: int, seed: int, jobs: int = 1, timeout: float = 60.0, start: int = 0
) -> list[tuple[Result, str]]:
    preload()
    work = [(n, seed, timeout) for n in range(start, start + count)]
    if jobs <= 1:
        return [_one(job) for job in work]
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        return list(pool.imap_unordered(_one, work, chunksize=8))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=int, default=0, help="first case number")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--keep", type=Path, help="write each failing image.toml here")
    args = parser.parse_args(argv)
    began = time.monotonic()
    results = fuzz(args.count, args.seed, args.jobs, args.timeout, args.start)
    counts: dict[str, int] = {}
    for result, text in results:
        counts[result.verdict] = counts.get(result.verdict, 0) + 1
        if not result.passed:
            last = (result.stderr.strip().splitlines() or [""])[-1]
            print(f"FAIL {result.verdict} {result.name}: {last[:300]}")
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                (args.keep / (result.name.replace("/", "-") + ".toml")).write_text(
                    text, "utf-8", "surrogateescape"
                )
    slowest = max((r.seconds for r, _ in results), default=0.0)
    print(
        f"{len(results)} image.toml files (seed {args.seed}): {counts}; "
        f"slowest {slowest:.1f} s; {time.monotonic() - began:.0f} s in all"
    )
    return 0 if all(r.passed for r, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
