"""The streaming layer pipeline: bytes pinned, independent of threads, bounded memory."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path
from typing import BinaryIO

import pytest
import zstandard

from builder.errors import LayerError
from builder.layer.build import build_layer
from builder.layer.compress import ParallelCompressor, SerialLane
from builder.layer.entries import Entry, HostFile, InlineContent, Kind
from builder.layer.tarwriter import write_tar
from builder.model import Codec

BIG = (bytes(range(256)) * 4096 + b"bale " * 300_000) * 2  # about 5 MiB, crosses chunks
ENTRIES = [
    Entry("app", Kind.DIR, 0o755),
    Entry("app/big", Kind.FILE, 0o644, 0, 0, InlineContent(BIG)),
    Entry("app/run", Kind.FILE, 0o755, 1000, 1000, InlineContent(b"#!/bin/sh\necho hi\n")),
    Entry("app/link", Kind.SYMLINK, 0o777, linkname="run"),
]

DIFF_ID = "sha256:85be62a5407ef5f85d124c85b13a5c5e66e85572ad0786826128060cbb37d54c"
# Golden bytes: a change here changes every image's digests; explain it in the commit.
GOLDEN = {
    "gzip": ("sha256:0eb7de025d808d6d8aa68aed6d0376e52f875c8c057f8befc9e190aae39ba80b", DIFF_ID),
    "zstd": ("sha256:757a878d43377d1a3f3bdd69c3e82b80f424a74c94b3bab070cf0d4d9b191c77", DIFF_ID),
}


def _tar(entries: list[Entry]) -> bytes:
    out = io.BytesIO()
    write_tar(entries, 1_700_000_000, out.write)
    return out.getvalue()


@pytest.mark.parametrize("name", ["gzip", "zstd", "none"])
def test_blob_is_the_compressed_tar_whatever_the_thread_count(tmp_path: Path, name: str) -> None:
    codec = Codec.of(name)
    layers = [
        build_layer(ENTRIES, codec, 1_700_000_000, tmp_path / str(threads), threads=threads)
        for threads in (1, 2, 3)
    ]
    assert all(layer.descriptor == layers[0].descriptor for layer in layers)
    layer = layers[0]
    blob = layer.path.read_bytes()
    assert layer.descriptor.size == len(blob)
    assert layer.descriptor.digest.encoded == hashlib.sha256(blob).hexdigest()
    tar = _tar(ENTRIES)
    assert layer.diff_id.encoded == hashlib.sha256(tar).hexdigest()
    if name == "gzip":
        assert gzip.decompress(blob) == tar
    elif name == "zstd":
        reader = zstandard.ZstdDecompressor().stream_reader(blob, read_across_frames=True)
        assert reader.read() == tar
    else:
        assert blob == tar


@pytest.mark.parametrize("name", ["gzip", "zstd"])
def test_golden_layer_bytes(tmp_path: Path, name: str) -> None:
    layer = build_layer(ENTRIES, Codec.of(name), 1_700_000_000, tmp_path)
    assert (str(layer.descriptor.digest), str(layer.diff_id)) == GOLDEN[name]


def test_host_files_and_streams_without_readinto(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(BIG)

    class Plain:
        size = len(BIG)

        def open(self) -> BinaryIO:
            stream = io.BytesIO(BIG)
            return type(
                "S",
                (),
                {"read": stream.read, "__enter__": lambda s: s, "__exit__": lambda s, *a: None},
            )()  # type: ignore[return-value]

    host = HostFile.of(str(path), path.stat())
    layers = [
        build_layer([Entry("big", Kind.FILE, 0o644, content=c)], Codec.of("gzip"), 0, tmp_path)
        for c in (host, Plain(), InlineContent(BIG))
    ]
    assert all(layer.descriptor == layers[0].descriptor for layer in layers)


def test_a_file_changing_size_fails_and_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"12345")
    entry = Entry("f", Kind.FILE, 0o644, content=HostFile.of(str(path), path.stat()))
    path.write_bytes(b"1234567")
    out = tmp_path / "out"
    with pytest.raises(LayerError, match="changed size"):
        build_layer([*ENTRIES, entry], Codec.of("gzip"), 0, out)
    assert list(out.iterdir()) == []


CHUNK = Codec.of("gzip").chunk_size


@pytest.mark.parametrize(
    "size",
    [0, 5, CHUNK - 512 - 1, CHUNK - 512, CHUNK - 512 + 1, 3 * CHUNK - 512, 3 * CHUNK + 7],
)
@pytest.mark.parametrize("change", [b"", b"+", -1])
def test_host_files_read_exactly_or_fail_when_changed(
    tmp_path: Path, size: int, change: bytes | int
) -> None:
    """Sizes ending just before, at and after a chunk edge (the header takes 512 bytes)."""
    path = tmp_path / "f"
    data = os.urandom(size)
    path.write_bytes(data)
    entry = Entry("f", Kind.FILE, 0o644, content=HostFile.of(str(path), path.stat()))
    if change == -1:
        if not size:
            return
        path.write_bytes(data[:-1])
    elif change:
        path.write_bytes(data + change)
    if change:
        with pytest.raises(LayerError, match="changed size"):
            build_layer([entry], Codec.of("gzip"), 0, tmp_path / "out")
        return
    layer = build_layer([entry], Codec.of("gzip"), 0, tmp_path / "out")
    with gzip.open(layer.path) as blob, tarfile.open(fileobj=blob) as tar:
        member = tar.extractfile("f")
        assert member is not None and member.read() == data


def test_a_context_file_swapped_for_a_symlink_is_refused(tmp_path: Path) -> None:
    path, outside = tmp_path / "f", tmp_path / "secret"
    path.write_bytes(b"12345")
    outside.write_bytes(b"s3cr3")
    entry = Entry("f", Kind.FILE, 0o644, content=HostFile.of(str(path), path.stat()))
    path.unlink()
    path.symlink_to(outside)
    with pytest.raises(LayerError, match="became a symlink"):
        build_layer([entry], Codec.of("gzip"), 0, tmp_path / "out")
    assert not list((tmp_path / "out").iterdir())


def test_serial_lane_keeps_order_and_reports_the_first_error() -> None:
    seen: list[int] = []
    lane = SerialLane(2, "t")
    for i in range(50):
        lane.submit(seen.append, i)
    lane.close()
    assert seen == list(range(50))

    def boom(i: int) -> None:
        raise LayerError(f"bad {i}")

    lane = SerialLane(2, "t")
    lane.submit(boom, 1)
    lane.submit(boom, 2)
    with pytest.raises(LayerError, match="bad 1"):
        lane.close()


MEMORY_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from builder.model import Codec
    from builder.layer.entries import Entry, HostFile, InlineContent, Kind
    from builder.layer.build import build_layer
    import os
    kind, work = sys.argv[1], Path(sys.argv[2])
    if kind == "large":
        path = work / "sparse"
        with open(path, "wb") as f:
            f.truncate(512 << 20)
            f.seek(100 << 20)
            f.write(os.urandom(16 << 20))
        entries = [Entry("f", Kind.FILE, 0o644, content=HostFile.of(str(path), path.stat()))]
    else:
        entries = [Entry("d", Kind.DIR, 0o755)] + [
            Entry(f"d/{i:06d}", Kind.FILE, 0o644, content=InlineContent(b"%d" % i))
            for i in range(30000)
        ]
    build_layer(entries, Codec.of("gzip"), 0, work / "out", threads=2)
    # VmHWM belongs to this program's memory map: unlike ru_maxrss it does not
    # inherit the forking parent's size across exec.
    status = Path("/proc/self/status").read_text()
    print([line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")][0])
    """
)


@pytest.mark.parametrize("kind", ["large", "many"])
def test_peak_memory_stays_flat(tmp_path: Path, kind: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, kind, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    peak_kib = int(done.stdout.split()[-1])
    assert peak_kib < 150 * 1024, f"peak RSS {peak_kib} KiB"


def test_after_an_error_every_chunk_is_still_released() -> None:
    """The layer builder waits for released buffers: a failure must not strand one."""
    released: list[int] = []

    def out(raw: object, blob: object) -> None:
        raise OSError("disk full")

    compressor = ParallelCompressor(Codec.of("gzip"), out, 2)
    submitted = 0
    with pytest.raises(OSError, match="disk full"):
        for i in range(50):
            compressor.submit(b"x" * 1000, lambda i=i: released.append(i))
            submitted += 1
        compressor.close()
    compressor.abort()
    assert sorted(released) == list(range(submitted))
