"""``bale verify``: build twice in differently made copies of the context, compare.

The two copies differ in everything a reproducible build must ignore: file
mtimes, the umask, the order files are created in, and the working directory.
Equal root digests, and equal digests of every SBOM and provenance artifact,
prove the build reproducible here; otherwise ``diff`` says where the two
images part.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from builder.atomic import temp_dir
from builder.commands.build import BuildOptions, build
from builder.commands.diff import Difference, diff_sources
from builder.formats.layout import LayoutStore
from builder.formats.locate import Source
from builder.model import Descriptor
from builder.spec.load import load
from builder.spec.locations import Output

Prepare = Callable[[Path], None]
# (umask, reverse creation order, mtime shift in seconds) of the two copies.
_VARIANTS = ((0o022, False, 0), (0o077, True, 86_400 * 400 + 7))


Artifacts = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class VerifyResult:
    first: Descriptor
    second: Descriptor
    differences: tuple[Difference, ...]
    # (artifact type, manifest digest) of each build's referrers (SBOMs, provenance).
    first_artifacts: Artifacts = ()
    second_artifacts: Artifacts = ()

    @property
    def reproducible(self) -> bool:
        same_image = self.first.digest == self.second.digest
        return same_image and self.first_artifacts == self.second_artifacts

    @property
    def differing_artifacts(self) -> list[str]:
        """The artifact types whose digests differ between the builds, each once."""
        pairs = zip(self.first_artifacts, self.second_artifacts, strict=False)
        differing = [a[0] for a, b in pairs if a != b]
        if len(self.first_artifacts) != len(self.second_artifacts):
            differing += [a[0] for a in (*self.first_artifacts, *self.second_artifacts)]
        return list(dict.fromkeys(differing))

    @property
    def first_file(self) -> Difference | None:
        """The first differing file, the usual answer to "what is not reproducible?"."""
        return next((d for d in self.differences if d.is_file), None)


def verify(options: BuildOptions, prepare: Prepare | None = None) -> VerifyResult:
    """Build ``options`` twice; ``prepare`` (tests only) may alter each copied context."""
    spec = options.spec_path.resolve()
    # Loaded here so a bad image.toml is reported under its own name, not a copy's,
    # and so a base given by a path outside the context stays reachable from the copies.
    original = load(spec)
    with temp_dir("verify") as work:
        roots = []
        artifacts: list[Artifacts] = []
        for number, (umask, reverse, shift) in enumerate(_VARIANTS, 1):
            base = work / str(number)
            context = base / "context"
            with _umask(umask):
                copy_tree(spec.parent, context, reverse, shift)
                if prepare is not None:
                    prepare(context)
                layout = base / "image"
                run = replace(
                    options,
                    spec_path=context / spec.name,
                    outputs=(Output("oci", layout),),
                    tags=("verify",),
                    cache_from=(),  # cold builds: a registry cache would prove nothing
                    cache_to=(),
                )
                copied = replace(load(run.spec_path), base_ref=original.base_ref)
                with _cwd(context if number == 1 else base):
                    result = build(run, copied)
                roots.append(result.root)
                artifacts.append(
                    tuple(
                        (r.artifact_type, str(r.manifest.descriptor.digest))
                        for r in result.referrers
                    )
                )
        differences: tuple[Difference, ...] = ()
        if roots[0].digest != roots[1].digest:
            a, b = (LayoutStore(work / n / "image") for n in ("1", "2"))
            differences = tuple(
                diff_sources(Source("A", a, roots[0]), Source("B", b, roots[1]), None)
            )
    return VerifyResult(roots[0], roots[1], differences, artifacts[0], artifacts[1])


def copy_tree(
    source: Path,
    target: Path,
    reverse: bool,
    shift: int,
    links: dict[tuple[int, int], Path] | None = None,
) -> None:
    """Copy a directory as the build reads it: modes, symlinks, hardlinks and FIFOs kept.

    Order and mtimes are varied on request. Files sharing an inode in the
    context share one in the copy (``links`` maps an inode to its first copy),
    so the layer gets the same hardlink entries. Sockets and devices are left
    out: a build refuses them anyway.
    """
    links = {} if links is None else links
    target.mkdir(parents=True)
    for name in sorted(os.listdir(source), reverse=reverse):
        src, dst = source / name, target / name
        st = src.lstat()
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), dst)
            continue
        if stat.S_ISDIR(st.st_mode):
            copy_tree(src, dst, reverse, shift, links)
        elif stat.S_ISREG(st.st_mode):
            first = links.get((st.st_dev, st.st_ino))
            if first is not None:
                os.link(first, dst)
                continue
            shutil.copyfile(src, dst)
            if st.st_nlink > 1:
                links[(st.st_dev, st.st_ino)] = dst
        elif stat.S_ISFIFO(st.st_mode):
            os.mkfifo(dst)
        else:
            continue
        os.chmod(dst, st.st_mode & 0o7777)
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns + shift * 1_000_000_000))


@contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@contextmanager
def _cwd(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)
