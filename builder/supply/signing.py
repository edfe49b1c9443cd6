"""What ``--sign-key`` adds to a build: a cosign signature per manifest, a DSSE per attachment.

Every platform manifest and the index (what a tag names, so what ``cosign
verify REF:TAG`` looks up) gets a cosign signature referrer; every other
attachment the build carries (SBOM, provenance) gets a signed in-toto
Statement in a DSSE envelope, attached to the same subject.
"""

from __future__ import annotations

from collections.abc import Sequence

from builder.model import Descriptor
from builder.supply.attachment import Attachment, Referrer
from builder.supply.attest import sign_attachment
from builder.supply.cosign import sign_manifest
from builder.supply.sign import SigningKey


def attachment_of(referrer: Referrer) -> Attachment:
    """The attachment a referrer was made from: its type and its payload (last blob)."""
    payload = referrer.blobs[-1]
    with payload.open() as stream:
        data = stream.read()
    return Attachment(referrer.artifact_type, payload.descriptor.media_type, data)


def signatures(
    key: SigningKey,
    subjects: Sequence[Descriptor],
    attachments: Sequence[Referrer],
    reference: str,
    created: str,
) -> tuple[Referrer, ...]:
    """The signature referrers of ``subjects`` and of each attachment (same subject)."""
    signed = [sign_manifest(key, subject, reference, created) for subject in subjects]
    for referrer in attachments:
        attachment = attachment_of(referrer)
        signed.append(sign_attachment(key, attachment, referrer.subject, reference, created))
    return tuple(signed)
