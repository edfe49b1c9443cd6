from __future__ import annotations

import builtins
from typing import Any

import pytest

from builder.errors import SourceError
from builder.layer.libmagic import describe


def test_describes_bytes() -> None:
    assert describe(b"\x1f\x8b\x08\x00" + bytes(20), mime=True) == "application/gzip"


def test_missing_libmagic_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_magic(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "magic":
            raise ImportError("failed to find libmagic")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_magic)
    with pytest.raises(SourceError, match="apt-get install libmagic1"):
        describe(b"\x7fELF")
