"""``bale check-signatures`` and the ``--sign-key`` of ``bale build``.

Keys are read here (the edge); the passphrase of an encrypted private key
comes only from the environment (BALE_SIGN_PASSWORD, else COSIGN_PASSWORD).
The crypto modules load only when a key is given.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from builder.cli.registry import add_registry_flags, clients
from builder.errors import SigningError
from builder.spec.locations import SOURCE_FORMS

if TYPE_CHECKING:
    from builder.supply.sign import SigningKey


def _read(path: Path, flag: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SigningError(f"{flag} {path}: cannot read it ({exc.strerror or exc})") from None


def signing_key(path: Path | None) -> SigningKey | None:
    """The ``--sign-key`` private key, loaded before anything is built or written."""
    if path is None:
        return None
    from builder.supply.sign import load_signing_key

    return load_signing_key(_read(path, "--sign-key"), f"--sign-key {path}", os.environ)


def add_sign_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sign-key",
        type=Path,
        metavar="FILE",
        help=(
            "sign the image (cosign format) and its attestations (DSSE) with this "
            "ECDSA P-256 or Ed25519 PEM private key, or a cosign.key; passphrase from "
            "BALE_SIGN_PASSWORD (or COSIGN_PASSWORD)"
        ),
    )


def add_check_signatures(commands: Any) -> None:
    p = commands.add_parser(
        "check-signatures",
        help="check an image's signatures and attestations against a public key (exit 1 if not)",
    )
    p.add_argument("source", metavar="SRC", help=" | ".join(SOURCE_FORMS))
    p.add_argument("--key", type=Path, required=True, metavar="PUB.pem", help="the public key")
    p.add_argument("--platform", help="only this OS/ARCH[/VARIANT] of an index")
    p.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing; exit code only")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    add_registry_flags(p)
    p.set_defaults(run=_check)


def _check(args: argparse.Namespace) -> int:
    from builder.cli.images import parse_platform
    from builder.commands.signatures import FAILED, check_signatures, report
    from builder.formats.locate import open_source
    from builder.supply.sign import load_verify_key

    key = load_verify_key(_read(args.key, "--key"), f"--key {args.key}")
    platform = parse_platform(args.platform)
    with clients(args) as active, open_source(args.source, active) as source:
        checks = check_signatures(source, key, platform)
    failed = any(c.status == FAILED for c in checks)
    if args.json:
        print(json.dumps(report(checks), indent=2, sort_keys=True))
    elif not args.quiet:
        print(args.source)
        for check in checks:
            print(f"  {check.line()}")
        print("verified" if not failed else "NOT verified")
    return 1 if failed else 0
