"""SLSA Provenance v1 in an in-toto Statement v1 (https://slsa.dev/spec/v1.0/provenance).

One statement per platform image: the subject is its manifest; the external
parameters are the image.toml (by digest) and the build options that shape
the output; the resolved dependencies are its base (by manifest digest), the
build inputs (a digest over the layers bale built) and, in CI, the source
revision.
No wall-clock time is recorded: the statement is as reproducible as the image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from builder import __version__
from builder.model import Digest, canonical_json
from builder.supply.attachment import Attachment
from builder.supply.ci import CiContext
from builder.supply.inventory import Named

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://bale.invalid/buildtypes/image-toml/v1"
MEDIA_TYPE = "application/vnd.in-toto+json"
ANNOTATION_PREDICATE = "in-toto.io/predicate-type"


@dataclass(frozen=True, slots=True)
class BuildFacts:
    """What a provenance statement says about one build."""

    subjects: tuple[Named, ...]
    spec_name: str
    spec_digest: Digest
    options: Mapping[str, Any]
    bases: tuple[Named, ...]
    inputs: Digest


def _digest_set(digest: Digest) -> dict[str, str]:
    return {digest.algorithm: digest.encoded}


def _dependencies(facts: BuildFacts, ci: CiContext) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [
        {"name": "base", "uri": base.purl, "digest": _digest_set(base.digest)}
        for base in facts.bases
    ]
    found.append({"name": "inputs", "digest": _digest_set(facts.inputs)})
    if ci.source is not None:
        found.append({"name": "source", **ci.source})
    return found


def statement(facts: BuildFacts, ci: CiContext) -> bytes:
    """The statement's canonical JSON bytes."""
    build_definition: dict[str, Any] = {
        "buildType": BUILD_TYPE,
        "externalParameters": {
            "spec": {"name": facts.spec_name, "digest": _digest_set(facts.spec_digest)},
            "options": dict(facts.options),
        },
        "resolvedDependencies": _dependencies(facts, ci),
    }
    if ci.internal:
        build_definition["internalParameters"] = dict(ci.internal)
    builder: dict[str, Any] = {"id": ci.builder_id, "version": {"bale": __version__}}
    run_details: dict[str, Any] = {"builder": builder}
    if ci.invocation_id:
        run_details["metadata"] = {"invocationId": ci.invocation_id}
    document = {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": subject.purl, "digest": _digest_set(subject.digest)}
            for subject in facts.subjects
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {"buildDefinition": build_definition, "runDetails": run_details},
    }
    return canonical_json(document)


def provenance_attachment(facts: BuildFacts, ci: CiContext) -> Attachment:
    return Attachment(
        MEDIA_TYPE, MEDIA_TYPE, statement(facts, ci), {ANNOTATION_PREDICATE: PREDICATE_TYPE}
    )


def inputs_digest(layers: Sequence[Digest]) -> Digest:
    """A digest of the build inputs: the diff_ids of the layers bale built, in order.

    A layer's diff_id is the sha256 of its uncompressed tar, which holds every
    input file's bytes, path, mode and owner: it changes exactly when an input does.
    """
    return Digest.of(canonical_json([str(d) for d in layers]))
