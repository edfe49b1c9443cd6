"""Registry flags shared by commands, and the ``lock``, ``login``, ``logout`` subcommands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from builder.errors import UsageError
from builder.registry.credentials import Credentials, canonical_host
from builder.registry.options import Clients, RegistryConfig


def add_registry_flags(parser: argparse.ArgumentParser) -> None:
    """``--ca-cert``, ``--insecure-registry`` and ``--verbose``."""
    parser.add_argument(
        "--ca-cert", type=Path, metavar="FILE", help="trust this CA (PEM) for registry TLS"
    )
    parser.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST",
        help="allow plain HTTP or unverified TLS for HOST[:PORT] only (repeatable)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="log each registry request (method, URL, status)"
    )


def clients(args: argparse.Namespace) -> Clients:
    """The registry clients of one command, configured from its flags."""
    insecure = frozenset(canonical_host(h) for h in args.insecure_registry)
    return Clients(RegistryConfig(args.ca_cert, insecure, args.verbose))


def add_commands(commands: Any) -> None:
    lock = commands.add_parser("lock", help="resolve the registry base to digests (image.lock)")
    lock.add_argument("-f", "--file", default="image.toml", help="the image file (image.toml)")
    lock.add_argument("--debug", action="store_true", help="show tracebacks")
    add_registry_flags(lock)
    lock.set_defaults(run=_lock)

    p = commands.add_parser("login", help="store registry credentials in Docker's config")
    p.add_argument("registry", metavar="REGISTRY", help="host[:port], e.g. ghcr.io")
    p.add_argument("--username", "-u", required=True, help="the user name")
    p.add_argument(
        "--password-stdin", action="store_true", required=True, help="read the password on stdin"
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    add_registry_flags(p)
    p.set_defaults(run=_login)

    out = commands.add_parser("logout", help="remove registry credentials from Docker's config")
    out.add_argument("registry", metavar="REGISTRY", help="host[:port]")
    out.add_argument("--debug", action="store_true", help="show tracebacks")
    out.set_defaults(run=_logout)


def _lock(args: argparse.Namespace) -> int:
    from builder.commands.lock import lock_path, render, resolve, write
    from builder.spec.load import load

    spec = load(Path(args.file))
    active = clients(args)
    try:
        base = resolve(spec, active)
    finally:
        active.close()
    path = lock_path(spec)
    write(path, render(base))
    what = f"{base.resolved}@{base.digest}" if base else "no registry base"
    print(f"wrote {path} ({what})", file=sys.stderr)
    return 0


def _login(args: argparse.Namespace) -> int:
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise UsageError("--password-stdin: no password on stdin")
    host = canonical_host(args.registry)
    config = clients(args).config
    from builder.registry.client import RegistryClient
    from builder.registry.credentials import login

    with RegistryClient(host, Credentials(args.username, password), config.options(host)) as c:
        c.ping()
    path = login(host, args.username, password)
    print(f"login succeeded; credentials for {host} stored via {path}", file=sys.stderr)
    return 0


def _logout(args: argparse.Namespace) -> int:
    from builder.registry.credentials import logout

    host = canonical_host(args.registry)
    if logout(host):
        print(f"removed credentials for {host}", file=sys.stderr)
    else:
        print(f"no credentials stored for {host}", file=sys.stderr)
    return 0
