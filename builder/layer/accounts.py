"""/etc/passwd and /etc/group: read from the base, merged with [[users]]/[[groups]], rendered.

Owners and ``[config] user`` written as names resolve through the merged
files; an unknown name is an error. Lines bale does not declare are kept
byte for byte, in their order. When the base has /etc/shadow, a declared
user it lacks gets a locked entry there (``name:!::0:99999:7:::``, as
useradd writes it but with no date, which would change with the day).
"""

from __future__ import annotations

from dataclasses import dataclass

from builder.errors import SourceError
from builder.spec.values import GroupSpec, Owner, UserSpec

PASSWD = "etc/passwd"
GROUP = "etc/group"
SHADOW = "etc/shadow"
_LOCKED = ("!", "", "0", "99999", "7", "", "", "")


@dataclass(frozen=True, slots=True)
class Accounts:
    """The account databases as lines of fields (``name:x:...`` split on ':')."""

    passwd: tuple[tuple[str, ...], ...] = ()
    group: tuple[tuple[str, ...], ...] = ()
    shadow: tuple[tuple[str, ...], ...] | None = None

    @classmethod
    def parse(
        cls, passwd: bytes | None, group: bytes | None, shadow: bytes | None = None
    ) -> Accounts:
        """The base's files; ``shadow`` None when the base has no /etc/shadow."""
        return cls(
            _lines(passwd, 7), _lines(group, 4), None if shadow is None else _lines(shadow, 9)
        )

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
        shadow = None
        if self.shadow is not None:
            known = {fields[0] for fields in self.shadow}
            added = [(u.name, *_LOCKED) for u in users if u.name not in known]
            shadow = (*self.shadow, *dict.fromkeys(added))
        return Accounts(tuple(passwd.values()), tuple(group.values()), shadow)

    def render(self) -> tuple[bytes, bytes, bytes | None]:
        """passwd, group and (when the base has one) shadow, as file bytes."""
        shadow = None if self.shadow is None else _render(self.shadow)
        return _render(self.passwd), _render(self.group), shadow

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
