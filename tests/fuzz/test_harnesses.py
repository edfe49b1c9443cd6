"""Short, seeded runs of the three harnesses, and every defect of issue 12 they name.

Each case runs in the sandbox (tests/fuzz/sandbox.py): a forked bale under
RLIMIT_AS and a timeout, judged on its exit code, its one error line, what it
touched and whether it left the existing output alone. The long runs and
their figures are in docs/reliability.md.
"""

from __future__ import annotations

import pytest

from tests.fuzz import damaged_bases, tar_attacks, toml_fuzz
from tests.fuzz.images import Layout
from tests.fuzz.sandbox import Case, run

# The tarballs issue 12 names, in the modes it names them (plus the base and inspect
# modes of the same inputs): each once crashed, hung or was accepted.
TAR_DEFECTS = [
    "import/longname-claims-2GiB",
    "import/pax-claims-2GiB",
    "base/size-2^62-passwd",
    "base/pax-size-huge",
    "import/gzip-magic-zstd-body",
    "inspect/gzip-magic-zstd-body",
    "import/xz-magic-garbage",
    "import/zstd-truncated",
    "base/zstd-truncated",
    "import/cut-inside-header",
    "base/cut-inside-header",
    "inspect/cut-inside-header",
    "import/gzip-of-zeros-64MiB",
    "base/zstd-of-zeros-64MiB",
    "import/pax-path-nul",
    "import/pax-linkpath-nul",
    "import/pax-uid-2^40",
    "base/pax-uid-2^40",
    "inspect/pax-mtime-1e999",
    "import/pax-xattr-binary-name",
    "import/empty-name",
    "import/slip-dotdot",
]
DAMAGE_DEFECTS = [
    "build/config-nested-100000",
    "build/manifest-layer-size-1e999",
    "inspect/manifest-layers-int",
    "build/config-labels-list",
    "index/manifest-layer-digest-blake9",
    "build/docker-archive-repotags-int",
    "inspect/oci-archive-truncated",
    "inspect/layer-bit-flipped",
    "build/layer-bit-flipped",
    "build/layer-fifo",
    "inspect/layer-fifo",
    "build/oci-archive-fifo",
    "build/layer-symlink-dev-zero",
    "build/layer-symlink-host-file",
    "build/diff-id-mismatch",
    "build/manifest-layer-type-octet",
    "build/layer-not-gzip",
    "build/config-rootfs-list",
    "index/diff-id-mismatch",
    "index/layer-symlink-dev-zero",
]


def _by_name(cases: list[Case], names: list[str]) -> list[Case]:
    found = {c.name: c for c in cases}
    return [found[n] for n in names]


@pytest.mark.parametrize(
    "case", _by_name(list(tar_attacks.all_cases()), TAR_DEFECTS), ids=lambda c: c.name
)
def test_tarball_defect(case: Case) -> None:
    result = run(case, timeout=60)
    assert result.verdict == "error", (result.verdict, result.stderr[-2000:], result.notes)


@pytest.mark.parametrize(
    "case", _by_name(list(damaged_bases.all_cases()), DAMAGE_DEFECTS), ids=lambda c: c.name
)
def test_damaged_base_defect(case: Case) -> None:
    result = run(case, timeout=60)
    assert result.verdict == "error", (result.verdict, result.stderr[-2000:], result.notes)


def test_many_jobs_bounded_memory() -> None:
    """``-j 1000`` held 2 chunk buffers per thread: 8 GB for a 1-byte zstd layer."""
    toml = '[image]\ncompression = "zstd"\n[[layers]]\ncontent = [{ dst = "/f", text = "x" }]\n'

    def prepare(root):  # type: ignore[no-untyped-def]
        Layout().write(root / "out" / "layout")
        (root / "ctx" / "image.toml").write_text(toml)

    case = Case("jobs-1000", ("build", "-j", "1000", "-o", "oci:../out/layout:new"), prepare, True)
    result = run(case, timeout=120)
    assert result.verdict == "ok", (result.verdict, result.stderr[-2000:])


def test_toml_fuzz_short() -> None:
    """60 mutated image.toml files (seed 12): no traceback, hang, escape or clobbered output."""
    results = toml_fuzz.fuzz(60, seed=12, timeout=60)
    failed = [(r.name, r.verdict, r.stderr[-500:]) for r, _ in results if not r.passed]
    assert not failed
    assert {r.verdict for r, _ in results} <= {"ok", "error"}
    assert any(r.verdict == "error" for r, _ in results)


def test_tar_attacks_short() -> None:
    """A quick pass over a spread of the attack list in all three modes."""
    cases = list(tar_attacks.all_cases())[::9]
    results = [run(c, timeout=60) for c in cases]
    assert [(r.name, r.verdict) for r in results if not r.passed] == []


def test_damaged_bases_short() -> None:
    cases = list(damaged_bases.all_cases())[::29]
    results = [run(c, timeout=60) for c in cases]
    assert [(r.name, r.verdict) for r in results if not r.passed] == []


@pytest.mark.parametrize("name", ["build/layer-fifo", "build/config-nested-100000"])
def test_real_program_one_line(name: str) -> None:
    """The same judgement with the real ``bale`` program (a process of its own, not a fork)."""
    (case,) = _by_name(list(damaged_bases.all_cases()), [name])
    result = run(case, timeout=60, exec_=True)
    assert result.verdict == "error", (result.verdict, result.stderr[-2000:])
    assert len(result.stderr.strip().splitlines()) == 1


def test_checked_base_layer_remembered_and_copies_still_checked() -> None:
    """A sound base layer is read once per cache; a later bit flip is still caught on copy."""

    def good(root):  # type: ignore[no-untyped-def]
        Layout().write(root / "out" / "layout")
        Layout().write(root / "ctx" / "base")
        (root / "ctx" / "image.toml").write_text(
            damaged_bases.BUILD_TOML.format(base="oci:base:base")
        )

    def flipped_later(root):  # type: ignore[no-untyped-def]
        good(root)
        layout = Layout().fill()
        (root / "cache" / "checked").mkdir(parents=True)
        from builder.layer.cache import LayerCache
        from builder.model import Descriptor, Digest

        layer = Descriptor.from_json(layout.manifest["layers"][0])
        (LayerCache(root / "cache").checked_path(layer, Digest.parse(layout.diff_id))).touch()
        path = layout.blob_path(root / "ctx" / "base", layout.layer)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 1
        path.write_bytes(bytes(data))

    argv = ("build", "--no-sbom", "--no-provenance", "-o", "oci:../out/fresh:new")
    assert run(Case("good", argv, good, ok_allowed=True)).verdict == "ok"
    result = run(Case("flipped-after-check", argv, flipped_later))
    assert result.verdict == "error", (result.verdict, result.stderr)
    assert "does not match" in result.stderr or "expected" in result.stderr
