"""Package indexes as pip finds them, and their credentials.

Order (the first that names an index wins): the layer's ``index_url``, the
lock's ``--index-url``, ``PIP_INDEX_URL``, pip.conf (``PIP_CONFIG_FILE``,
then the site, user and legacy user files, later ones overriding earlier),
else PyPI. Extra indexes add up from the lock, ``PIP_EXTRA_INDEX_URL`` and
pip.conf. Credentials come from the URL's userinfo or from netrc (``NETRC``,
else ``~/.netrc``); they are kept out of every URL shown to the user.
"""

from __future__ import annotations

import configparser
import netrc
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

PYPI = "https://pypi.org/simple"


@dataclass(frozen=True, slots=True)
class Index:
    """One simple index (``url`` without credentials) and the credentials for its host."""

    url: str
    username: str = ""
    password: str = ""

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    def secret_url(self) -> str:
        """The URL with its credentials, for pip's environment only (never shown)."""
        if not self.username and not self.password:
            return self.url
        parts = urlsplit(self.url)
        userinfo = f"{quote(self.username, safe='')}:{quote(self.password, safe='')}@"
        return urlunsplit(parts._replace(netloc=userinfo + parts.netloc))

    def auth_for(self, url: str) -> tuple[str, str] | None:
        """Credentials go only to the index's own host, never to a file host elsewhere."""
        if (self.username or self.password) and urlsplit(url).hostname == self.host:
            return (self.username, self.password)
        return None


def shown(url: str) -> str:
    """A URL fit for messages and logs: no userinfo, no query."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _pip_config_files() -> list[Path]:
    env = os.environ.get("PIP_CONFIG_FILE", "")
    if env == os.devnull:
        return []
    home = Path.home()
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(home / ".config")
    dirs = os.environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":")
    files = [Path(d) / "pip" / "pip.conf" for d in dirs] + [Path("/etc/pip.conf")]
    files += [home / ".pip" / "pip.conf", Path(xdg) / "pip" / "pip.conf"]
    if env:
        files.insert(0, Path(env))
    return files


def _pip_config() -> tuple[str, list[str]]:
    """index-url and extra-index-url from pip.conf ([global], then [install] overrides)."""
    index, extras = "", list[str]()
    for path in _pip_config_files():
        parser = configparser.RawConfigParser()
        try:
            parser.read(path)
        except (configparser.Error, OSError):
            continue
        for section in ("global", "install"):
            if parser.has_option(section, "index-url"):
                index = parser.get(section, "index-url").strip()
            if parser.has_option(section, "extra-index-url"):
                extras = parser.get(section, "extra-index-url").split()
    return index, extras


def _credentials(url: str) -> Index:
    parts = urlsplit(url)
    bare = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])).rstrip("/")
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    if not user and not password:
        path = os.environ.get("NETRC") or str(Path.home() / ".netrc")
        try:
            found = netrc.netrc(path).authenticators(parts.hostname or "")
        except (OSError, netrc.NetrcParseError):
            found = None
        if found is not None:
            user, password = found[0], found[2] or ""
    return Index(bare, user, password)


def indexes(layer_url: str, lock_url: str, lock_extras: tuple[str, ...]) -> tuple[Index, ...]:
    """The indexes to search, main first; only http(s) ones (pip's file:// ones are skipped)."""
    conf_index, conf_extras = _pip_config()
    env_extras = os.environ.get("PIP_EXTRA_INDEX_URL", "").split()
    main = layer_url or lock_url or os.environ.get("PIP_INDEX_URL", "") or conf_index or PYPI
    extras = [] if layer_url else [*lock_extras, *(env_extras or conf_extras)]
    urls = dict.fromkeys([main, *extras])
    return tuple(_credentials(u) for u in urls if u.startswith(("https://", "http://")))
