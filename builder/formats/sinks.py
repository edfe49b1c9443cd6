"""Writing a finished image to each ``--output``: layouts, archives and registries.

The build's blobs are made once and handed to every sink, so several
``--output`` flags share the work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from builder.formats.archive import DEFAULT_NAME, write_docker_archive, write_oci_archive
from builder.formats.layout import write_layout
from builder.locking import Note
from builder.model import Blob, Descriptor, Platform
from builder.reference import DEFAULT_TAG
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

    ``referrers`` (signatures, SBOMs, attestations) go beside the image: in a
    layout listed untagged in index.json; in an oci-archive stored in ``blobs/``
    but not listed (index.json names the image alone, which ``podman load`` and
    skopeo need; readers find them by ``subject``); in a push after the image.
    A docker-archive leaves them out (``prepare_outputs`` says so). A local
    output is locked while it is written; ``note`` hears when that waits for
    another bale.
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
        blobs_out = [*blobs, *referrer_blobs(referrers, blobs)]
        write_oci_archive(output.path, blobs_out, root, out_tags, created, note)
    elif output.transport == "docker-archive":
        name = output.name or DEFAULT_NAME
        write_docker_archive(output.path, blobs, root, name, out_tags, platform, created, note)
    else:
        raise AssertionError(f"unhandled transport {output.transport}")
    return ()


def prepare_outputs(
    outputs: Sequence[Output],
    tags: Sequence[str],
    referrers: Sequence[Referrer],
    note: Note | None = None,
) -> tuple[Output, ...]:
    """The outputs as they will be written with ``referrers``; ``note`` hears what changes.

    An untagged layout that lists referrers gets the tag ``latest``: it then
    holds more than one manifest, and skopeo, podman and umoci need a tag to
    pick the image from it. A docker-archive has no place for referrers: it is
    written without them, said once per output.
    """
    prepared = []
    for output in outputs:
        if referrers and output.transport == "oci" and not output.tag and not tags:
            tagged = replace(output, tag=DEFAULT_TAG)
            _say(
                note,
                f"note: {output} is given the tag '{DEFAULT_TAG}': it lists the image's "
                "referrers (SBOM, provenance, signatures) too, so tools need a tag to pick "
                f"the image: {tagged}. Name a tag with -t or oci:DIR:TAG to choose another",
            )
            output = tagged
        elif referrers and output.transport == "docker-archive":
            _say(
                note,
                f"note: {output} has no place for the signatures, SBOM and provenance "
                "(OCI 1.1 referrers); they are left out of it. Add an oci:DIR or "
                "oci-archive:FILE output, or push, to keep them beside the image",
            )
        prepared.append(output)
    return tuple(prepared)


def _say(note: Note | None, message: str) -> None:
    if note is not None:
        note(message)
