"""The delegate simulator's pure parts shared by every delegate's step (a development tool:
see federator/simulator.py). Each delegate module holds its own step; these are the helpers
they share and the values a step returns."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from federator.core.fields import as_int, get

FAIL_ANNOTATION: Final = "simulator.federator.io/fail"
FAIL_STATE_ANNOTATION: Final = "simulator.federator.io/fail-state"
DEFAULT_FAILURE_MESSAGE: Final = "failure injected by the delegate simulator"


@dataclass(frozen=True)
class Failure:
    """A failure to show on one child until it is recovered."""

    message: str
    state: str | None = None
    """Which failure state (see ``*_FAILURE_STATES``; for KafkaTopic the Ready=False reason)."""


@dataclass(frozen=True)
class Step:
    """The next status of a child: what the delegate would write on its next reconcile."""

    status: dict[str, Any]
    """The complete new ``.status`` (``merge_patch`` turns it into a patch)."""
    state: str
    """The state it reports, for logs: ``SUBMITTED``, ``STABLE``, ``Ready``..."""
    generation: int | None
    """The ``metadata.generation`` this status describes. The simulator remembers it for Spark,
    whose status (like the real operator's) does not record which spec it was submitted for."""


def utc_now() -> str:
    """RFC 3339 in UTC with second precision, as Kubernetes writes timestamps."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_uuid() -> str:
    return str(uuid.uuid4())


def status_of(body: Mapping[str, Any]) -> dict[str, Any]:
    status = body.get("status")
    return copy.deepcopy(dict(status)) if isinstance(status, Mapping) else {}


def generation_of(body: Mapping[str, Any]) -> int:
    generation = as_int(get(body, "metadata", "generation"))
    return 1 if generation is None else generation


def annotations_of(body: Mapping[str, Any]) -> Mapping[str, Any]:
    annotations = get(body, "metadata", "annotations")
    return annotations if isinstance(annotations, Mapping) else {}


def name_of(body: Mapping[str, Any]) -> str:
    return str(get(body, "metadata", "name") or "unnamed")


def spec_hash(spec: Any) -> str:
    """A short, stable hash of a spec: what the Lyft operator records as ``deployHash``."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:8]


def kafka_topic_id(seed: str) -> str:
    """A Kafka topic UUID in Kafka's own form (22 characters of URL-safe base64)."""
    raw = hashlib.sha256(seed.encode()).digest()[:16]
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def failure_from_annotations(body: Mapping[str, Any]) -> Failure | None:
    """The failure a human asked for with ``simulator.federator.io/fail``, if any."""
    annotations = annotations_of(body)
    if FAIL_ANNOTATION not in annotations:
        return None
    message = str(annotations.get(FAIL_ANNOTATION) or "") or DEFAULT_FAILURE_MESSAGE
    state = annotations.get(FAIL_STATE_ANNOTATION)
    return Failure(message=message, state=str(state) if state else None)


MISSING: Final = object()


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) turning ``old`` into ``new`` (removed keys become null)."""
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key, MISSING)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            nested = merge_patch(before, value)
            if nested:
                patch[key] = nested
        elif before is MISSING or before != value:
            patch[key] = copy.deepcopy(value)
    return patch


def condition(
    previous: Mapping[str, Any],
    kind: str,
    value: str,
    *,
    now: str,
    reason: str = "",
    message: str = "",
) -> dict[str, Any]:
    """A Strimzi-style condition; keeps ``lastTransitionTime`` when its status did not change."""
    old: Mapping[str, Any] | None = None
    for item in previous.get("conditions") or []:
        if isinstance(item, Mapping) and item.get("type") == kind:
            old = item
    same = old is not None and old.get("status") == value and old.get("lastTransitionTime")
    condition: dict[str, Any] = {
        "type": kind,
        "status": value,
        "lastTransitionTime": old["lastTransitionTime"] if same and old else now,
    }
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def changed(new: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """`new` with `changes` applied: a `MISSING` value removes its key."""
    for key, value in changes.items():
        if value is MISSING:
            new.pop(key, None)
        else:
            new[key] = value
    return new


def counter(status: Mapping[str, Any], key: str) -> int:
    value = as_int(status.get(key))
    return value if value is not None and value > 0 else 0
