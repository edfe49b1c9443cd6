"""Merging [[users]]/[[groups]] into a base's /etc/passwd and /etc/group; name resolution."""

from __future__ import annotations

import pytest

from builder.errors import SourceError
from builder.layer.accounts import Accounts
from builder.spec.values import GroupSpec, Owner, UserSpec

PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
GROUP = b"root:x:0:\nwheel:x:10:root\n"


def merged() -> Accounts:
    return Accounts.parse(PASSWD, GROUP).merged(
        (
            UserSpec("app", 1000, 1000, "/home/app", "/bin/sh"),
            UserSpec("nobody", 65534, 65534, "/nonexistent", "/usr/sbin/nologin"),
        ),
        (GroupSpec("app", 1000), GroupSpec("wheel", 10, ("app",))),
    )


def test_render_keeps_base_lines_and_order() -> None:
    passwd, group, shadow = merged().render()
    assert shadow is None
    assert passwd == (
        b"root:x:0:0:root:/root:/bin/sh\n"
        b"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        b"app:x:1000:1000::/home/app:/bin/sh\n"
    )
    assert group == b"root:x:0:\nwheel:x:10:root,app\napp:x:1000:\n"


def test_created_when_absent() -> None:
    accounts = Accounts.parse(None, None).merged((), (GroupSpec("g", 5, ("a", "b")),))
    passwd, group, shadow = accounts.render()
    assert passwd == b"" and shadow is None
    assert group == b"g:x:5:a,b\n"


def test_shadow_of_the_base_gets_locked_entries_for_new_users() -> None:
    base_shadow = b"root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n"
    users = (
        UserSpec("app", 1000, 1000, "/home/app", "/bin/sh"),
        UserSpec("nobody", 65534, 65534, "/nonexistent", "/usr/sbin/nologin"),
    )
    _, _, shadow = Accounts.parse(PASSWD, GROUP, base_shadow).merged(users, ()).render()
    assert shadow == base_shadow + b"app:!::0:99999:7:::\n"


@pytest.mark.parametrize(
    ("owner", "ids"),
    [
        (Owner("app"), (1000, 1000)),
        (Owner("app", "wheel"), (1000, 10)),
        (Owner("root", "app"), (0, 1000)),
        (Owner("7", "8"), (7, 8)),
        (Owner("7"), (7, 7)),
        (Owner("app", "44"), (1000, 44)),
    ],
)
def test_resolve(owner: Owner, ids: tuple[int, int]) -> None:
    assert merged().resolve(owner, "here") == ids


@pytest.mark.parametrize(
    ("owner", "message"),
    [(Owner("ghost"), "user 'ghost' is not in"), (Owner("app", "ghosts"), "group 'ghosts'")],
)
def test_unknown_names(owner: Owner, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        merged().resolve(owner, "here")


def test_check_user() -> None:
    merged().check_user("app:wheel", "cfg")
    with pytest.raises(SourceError, match="cfg: user 'www'"):
        merged().check_user("www", "cfg")
