"""``bale check-signatures``: are an image and its attestations signed by this key?

Every platform image must be covered by a cosign signature made with the key,
on its own manifest or on the index that lists it (what ``cosign sign REF:TAG``
signs). Every attestation attached to a manifest (an SBOM, provenance) must be
vouched for by a DSSE envelope signed with the key about the same manifest.
A signature by another key is reported but neither counts nor fails; one made
with this key for another image (replayed), or a DSSE envelope that names this
key and does not verify, fails.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from builder.formats.locate import Source
from builder.formats.referrers import referrers_of
from builder.image.store import Store, platforms_of, read_document
from builder.model import INDEX_TYPES, Descriptor, Platform, VerifiedReader
from builder.supply.attachment import Attachment
from builder.supply.attest import about, vouches
from builder.supply.cosign import (
    COSIGN_SIGNATURE,
    SIMPLE_SIGNING,
    parse_simple_signing,
    signed_by,
)
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


Verdict = Callable[..., Check]


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
        verdict = partial(Check, str(subject.digest), label)
        if referrer.artifact_type == COSIGN_SIGNATURE:
            for layer in _layers(store, referrer):
                if layer.media_type == SIMPLE_SIGNING:
                    checks.append(_cosign(verdict, store, key, subject, referrer, layer))
        elif referrer.artifact_type == DSSE_ENVELOPE:
            for layer in _layers(store, referrer):
                check, statement = _envelope(
                    verdict, key, subject, referrer, _payload(store, layer)
                )
                checks.append(check)
                statements += [statement] if statement is not None else []
    for referrer in referrers:
        if referrer.artifact_type not in (COSIGN_SIGNATURE, DSSE_ENVELOPE):
            verdict = partial(Check, str(subject.digest), label)
            checks.append(_attestation(verdict, store, subject, referrer, statements))
    return checks


def _cosign(
    verdict: Verdict,
    store: Store,
    key: VerifyKey,
    subject: Descriptor,
    referrer: Descriptor,
    layer: Descriptor,
) -> Check:
    payload = _payload(store, layer)
    done = partial(verdict, "signature", COSIGN_SIGNATURE, str(referrer.digest))
    if not signed_by(key, layer, payload):
        return done(OTHER, "not signed by this key (or altered)")
    claims = parse_simple_signing(payload)
    if claims is None or claims.digest != str(subject.digest):
        claimed = claims.digest if claims else "nothing readable"
        return done(FAILED, f"signed by this key, but the payload claims {claimed}")
    return done(OK, f"cosign signature by key {key.keyid[:16]} ({key.algorithm})")


def _envelope(
    verdict: Verdict, key: VerifyKey, subject: Descriptor, referrer: Descriptor, data: bytes
) -> tuple[Check, bytes | None]:
    done = partial(verdict, "attestation signature", DSSE_ENVELOPE, str(referrer.digest))
    opened = open_envelope(key, data)
    if opened is None:
        if key.keyid.encode() in data:
            return done(FAILED, "names this key, but its signature does not verify (altered)"), None
        return done(OTHER, "not signed by this key"), None
    if not about(opened[1], subject):
        return done(FAILED, "signed by this key, but its statement is about another image"), None
    return done(OK, f"DSSE envelope signed by key {key.keyid[:16]} ({key.algorithm})"), opened[1]


def _attestation(
    verdict: Verdict,
    store: Store,
    subject: Descriptor,
    referrer: Descriptor,
    statements: Sequence[bytes],
) -> Check:
    layers = _layers(store, referrer)
    good = False
    if layers:
        payload = _payload(store, layers[-1])
        attachment = Attachment(referrer.artifact_type, layers[-1].media_type, payload)
        good = any(vouches(s, attachment, subject) for s in statements)
    done = partial(verdict, "attestation", referrer.artifact_type, str(referrer.digest))
    if good:
        return done(OK, "vouched for by a DSSE statement signed by this key")
    return done(FAILED, "no DSSE statement signed by this key vouches for it")


def _layers(store: Store, referrer: Descriptor) -> list[Descriptor]:
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
