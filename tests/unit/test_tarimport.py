"""Tarball imports: every compression, normalisation, and malicious archives refused."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from builder.cli.main import main
from builder.errors import SourceError
from builder.layer.entries import Kind
from builder.layer.tarimport import import_tar
from tests.fuzz.tar_attacks import long_name_claim

Member = tuple[str, bytes | None, dict[str, str]]


def make_tar(members: list[tarfile.TarInfo], data: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info in members:
            payload = data.get(info.name)
            if payload is not None:
                info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return out.getvalue()


def info(
    name: str, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644
) -> tarfile.TarInfo:
    item = tarfile.TarInfo(name)
    item.type, item.linkname, item.mode = kind, link, mode
    item.uid = item.gid = 33
    item.mtime = 1234567
    return item


def rootfs() -> bytes:
    setuid = info("usr/bin/su", mode=0o4755)
    setuid.pax_headers = {"SCHILY.xattr.user.k": "v"}
    members = [
        info("./etc", tarfile.DIRTYPE, mode=0o755),
        info("./etc/hostname"),
        setuid,
        info("usr/bin/sudo", tarfile.LNKTYPE, "usr/bin/su"),
        info("bin", tarfile.SYMTYPE, "usr/bin"),
        info("etc/.wh.old"),
    ]
    return make_tar(members, {"./etc/hostname": b"box\n", "usr/bin/su": b"ELF", "etc/.wh.old": b""})


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "none": lambda b: b,
    "gzip": lambda b: gzip.compress(b, mtime=0),
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
    "bzip2": bz2.compress,
    "xz": lzma.compress,
}


@pytest.mark.parametrize("codec", sorted(COMPRESSORS))
def test_every_compression(codec: str, tmp_path: Path) -> None:
    # a misleading name: detection is by content
    source = tmp_path / "rootfs.tar.gz"
    source.write_bytes(COMPRESSORS[codec](rootfs()))
    imported = import_tar(source, tmp_path, "layers[0]")
    by_path = {e.path: e for e in imported.entries}
    assert sorted(by_path) == [
        "bin",
        "etc",
        "etc/.wh.old",
        "etc/hostname",
        "usr/bin/su",
        "usr/bin/sudo",
    ]
    hostname = by_path["etc/hostname"]
    assert hostname.content is not None
    with hostname.content.open() as stream:
        assert stream.read() == b"box\n"
    su = by_path["usr/bin/su"]
    assert (su.mode, su.uid, su.gid) == (0o4755, 33, 33)
    assert su.xattrs == (("user.k", b"v"),)
    assert by_path["bin"].kind is Kind.SYMLINK and by_path["bin"].linkname == "usr/bin"
    assert imported.groups == (("usr/bin/su", "usr/bin/sudo"),)


def test_owner_override(tmp_path: Path) -> None:
    source = tmp_path / "r.tar"
    source.write_bytes(rootfs())
    imported = import_tar(source, tmp_path, "w", owner=(0, 0))
    assert {(e.uid, e.gid) for e in imported.entries} == {(0, 0)}


MALICIOUS: list[tuple[str, list[tarfile.TarInfo], str]] = [
    ("absolute", [info("/etc/passwd")], "member '/etc/passwd' has an absolute path"),
    ("dotdot", [info("a/../../evil")], "member 'a/../../evil' contains '..'"),
    (
        "symlink-escape",
        [info("a", tarfile.DIRTYPE), info("a/up", tarfile.SYMTYPE, "../../etc")],
        "symlink member 'a/up' -> '../../etc' points outside the root",
    ),
    (
        "write-through",
        [info("link", tarfile.SYMTYPE, "/etc"), info("link/cron")],
        "member 'link/cron' is written through a symlink",
    ),
    (
        "hardlink-outside",
        [info("h", tarfile.LNKTYPE, "/etc/shadow")],
        "member 'h' is a hardlink to '/etc/shadow', outside the tarball's root",
    ),
    (
        "hardlink-dotdot",
        [info("h", tarfile.LNKTYPE, "../x")],
        "member 'h' is a hardlink to '../x', outside",
    ),
    (
        "hardlink-unknown",
        [info("h", tarfile.LNKTYPE, "later"), info("later")],
        "member 'h' is a hardlink to 'later', which is not a file earlier",
    ),
    ("device", [info("dev/null", tarfile.CHRTYPE)], "member 'dev/null' is a device"),
]


@pytest.mark.parametrize(("name", "members", "message"), MALICIOUS, ids=[m[0] for m in MALICIOUS])
def test_malicious(name: str, members: list[tarfile.TarInfo], message: str, tmp_path: Path) -> None:
    source = tmp_path / "evil.tar"
    source.write_bytes(make_tar(members, {}))
    with pytest.raises(SourceError, match=message):
        import_tar(source, tmp_path, "layers[0]")


def test_not_a_tar(tmp_path: Path) -> None:
    source = tmp_path / "x.tar"
    source.write_bytes(b"hello, this is text\n" * 40)
    with pytest.raises(SourceError, match="not a tar archive"):
        import_tar(source, tmp_path, "layers[0]")


@pytest.mark.parametrize("link", ["dirlink/x.tar", "file.tar"])
def test_a_tar_reached_through_a_symlink_out_of_the_context_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], link: str
) -> None:
    """``tar =`` resolves like ``files.src``: a symlink may not lead out of the context."""

    outside = tmp_path / "outside"
    outside.mkdir()
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("secret")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"key"))
    (outside / "x.tar").write_bytes(data.getvalue())
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "dirlink").symlink_to("../outside")
    (context / "file.tar").symlink_to("../outside/x.tar")
    (context / "image.toml").write_text(f'[[layers]]\ntar = "{link}"\n')
    code = main(["build", "-f", str(context / "image.toml"), "-o", f"oci:{tmp_path}/out"])
    assert code == 1
    assert "outside the build context" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _bytes_under(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_an_oversized_header_is_refused_before_the_tarball_is_unpacked(tmp_path: Path) -> None:
    """A header claiming 2 GiB is refused as it streams past, not after writing it to disk.

    It used to be decompressed whole into the work directory first (64 MiB here).
    """
    source = tmp_path / "claim.tar.zst"
    source.write_bytes(zstandard.ZstdCompressor().compress(long_name_claim(b"L", 64 << 20)))
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(SourceError, match="GNU long-name header at byte 0 claims 2147483648"):
        import_tar(source, work, "layers[0]")
    assert _bytes_under(work) == 0


def test_only_file_bytes_are_kept_in_the_work_directory(tmp_path: Path) -> None:
    payload = b"x" * 5000
    source = tmp_path / "t.tar"
    members = [info("d", tarfile.DIRTYPE), info("d/f"), info("d/l", tarfile.SYMTYPE, "f")]
    source.write_bytes(make_tar(members, {"d/f": payload}))
    work = tmp_path / "work"
    work.mkdir()
    imported = import_tar(source, work, "layers[0]")
    assert _bytes_under(work) == len(payload)
    (entry,) = [e for e in imported.entries if e.kind is Kind.FILE]
    assert entry.content is not None
    with entry.content.open() as stream:
        assert stream.read() == payload
