"""``bale login`` / ``bale logout``: edit Docker's config.json the way ``docker login`` does.

Credentials go to the configured credential helper when there is one
(``credHelpers[host]`` or ``credsStore``), otherwise into ``auths`` as base64
``user:password``. The file is replaced atomically and kept at mode 0600.
Checking the credentials against the registry is the caller's job (ping first).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from builder.atomic import atomic_write
from builder.errors import AuthError
from builder.registry.credentials import canonical_host, docker_config_path, load_config, server_url
from builder.registry.credhelper import helper_erase, helper_store


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
