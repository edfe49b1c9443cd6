"""``bale check-signatures``: are an image and its attestations signed by this key?

Every platform image must be covered by a cosign signature made with the key,
on its own manifest or on the index that lists it (what ``cosign sign REF:TAG``
signs). Every attestation attached to a manifest (an SBOM, provenance) must be
vouched for by a DSSE envelope signed with the key about the same manifest.
A signature by another key is reported but neither counts nor fails; one that
names this key and does not verify, or that vouches for another image, fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from builder.formats.locate import Source
from builder.formats.referrers import referrers_of
from builder.image.store import Store, platforms_of, read_document
from builder.model import INDEX_TYPES, Descriptor, Platform, VerifiedReader
from builder.supply.attachment import Attachment
from builder.supply.attest import about, vouches
from builder.supply.cosign import COSIGN_SIGNATURE, SIMPLE_SIGNING, check_simple_signing
from builder.supply.sign import DSSE_ENVELOPE, VerifyKey, open_envelope

MAX_PAYLOAD = 64 << 20
OK, FAILED, OTHER = "ok", "failed", "other key"


@dataclass(frozen=True, slots=True)
class Check:
    """One verdict: on a referrer of ``subject`` (or on a missing one: ``digest`` empty)."""

    subject: str
    label: str
    kind: str
    artifact_type: str
    digest: str
    status: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {
            "subject": self.subject,
            "image": self.label,
            "kind": self.kind,
            "artifactType": self.artifact_type,
            "digest": self.digest,
            "status": self.status,
            "detail": self.detail,
        }

    def line(self) -> str:
        what = f"{self.kind} {self.digest}" if self.digest else f"{self.kind} missing"
        return f"{self.status.upper():9} {self.label} {what} ({self.artifact_type}): {self.detail}"


def check_signatures(source: Source, key: VerifyKey, platform: Platform | None) -> list[Check]:
    """Every verdict on ``source`` (one platform's image of an index with ``platform``)."""
    store, root = source.store, source.root
    subjects = [(root, "index" if root.media_type in INDEX_TYPES else _label(root))]
    if root.media_type in INDEX_TYPES:
        entries = platforms_of(store, root)
        subjects += [(e, _label(e)) for e in entries if platform in (None, e.platform)]
    checks: list[Check] = []
    signed: set[str] = set()
    for subject, label in subjects:
        found = _check_subject(store, key, subject, label)
        checks += found
        if any(c.kind == "signature" and c.status == OK for c in found):
            signed.add(str(subject.digest))
    covered = str(root.digest) in signed
    for subject, label in subjects[1:] or subjects:
        if not covered and str(subject.digest) not in signed:
            detail = f"no cosign signature by key {key.keyid[:16]} on this image or its index"
            checks.append(
                Check(str(subject.digest), label, "signature", COSIGN_SIGNATURE, "", FAILED, detail)
            )
    return checks


def _label(descriptor: Descriptor) -> str:
    return str(descriptor.platform) if descriptor.platform else "image"


def _check_subject(store: Store, key: VerifyKey, subject: Descriptor, label: str) -> list[Check]:
    referrers = referrers_of(store, subject.digest)
    checks: list[Check] = []
    statements: list[bytes] = []
    for referrer in referrers:
        manifest = _manifest(store, referrer)
        payloads = [(layer, _payload(store, layer)) for layer in manifest]
        if referrer.artifact_type == COSIGN_SIGNATURE:
            checks += [
                _cosign(key, subject, label, referrer, layer, data)
                for layer, data in payloads
                if layer.media_type == SIMPLE_SIGNING
            ]
        elif referrer.artifact_type == DSSE_ENVELOPE:
            for _, data in payloads:
                check, statement = _envelope(key, subject, label, referrer, data)
                checks.append(check)
                statements += [statement] if statement is not None else []
    for referrer in referrers:
        if referrer.artifact_type not in (COSIGN_SIGNATURE, DSSE_ENVELOPE):
            checks.append(_attestation(store, subject, label, referrer, statements))
    return checks


def _cosign(
    key: VerifyKey,
    subject: Descriptor,
    label: str,
    referrer: Descriptor,
    layer: Descriptor,
    data: bytes,
) -> Check:
    problem = check_simple_signing(key, layer, data, subject.digest)
    status = OK if problem is None else FAILED if "not this image" in problem else OTHER
    detail = problem or f"cosign signature by key {key.keyid[:16]} ({key.algorithm})"
    return Check(
        str(subject.digest),
        label,
        "signature",
        COSIGN_SIGNATURE,
        str(referrer.digest),
        status,
        detail,
    )


def _envelope(
    key: VerifyKey, subject: Descriptor, label: str, referrer: Descriptor, data: bytes
) -> tuple[Check, bytes | None]:
    def check(status: str, detail: str) -> Check:
        return Check(
            str(subject.digest),
            label,
            "attestation signature",
            DSSE_ENVELOPE,
            str(referrer.digest),
            status,
            detail,
        )

    opened = open_envelope(key, data)
    if opened is None:
        named = key.keyid.encode() in data
        if named:
            return check(FAILED, "names this key but its signature does not verify (altered)"), None
        return check(OTHER, "not signed by this key"), None
    if not about(opened[1], subject):
        return check(FAILED, "signed by this key, but its statement is about another image"), None
    return check(OK, f"DSSE envelope signed by key {key.keyid[:16]} ({key.algorithm})"), opened[1]


def _attestation(
    store: Store, subject: Descriptor, label: str, referrer: Descriptor, statements: Sequence[bytes]
) -> Check:
    layers = _manifest(store, referrer)
    attachment = None
    if layers:
        payload = _payload(store, layers[-1])
        attachment = Attachment(referrer.artifact_type, layers[-1].media_type, payload)
    good = attachment is not None and any(vouches(s, attachment, subject) for s in statements)
    detail = (
        "vouched for by a signed DSSE statement"
        if good
        else "no DSSE statement signed by this key vouches for it"
    )
    return Check(
        str(subject.digest),
        label,
        "attestation",
        referrer.artifact_type,
        str(referrer.digest),
        OK if good else FAILED,
        detail,
    )


def _manifest(store: Store, referrer: Descriptor) -> list[Descriptor]:
    _, document = read_document(store, referrer)
    return [Descriptor.from_json(layer) for layer in document.get("layers") or []]


def _payload(store: Store, layer: Descriptor) -> bytes:
    if layer.size > MAX_PAYLOAD:
        return b""
    with store.open(layer) as stream:
        reader = VerifiedReader(stream, layer, store.name)
        data = reader.read(layer.size + 1)
        reader.finish()
    return data


def report(checks: Sequence[Check]) -> dict[str, Any]:
    """The ``--json`` document; ``verified`` is true when nothing failed."""
    return {
        "verified": not any(c.status == FAILED for c in checks),
        "checks": [c.to_json() for c in checks],
    }
