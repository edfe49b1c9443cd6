"""Registry flags shared by commands, and the ``lock``, ``login``, ``logout`` subcommands."""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from builder.cachedir import LOCATIONS_FILE, cache_dir
from builder.errors import UsageError
from builder.registry.credentials import Credentials, canonical_host
from builder.registry.options import DEFAULT_RETRY, Clients, RegistryConfig, Timeouts

_MAX_TRIES = 100


def add_registry_flags(parser: argparse.ArgumentParser) -> None:
    """``--ca-cert``, ``--insecure-registry``, ``--verbose``, timeouts and retries."""
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
    defaults = Timeouts()
    parser.add_argument(
        "--connect-timeout",
        metavar="SECONDS",
        help=f"wait this long for a registry connection (env BALE_CONNECT_TIMEOUT; "
        f"default {defaults.connect:g})",
    )
    parser.add_argument(
        "--read-timeout",
        metavar="SECONDS",
        help=f"wait this long for each answer or read (env BALE_READ_TIMEOUT; "
        f"default {defaults.read:g})",
    )
    parser.add_argument(
        "--retries",
        metavar="N",
        help=f"tries per registry request (env BALE_RETRIES; default {DEFAULT_RETRY.tries})",
    )


def clients(args: argparse.Namespace) -> Clients:
    """The registry clients of one command, configured from its flags."""
    insecure = frozenset(canonical_host(h) for h in args.insecure_registry)
    defaults = Timeouts()
    timeouts = Timeouts(
        _seconds(args, "connect_timeout", "BALE_CONNECT_TIMEOUT", defaults.connect),
        _seconds(args, "read_timeout", "BALE_READ_TIMEOUT", defaults.read),
    )
    retry = replace(DEFAULT_RETRY, tries=_tries(args))
    config = RegistryConfig(
        args.ca_cert,
        insecure,
        args.verbose,
        retry=retry,
        timeouts=timeouts,
        locations_file=cache_dir() / LOCATIONS_FILE,
    )
    return Clients(config)


def _setting(args: argparse.Namespace, name: str, env: str) -> tuple[str, str] | None:
    """The flag's value, else the environment's, with where it came from."""
    flag = getattr(args, name, None)
    if flag is not None:
        return str(flag), "--" + name.replace("_", "-")
    value = os.environ.get(env, "").strip()
    return (value, env) if value else None


def _seconds(args: argparse.Namespace, name: str, env: str, default: float) -> float:
    found = _setting(args, name, env)
    if found is None:
        return default
    text, source = found
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (0 < value <= 86400):
        raise UsageError(f"{source}={text!r}: give a number of seconds above 0, at most 86400")
    return value


def _tries(args: argparse.Namespace) -> int:
    found = _setting(args, "retries", "BALE_RETRIES")
    if found is None:
        return DEFAULT_RETRY.tries
    text, source = found
    if not text.isdecimal() or not 1 <= int(text) <= _MAX_TRIES:
        raise UsageError(f"{source}={text!r}: give a whole number of tries from 1 to {_MAX_TRIES}")
    return int(text)


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
