"""python-magic, loaded only when a file's type must be told from its bytes.

libmagic is a system library pip cannot install; importing it lazily keeps
bale usable without it until an image actually needs it, and turns its
absence into a message that says what to install.
"""

from __future__ import annotations

from builder.errors import SourceError


def describe(head: bytes, *, mime: bool = False) -> str:
    """libmagic's description (or MIME type) of a file's first bytes."""
    try:
        import magic
    except ImportError as exc:
        raise SourceError(
            "python-magic cannot load libmagic, which bale needs to identify binaries and "
            "tarballs: install it (Debian/Ubuntu: apt-get install libmagic1; "
            f"Fedora: dnf install file-libs; macOS: brew install libmagic) ({exc})"
        ) from None
    return str(magic.from_buffer(head, mime=mime))
