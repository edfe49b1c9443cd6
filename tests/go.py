"""Go programs built by the Go toolchain (``go build``, offline) for the Go SBOM tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import require_tool

GO_MOD = """module example.com/hello

go 1.19

require example.com/greet v1.2.3

replace example.com/greet => ./greet
"""
MAIN = """package main

import (
\t"os"

\t"example.com/greet"
)

func main() { os.Stdout.WriteString(greet.Hello() + "\\n") }
"""


def go_env(work: Path) -> dict[str, str]:
    """An offline Go environment whose caches live under ``work``."""
    return {
        **os.environ,
        "HOME": str(work / "home"),
        "GOPATH": str(work / "gopath"),
        "GOCACHE": str(work / "gocache"),
        "GOFLAGS": "-mod=mod",
        "GOPROXY": "off",
        "GOTOOLCHAIN": "local",
    }


def build_hello(work: Path) -> Path:
    """A module with one dependency, replaced by a local directory, built with ``go build``."""
    source = work / "hello"
    (source / "greet").mkdir(parents=True)
    (source / "go.mod").write_text(GO_MOD)
    (source / "main.go").write_text(MAIN)
    (source / "greet" / "go.mod").write_text("module example.com/greet\n\ngo 1.19\n")
    (source / "greet" / "greet.go").write_text(
        'package greet\n\nfunc Hello() string { return "hello from go" }\n'
    )
    binary = work / "hello-go"
    done = subprocess.run(
        [require_tool("go"), "build", "-o", str(binary), "."],
        cwd=source,
        env=go_env(work),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return binary


def go_version_m(binary: Path, work: Path) -> set[tuple[str, str]]:
    """(name, version) of what ``go version -m`` prints: ``stdlib`` with the Go version,
    the ``mod`` line and each ``dep`` line (replaced by a following ``=>`` module line;
    a directory replacement keeps the ``dep`` line)."""
    done = subprocess.run(
        [require_tool("go"), "version", "-m", str(binary)],
        env=go_env(work),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    first, *lines = done.stdout.splitlines()
    found = [("stdlib", first.rsplit(": ", 1)[1])]
    for line in lines:
        kind, *fields = line.strip("\t").split("\t")
        if kind in ("mod", "dep"):
            found.append((fields[0], fields[1]))
        elif kind == "=>" and not fields[0].startswith(("./", "../", "/")):
            found[-1] = (fields[0], fields[1])
    return set(found)
