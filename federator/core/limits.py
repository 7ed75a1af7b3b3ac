"""How big one Application may be: what the API server can store and one operator can serve.

Pure. An Application larger than these limits used to be accepted by the API server and then
break the operator (issue 10 §4): its status did not fit in etcd, kopf's bookkeeping annotation
outgrew the annotation limit, and its thousands of children delayed every other application.
The limits are operator settings (`limits.maxStreamlets`, `limits.maxChildren`), checked by
validation before anything is applied; the CRD's `maxItems` on `spec.streamlets` is the hard
ceiling no setting can raise.

How the defaults are derived (docs/design-notes.md, "Size limits"): one Application object,
metadata, spec and status together, must fit in one etcd request (`OBJECT_BYTES`). Federator
keeps what it writes small and bounded: the status within `STATUS_BYTES` (a large inventory is
summarised, `core/inventory.py`) and kopf's bookkeeping annotations to a digest. The rest is the
author's: the spec, plus its copy in `metadata.managedFields` under server-side apply (about
the spec's size again). So a spec may take about (OBJECT_BYTES - STATUS_BYTES - METADATA_BYTES)
/ 2 = 624 KiB. A realistic streamlet (runtime block, config map, its connections and a share of
the explicit topics with schemas: bench/compile.py's mix) takes about 400 bytes of that: 1,000
streamlets leave a third of the room for larger ones. They render about 2.2 children each
(one per streamlet, one KafkaTopic per outlet); 3,000 children leave room for fan-out. The
smallest useful streamlet (a name, a runtime, an image, one port and its connection) takes
about 140 bytes, twice that with managedFields: 5,000 of those and a status no longer fit in
1.5 MiB, so the CRD's ceiling is 5,000.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from federator.core.problems import Code, Problem

OBJECT_BYTES: Final = 1_572_864
"""etcd's default `--max-request-bytes` (1.5 MiB): the largest object the API server can store."""
ANNOTATIONS_BYTES: Final = 262_144
"""The API server's limit on all the annotations of one object together (256 KiB)."""
STATUS_BYTES: Final = 262_144
"""The most federator writes into an Application's status (its JSON): a quarter of what is
left once the author's spec and its managedFields copy have their share."""
METADATA_BYTES: Final = 32_768
"""Room kept for the rest of the metadata: labels, other tools' annotations, finalizers, kopf's
bookkeeping (a digest, `federator.operator.diffbase`) and managedFields of the status."""
STREAMLETS_CEILING: Final = 5_000
"""The CRD's `maxItems` on spec.streamlets (a unit test keeps them equal): no setting can allow
more, the API server refuses them first."""

DEFAULT_MAX_STREAMLETS: Final = 1_000
DEFAULT_MAX_CHILDREN: Final = 3_000


class LimitsError(ValueError):
    """A limits setting is wrong: `key` says which (None: the mapping itself)."""

    def __init__(self, key: str | None, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Per-application limits of this operator (the `limits` settings)."""

    max_streamlets: int = DEFAULT_MAX_STREAMLETS
    """Streamlets per Application (`limits.maxStreamlets`); at most STREAMLETS_CEILING. Bounds
    the spec the API server must store with its status, and one compile's time."""
    max_children: int = DEFAULT_MAX_CHILDREN
    """Children per Application (`limits.maxChildren`): one per streamlet plus one KafkaTopic
    per managed topic. Bounds one application's writes, watch events and cached bodies, i.e.
    how much of the operator one application can take while others wait."""


def parse(raw: Mapping[str, Any]) -> Limits:
    """`limits` of the settings document (camelCase keys; absent keys take the defaults)."""
    unknown = sorted(set(raw) - {"maxStreamlets", "maxChildren"})
    if unknown:
        raise LimitsError(None, f"unknown key(s) {', '.join(map(str, unknown))}")
    values = {}
    for key, default in (
        ("maxStreamlets", DEFAULT_MAX_STREAMLETS),
        ("maxChildren", DEFAULT_MAX_CHILDREN),
    ):
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise LimitsError(key, f"expected a positive integer, got {value!r}")
        values[key] = value
    if values["maxStreamlets"] > STREAMLETS_CEILING:
        raise LimitsError(
            "maxStreamlets",
            f"{values['maxStreamlets']} is over {STREAMLETS_CEILING}, the "
            "Application CRD's maxItems on spec.streamlets: the API server refuses larger "
            "applications, and they would not fit in etcd with their status",
        )
    return Limits(max_streamlets=values["maxStreamlets"], max_children=values["maxChildren"])


def streamlet_count(body: Mapping[str, Any]) -> int:
    """How many streamlets the body lists, readable or not (what the API server would count)."""
    spec = body.get("spec")
    streamlets = spec.get("streamlets") if isinstance(spec, Mapping) else None
    return len(streamlets) if isinstance(streamlets, list) else 0


def streamlet_problems(body: Mapping[str, Any], limits: Limits) -> list[Problem]:
    """Too many streamlets: checked first, so that an oversized spec costs a count, not a
    compile (the rest of the spec is checked once it is within the limit)."""
    count = streamlet_count(body)
    if count <= limits.max_streamlets:
        return []
    return [
        Problem(
            path="spec.streamlets",
            code=Code.TOO_MANY_STREAMLETS,
            message=f"{count} streamlets, over this operator's limit of {limits.max_streamlets} "
            "per application (settings limits.maxStreamlets): split the application, or ask "
            "the platform team to raise the limit; the rest of the spec is checked once it is "
            "within the limit",
        )
    ]


def children_problems(streamlets: int, topics: int, limits: Limits) -> list[Problem]:
    """Too many children: one per streamlet plus one KafkaTopic per managed topic."""
    count = streamlets + topics
    if count <= limits.max_children:
        return []
    return [
        Problem(
            path="spec.streamlets",
            code=Code.TOO_MANY_CHILDREN,
            message=f"the application renders {count} children ({streamlets} streamlets and "
            f"{topics} KafkaTopics), over this operator's limit of {limits.max_children} per "
            "application (settings limits.maxChildren): split the application, or ask the "
            "platform team to raise the limit",
        )
    ]
