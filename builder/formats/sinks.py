"""Writing a finished image to each ``--output``: layouts, archives and registries.

The build's blobs are made once and handed to every sink, so several
``--output`` flags share the work.
"""

from __future__ import annotations

from collections.abc import Sequence

from builder.formats.archive import DEFAULT_NAME, write_docker_archive, write_oci_archive
from builder.formats.layout import write_layout
from builder.locking import Note
from builder.model import Blob, Descriptor, Platform
from builder.registry.options import Clients
from builder.spec.locations import Output
from builder.supply.attachment import Referrer, referrer_blobs


def write_output(
    output: Output,
    blobs: Sequence[Blob],
    root: Descriptor,
    tags: Sequence[str],
    created: int,
    platform: Platform | None,
    clients: Clients | None = None,
    jobs: int = 0,
    referrers: Sequence[Referrer] = (),
    note: Note | None = None,
) -> tuple[str, ...]:
    """Write ``root`` and its ``blobs`` to one output; ``tags`` apply unless it names a tag.

    ``platform`` picks the image of an index for a docker-archive (None: the only one).
    A ``docker://`` output is pushed with ``clients`` (``jobs`` parallel blob uploads;
    no tag at all pushes by digest only). Returns the references pushed (``REF@DIGEST``).

    ``referrers`` (signatures, SBOMs, attestations) go beside the image in a layout
    (listed untagged in index.json) and in a push; the archives leave them out
    (the caller says so with ``dropped_note``). A local output is
    locked while it is written; ``note`` hears when that waits for another bale.
    """
    out_tags = (output.tag,) if output.tag else tuple(tags)
    if output.transport == "docker":
        from builder.registry.push import push

        active = clients or Clients()
        try:
            return push(output, blobs, root, out_tags, active, jobs, referrers).references
        finally:
            if active is not clients:
                active.close()
    if output.transport == "oci":
        listed = [r.descriptor for r in referrers]
        blobs_out = [*blobs, *referrer_blobs(referrers, blobs)]
        write_layout(output.path, blobs_out, root, out_tags, listed, note)
    elif output.transport == "oci-archive":
        write_oci_archive(output.path, blobs, root, out_tags, created, note)
    elif output.transport == "docker-archive":
        name = output.name or DEFAULT_NAME
        write_docker_archive(output.path, blobs, root, name, out_tags, platform, created, note)
    else:
        raise AssertionError(f"unhandled transport {output.transport}")
    return ()


def dropped_note(output: Output, referrers: Sequence[Referrer]) -> str | None:
    """What an archive output leaves out of the referrers, as one note line (None: nothing).

    A docker-archive has no place for them. An oci-archive could list them in
    its index.json, but ``podman load`` and skopeo (containers/image) then
    refuse it ("more than one image"), so it holds the image alone.
    """
    if not referrers or output.transport not in ("docker-archive", "oci-archive"):
        return None
    why = "has no place for" if output.transport == "docker-archive" else "is kept loadable without"
    return (
        f"note: {output} {why} the signatures, SBOM and provenance (OCI 1.1 referrers); "
        "they are left out of it. Add an oci:DIR output or push to keep them beside the image"
    )
