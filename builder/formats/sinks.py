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


def write_output(
    output: Output,
    blobs: Sequence[Blob],
    root: Descriptor,
    tags: Sequence[str],
    created: int,
    platform: Platform | None,
    clients: Clients | None = None,
    jobs: int = 0,
    note: Note | None = None,
) -> tuple[str, ...]:
    """Write ``root`` and its ``blobs`` to one output; ``tags`` apply unless it names a tag.

    ``platform`` picks the image of an index for a docker-archive (None: the only one).
    A ``docker://`` output is pushed with ``clients`` (``jobs`` parallel blob uploads;
    no tag at all pushes by digest only). A local output is locked while it is
    written; ``note`` hears when that waits for another bale. Returns the
    references pushed (``REF@DIGEST``).
    """
    out_tags = (output.tag,) if output.tag else tuple(tags)
    if output.transport == "docker":
        from builder.registry.push import push

        active = clients or Clients()
        try:
            return push(output, blobs, root, out_tags, active, jobs).references
        finally:
            if active is not clients:
                active.close()
    if output.transport == "oci":
        write_layout(output.path, blobs, root, out_tags, note)
    elif output.transport == "oci-archive":
        write_oci_archive(output.path, blobs, root, out_tags, created, note)
    elif output.transport == "docker-archive":
        name = output.name or DEFAULT_NAME
        write_docker_archive(output.path, blobs, root, name, out_tags, platform, created, note)
    else:
        raise AssertionError(f"unhandled transport {output.transport}")
    return ()
