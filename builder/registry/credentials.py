"""Registry credentials: where Docker and podman keep them, how to read them, the
docker-credential-helpers protocol, and ``bale login``/``logout`` (which edit
Docker's config.json the way ``docker login`` does).

Lookup order for a registry host (first hit wins):

1. Docker's config.json (``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``):
   ``credHelpers[host]``, else ``credsStore``, else the ``auths`` entry.
2. ``$REGISTRY_AUTH_FILE`` (containers auth.json).
3. ``$XDG_RUNTIME_DIR/containers/auth.json``.

Secrets never appear in a repr, a log or an error message.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.atomic import atomic_write
from builder.errors import AuthError
from builder.reference import DOCKER_HUB, HUB_ALIASES

HUB_SERVER_URL = "https://index.docker.io/v1/"


@dataclass(frozen=True, slots=True)
class Credentials:
    """A username with a password, or an identity (refresh) token."""

    username: str = ""
    password: str = ""
    identity_token: str = ""

    @property
    def anonymous(self) -> bool:
        return not (self.username or self.password or self.identity_token)

    def __repr__(self) -> str:
        secret = "identity token" if self.identity_token else "password"
        hidden = "<hidden>" if (self.password or self.identity_token) else "<none>"
        return f"Credentials(username={self.username!r}, {secret}={hidden})"

    __str__ = __repr__


ANONYMOUS = Credentials()


def basic_header(credentials: Credentials) -> str:
    """The Authorization value for Basic auth; never log it."""
    pair = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def canonical_host(server: str) -> str:
    """The registry host a config key names: drop scheme and path, fold Hub aliases."""
    host = server.split("://", 1)[-1].split("/", 1)[0].lower()
    return DOCKER_HUB if host in HUB_ALIASES else host


def server_url(host: str) -> str:
    """The key Docker files a host under (and gives to credential helpers)."""
    return HUB_SERVER_URL if canonical_host(host) == DOCKER_HUB else host


def docker_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def containers_auth_paths() -> list[Path]:
    paths = []
    if os.environ.get("REGISTRY_AUTH_FILE"):
        paths.append(Path(os.environ["REGISTRY_AUTH_FILE"]))
    if os.environ.get("XDG_RUNTIME_DIR"):
        paths.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    return paths


def find_credentials(host: str) -> Credentials:
    """Credentials for a registry host, or ANONYMOUS when none are configured."""
    want = canonical_host(host)
    docker = load_config(docker_config_path())
    found = _from_docker_config(docker, want, docker_config_path())
    if found is not None:
        return found
    for path in containers_auth_paths():
        found = _from_auths(load_config(path).get("auths"), want, path)
        if found is not None:
            return found
    return ANONYMOUS


def _from_docker_config(config: Mapping[str, Any], host: str, path: Path) -> Credentials | None:
    helpers = config.get("credHelpers") or {}
    helper = _helper_for(helpers, host) or config.get("credsStore")
    if isinstance(helper, str) and helper:
        found = helper_get(helper, server_url(host))
        if found is not None:
            return _from_helper(found)
    return _from_auths(config.get("auths"), host, path)


def _helper_for(helpers: Mapping[str, Any], host: str) -> str | None:
    for key, name in helpers.items():
        if canonical_host(key) == host and isinstance(name, str):
            return name
    return None


def _from_helper(pair: tuple[str, str]) -> Credentials:
    username, secret = pair
    if username == "<token>":
        return Credentials(identity_token=secret)
    return Credentials(username=username, password=secret)


def _from_auths(auths: Any, host: str, path: Path) -> Credentials | None:
    if not isinstance(auths, Mapping):
        return None
    for key, entry in auths.items():
        if canonical_host(str(key)) == host and isinstance(entry, Mapping):
            found = _decode_entry(entry, key, path)
            if not found.anonymous:
                return found
    return None


def _decode_entry(entry: Mapping[str, Any], key: str, path: Path) -> Credentials:
    token = str(entry.get("identitytoken") or "")
    encoded = str(entry.get("auth") or "")
    if not encoded:
        user, password = str(entry.get("username") or ""), str(entry.get("password") or "")
        return Credentials(user, password, token)
    try:
        user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        sep = ""
    if not sep:
        raise AuthError(
            f"the 'auth' value for '{key}' in {path} is not base64 'user:password'; "
            f"log in again to rewrite it"
        )
    return Credentials(user, password, token)


def load_config(path: Path) -> dict[str, Any]:
    """A JSON config file as a dict; missing means empty."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise AuthError(f"cannot read credentials file {path}: {exc.strerror}") from None
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise AuthError(f"{path} is not valid JSON (line {exc.lineno}): fix or remove it") from None
    except RecursionError:
        raise AuthError(f"{path} is nested too deeply to be JSON: fix or remove it") from None
    if not isinstance(data, dict):
        raise AuthError(f"{path} must hold a JSON object")
    return data


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
    except (json.JSONDecodeError, KeyError, TypeError, RecursionError):
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


def login(host: str, username: str, password: str, config: Path | None = None) -> Path:
    """Store credentials for ``host``; returns the config file written."""
    if not username or not password:
        raise AuthError(f"login to {host} needs both a username and a password")
    path = config or docker_config_path()
    data = load_config(path)
    auths = _auths(data, path)
    key = server_url(host)
    _drop_entries(auths, host)
    helper = _helper(data, host)
    if helper:
        helper_store(helper, key, username, password)
        auths[key] = {}
    else:
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        auths[key] = {"auth": token}
    write_config(path, data)
    return path


def logout(host: str, config: Path | None = None) -> bool:
    """Forget credentials for ``host``; False when there were none."""
    path = config or docker_config_path()
    data = load_config(path)
    auths = _auths(data, path)
    removed = _drop_entries(auths, host)
    helper = _helper(data, host)
    if helper:
        removed = helper_erase(helper, server_url(host)) or removed
    if removed:
        write_config(path, data)
    return removed


def write_config(path: Path, data: dict[str, Any]) -> None:
    """Atomically replace ``path`` with ``data`` as JSON, mode 0600."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with atomic_write(path, mode=0o600) as out:
            out.write((json.dumps(data, indent="\t") + "\n").encode())
    except OSError as exc:
        raise AuthError(f"cannot write {path}: {exc.strerror}; check its directory") from None


def _auths(data: dict[str, Any], path: Path) -> dict[str, Any]:
    auths = data.setdefault("auths", {})
    if not isinstance(auths, dict):
        raise AuthError(f"'auths' in {path} must be a JSON object")
    return auths


def _drop_entries(auths: dict[str, Any], host: str) -> bool:
    want = canonical_host(host)
    keys = [key for key in auths if canonical_host(key) == want]
    for key in keys:
        del auths[key]
    return bool(keys)


def _helper(data: dict[str, Any], host: str) -> str:
    want = canonical_host(host)
    for key, name in (data.get("credHelpers") or {}).items():
        if canonical_host(key) == want and isinstance(name, str):
            return name
    store = data.get("credsStore")
    return store if isinstance(store, str) else ""
