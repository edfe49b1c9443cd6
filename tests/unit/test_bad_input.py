"""image.toml and environment inputs that once crashed bale or built a broken image.

Each test names the defect of issue 12 it pins down; tarballs and damaged
bases are in tests/fuzz/test_harnesses.py (run in the bounded sandbox).
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from builder.cli.main import main
from builder.commands.build import created_time
from builder.errors import SpecError, UsageError
from builder.spec.capability import encode_capabilities, parse_capabilities
from builder.spec.load import load
from tests.helpers import write_toml

LAYER = '[[layers]]\ncontent = [{ dst = "/f", text = "x" }]\n'


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    return load(write_toml(tmp_path, text))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'files = [{ src = "a", dst = "/a/", exclude = ["[z-a]"] }]',
            r"exclude\[0\].*invalid pattern",
        ),
        (
            "files = [{ src = 'a', dst = '/a/', exclude = ['\\'] }]",
            r"exclude\[0\].*invalid pattern",
        ),
        ('content = [{ dst = "/", text = "x" }]', "'/' is the root directory"),
        ('symlinks = [{ path = "/", target = "/x" }]', "'/' is the root directory"),
        ('hardlinks = [{ path = "/", target = "/x" }]', "'/' is the root directory"),
        ('symlinks = [{ path = "/l", target = "a\\u0000b" }]', "NUL"),
        ('content = [{ dst = "/f", text = "x", xattrs = { "user.a=b" = "v" } }]', "without '='"),
        (
            'content = [{ dst = "/f", text = "x", owner = "4294967295" }]',
            "ids range from 0 to 4294967294",
        ),
        ('content = [{ dst = "/f", text = "x", owner = "0:99999999999999999999" }]', "ids range"),
        ('tar = "x.tar"\ntar_owner = "4294967296:0"', "ids range"),
    ],
)
def test_layer_inputs_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        _load(tmp_path, f"[[layers]]\n{text}\n")


@pytest.mark.parametrize(
    "created",
    ["9999-12-31T23:59:59-23:00", "0001-01-01T00:00:00+23:00", '"9999-12-31T23:59:59-01:00"'],
)
def test_created_out_of_range(tmp_path: Path, created: str) -> None:
    with pytest.raises(SpecError, match=r"created.*9999-12-31T23:59:59Z"):
        _load(tmp_path, f"[image]\ncreated = {created}\n{LAYER}")


def test_created_last_second_accepted(tmp_path: Path) -> None:
    spec = _load(tmp_path, f"[image]\ncreated = 9999-12-31T23:59:59Z\n{LAYER}")
    assert spec.created == 253402300799


def test_config_user_id_range(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="ids range"):
        _load(tmp_path, f'[config]\nuser = "4294967296"\n{LAYER}')


@pytest.mark.parametrize("value", ["²", "١٢٣", "1" * 20, "253402300800", "-1", "1e9"])
def test_source_date_epoch_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    spec = _load(tmp_path, LAYER)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", value)
    with pytest.raises(UsageError, match="SOURCE_DATE_EPOCH"):
        created_time(None, spec)


def test_source_date_epoch_last_second(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "253402300799")
    assert created_time(None, _load(tmp_path, LAYER)) == 253402300799


def test_source_date_epoch_flag_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_toml(tmp_path, LAYER)
    assert main(["build", "-f", str(path), "--source-date-epoch", "99999999999999"]) == 2
    assert "--source-date-epoch must be from 0 to 253402300799" in capsys.readouterr().err


def test_cap_checkpoint_restore() -> None:
    """The table's last entry was a broken literal: capability 40 was unknown."""
    assert parse_capabilities(["cap_checkpoint_restore=+ep"])["p"] == {40}
    value = encode_capabilities(["cap_checkpoint_restore=+ep"])
    assert int.from_bytes(value[12:16], "little") == 1 << (40 - 32)


def test_large_owner_id_written_as_pax(tmp_path: Path) -> None:
    """Ids beyond the ustar field (2^21 - 1) go in a PAX record; the top id is 2^32 - 2."""
    (tmp_path / "image.toml").write_text(
        "[image]\ncreated = 2024-01-01T00:00:00Z\n[[layers]]\ncompression = 'none'\n"
        'content = [{ dst = "/f", text = "x", owner = "4294967294:3000000" }]\n'
    )
    out = tmp_path / "out"
    assert main(["build", "-f", str(tmp_path / "image.toml"), "-o", f"oci:{out}", "-q"]) == 0
    layers = [p for p in (out / "blobs" / "sha256").iterdir() if p.stat().st_size > 1024]
    found = {}
    for path in layers:
        try:
            with tarfile.open(fileobj=io.BytesIO(path.read_bytes())) as tar:
                found.update({m.name: (m.uid, m.gid, m.pax_headers) for m in tar})
        except tarfile.TarError:
            continue
    uid, gid, pax = found["f"]
    assert (uid, gid) == (4294967294, 3000000)
    assert pax.get("uid") == "4294967294" and pax.get("gid") == "3000000"


def test_output_index_nested_too_deep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An existing output layout whose index.json nests deeper than Python's recursion."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (out / "index.json").write_bytes(b"[" * 100_000 + b"]" * 100_000)
    path = write_toml(tmp_path, LAYER)
    assert main(["build", "-f", str(path), "-o", f"oci:{out}", "-q"]) == 1
    err = capsys.readouterr().err
    assert err.count("bale: error:") == 1 and "nested more than 64 levels" in err
    assert (out / "index.json").read_bytes().startswith(b"[[[")
