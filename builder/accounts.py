"""/etc/passwd and /etc/group: read from the base, merged with [[users]]/[[groups]], rendered.

Owners and ``[config] user`` written as names resolve through the merged
files; an unknown name is an error. Lines bale does not declare are kept
byte for byte, in their order.
"""

from __future__ import annotations

from dataclasses import dataclass

from builder.errors import SourceError
from builder.specvalues import GroupSpec, Owner, UserSpec

PASSWD = "etc/passwd"
GROUP = "etc/group"


@dataclass(frozen=True, slots=True)
class Accounts:
    """The account databases as lines of fields (``name:x:...`` split on ':')."""

    passwd: tuple[tuple[str, ...], ...] = ()
    group: tuple[tuple[str, ...], ...] = ()

    @classmethod
    def parse(cls, passwd: bytes | None, group: bytes | None) -> Accounts:
        return cls(_lines(passwd, 7), _lines(group, 4))

    def merged(self, users: tuple[UserSpec, ...], groups: tuple[GroupSpec, ...]) -> Accounts:
        """Declared users and groups replace same-named lines or are appended."""
        passwd = {fields[0]: fields for fields in self.passwd}
        for user in users:
            gecos = passwd[user.name][4] if user.name in passwd else ""
            passwd[user.name] = (
                user.name,
                "x",
                str(user.uid),
                str(user.gid),
                gecos,
                user.home,
                user.shell,
            )
        group = {fields[0]: fields for fields in self.group}
        for declared in groups:
            old = group[declared.name][3].split(",") if declared.name in group else []
            members = [m for m in dict.fromkeys([*old, *declared.members]) if m]
            group[declared.name] = (declared.name, "x", str(declared.gid), ",".join(members))
        return Accounts(tuple(passwd.values()), tuple(group.values()))

    def render(self) -> tuple[bytes, bytes]:
        return _render(self.passwd), _render(self.group)

    def uid_gid(self, name: str) -> tuple[int, int] | None:
        for fields in self.passwd:
            if fields[0] == name and fields[2].isdigit() and fields[3].isdigit():
                return int(fields[2]), int(fields[3])
        return None

    def gid(self, name: str) -> int | None:
        for fields in self.group:
            if fields[0] == name and fields[2].isdigit():
                return int(fields[2])
        return None

    def resolve(self, owner: Owner, where: str) -> tuple[int, int]:
        """``user[:group]`` (names or ids) → numeric ids; a user alone takes its primary group."""
        uid, primary = self._user(owner.user, where)
        if not owner.group:
            return uid, primary
        if owner.group.isdigit():
            return uid, int(owner.group)
        gid = self.gid(owner.group)
        if gid is None:
            raise SourceError(
                f"{where}: group '{owner.group}' is not in the image's /etc/group; "
                "declare it in [[groups]] or use a numeric GID"
            )
        return uid, gid

    def _user(self, user: str, where: str) -> tuple[int, int]:
        if user.isdigit():
            return int(user), int(user)
        found = self.uid_gid(user)
        if found is None:
            raise SourceError(
                f"{where}: user '{user}' is not in the image's /etc/passwd; "
                "declare it in [[users]] or use a numeric UID"
            )
        return found

    def check_user(self, text: str, where: str) -> None:
        """``[config] user`` must name known accounts (ids pass)."""
        user, _, group = text.partition(":")
        self.resolve(Owner(user, group), where)


def _lines(data: bytes | None, width: int) -> tuple[tuple[str, ...], ...]:
    if not data:
        return ()
    text = data.decode("utf-8", "surrogateescape")
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = tuple(line.split(":"))
        rows.append(fields + ("",) * (width - len(fields)) if len(fields) < width else fields)
    return tuple(rows)


def _render(rows: tuple[tuple[str, ...], ...]) -> bytes:
    return "".join(":".join(fields) + "\n" for fields in rows).encode("utf-8", "surrogateescape")
