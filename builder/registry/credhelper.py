"""The docker-credential-helpers protocol: ``docker-credential-<name> get|store|erase``.

The helper's output may echo secrets on failure, so errors quote only its
exit status and a short, secret-free hint.
"""

from __future__ import annotations

import json
import shutil
import subprocess

from builder.errors import AuthError

_TIMEOUT = 30.0
_NOT_FOUND = "credentials not found"


def helper_get(name: str, server_url: str) -> tuple[str, str] | None:
    """(username, secret) from a helper, or None when it has nothing for this server."""
    proc = _run(name, "get", server_url)
    if proc.returncode != 0:
        if _NOT_FOUND in proc.stdout.lower() or _NOT_FOUND in proc.stderr.lower():
            return None
        raise _failure(name, "get", server_url, proc.returncode)
    try:
        data = json.loads(proc.stdout)
        return str(data["Username"]), str(data["Secret"])
    except (json.JSONDecodeError, KeyError, TypeError):
        raise AuthError(
            f"docker-credential-{name} get for {server_url} printed something that is not "
            "JSON with Username and Secret; check the helper"
        ) from None


def helper_store(name: str, server_url: str, username: str, secret: str) -> None:
    payload = json.dumps({"ServerURL": server_url, "Username": username, "Secret": secret})
    proc = _run(name, "store", payload)
    if proc.returncode != 0:
        raise _failure(name, "store", server_url, proc.returncode)


def helper_erase(name: str, server_url: str) -> bool:
    """Erase; False when the helper had nothing stored."""
    proc = _run(name, "erase", server_url)
    if proc.returncode == 0:
        return True
    if _NOT_FOUND in proc.stdout.lower() or _NOT_FOUND in proc.stderr.lower():
        return False
    raise _failure(name, "erase", server_url, proc.returncode)


def _run(name: str, action: str, stdin: str) -> subprocess.CompletedProcess[str]:
    program = shutil.which(f"docker-credential-{name}")
    if program is None:
        raise AuthError(
            f"credential helper 'docker-credential-{name}' is configured in docker's "
            "config.json but is not on PATH: install it or remove it from the config"
        )
    try:
        return subprocess.run(
            [program, action],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AuthError(
            f"docker-credential-{name} {action} failed to run: {type(exc).__name__}"
        ) from None


def _failure(name: str, action: str, server_url: str, code: int) -> AuthError:
    return AuthError(
        f"docker-credential-{name} {action} for {server_url} exited with status {code}; "
        f"run 'echo {server_url} | docker-credential-{name} get' to investigate"
    )
