"""Signed attestations: an attachment as an in-toto Statement in a DSSE envelope.

An attachment that already is an in-toto Statement (payload type
``application/vnd.in-toto+json``, as provenance is) is signed as is; any
other JSON attachment (an SPDX or CycloneDX SBOM) becomes the predicate of a
Statement whose subject is the image manifest. The envelope is attached to
the same subject as ``application/vnd.dsse.envelope.v1+json``, with the
predicate type in the annotation ``in-toto.io/predicate-type``.
"""

from __future__ import annotations

import json
from typing import Any

from builder.errors import SigningError
from builder.model import Descriptor, canonical_json
from builder.supply.attachment import Attachment, Referrer, attach
from builder.supply.sign import DSSE_ENVELOPE, IN_TOTO_PAYLOAD, SigningKey, dsse_envelope

STATEMENT_V1 = "https://in-toto.io/Statement/v1"
PREDICATE_ANNOTATION = "in-toto.io/predicate-type"
PREDICATE_TYPES = {
    "application/spdx+json": "https://spdx.dev/Document",
    "application/vnd.cyclonedx+json": "https://cyclonedx.org/bom",
}


def statement_of(attachment: Attachment, subject: Descriptor, name: str) -> tuple[str, bytes]:
    """(predicate type, Statement bytes) that vouch for ``attachment`` about ``subject``."""
    document = _json(attachment)
    if attachment.media_type == IN_TOTO_PAYLOAD or document.get("_type") == STATEMENT_V1:
        return str(document.get("predicateType", "")), attachment.payload
    predicate_type = _predicate_type(attachment)
    statement = {
        "_type": STATEMENT_V1,
        "subject": [{"name": name, "digest": {subject.digest.algorithm: subject.digest.encoded}}],
        "predicateType": predicate_type,
        "predicate": document,
    }
    return predicate_type, canonical_json(statement)


def sign_attachment(
    key: SigningKey, attachment: Attachment, subject: Descriptor, name: str, created: str
) -> Referrer:
    """The DSSE-signed Statement of ``attachment``, as a referrer of ``subject``."""
    predicate_type, statement = statement_of(attachment, subject, name)
    signed = Attachment(
        DSSE_ENVELOPE,
        DSSE_ENVELOPE,
        dsse_envelope(key, statement, IN_TOTO_PAYLOAD),
        {PREDICATE_ANNOTATION: predicate_type},
    )
    return attach(signed, subject, created)


def vouches(statement: bytes, attachment: Attachment, subject: Descriptor) -> bool:
    """Whether a (verified) Statement speaks for ``attachment`` about ``subject``.

    A Statement attachment must be signed byte for byte; any other must be the
    Statement's predicate, with the matching predicate type and subject digest.
    """
    if attachment.media_type == IN_TOTO_PAYLOAD:
        return statement == attachment.payload
    try:
        document = json.loads(attachment.payload)
        claimed: Any = json.loads(statement)
    except (ValueError, RecursionError):
        return False
    return (
        about(statement, subject)
        and isinstance(claimed, dict)
        and claimed.get("predicateType") == _predicate_type(attachment)
        and claimed.get("predicate") == document
    )


def about(statement: bytes, subject: Descriptor) -> bool:
    """Whether a Statement names ``subject`` among its subjects."""
    try:
        claimed: Any = json.loads(statement)
        digests = [s["digest"].get(subject.digest.algorithm) for s in claimed["subject"]]
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return False
    return subject.digest.encoded in digests


def _predicate_type(attachment: Attachment) -> str:
    return PREDICATE_TYPES.get(attachment.artifact_type, attachment.artifact_type)


def _json(attachment: Attachment) -> dict[str, Any]:
    try:
        document = json.loads(attachment.payload)
    except (ValueError, RecursionError):
        document = None
    if not isinstance(document, dict):
        raise SigningError(
            f"cannot sign the {attachment.artifact_type} attachment: its payload is not a "
            "JSON object, so it cannot be the predicate of an in-toto Statement"
        )
    return document
