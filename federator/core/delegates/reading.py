"""Defensive readers every adapter shares: a body is whatever the API server (or a user) wrote,
so a missing, None or wrong-typed field makes a child Progressing (waiting for its operator)
or Unknown (a value that cannot be interpreted), never an exception."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federator.core import fields
from federator.core.health import (
    REASON_AWAITING_STATUS,
    REASON_MALFORMED,
    REASON_STALE_GENERATION,
    ChildHealth,
    Health,
    clip,
)


def conditions(status: Any) -> dict[str, Mapping[str, Any]]:
    """Well-formed conditions of a status by type (the last one wins, as kubectl shows them)."""
    found: dict[str, Mapping[str, Any]] = {}
    items = fields.get(status, "conditions")
    if not isinstance(items, list):
        return found
    for item in items:
        kind = fields.as_str(fields.get(item, "type"))
        if kind is not None:
            found[kind] = item
    return found


def condition_is(conditions: Mapping[str, Mapping[str, Any]], kind: str, status: str) -> bool:
    return bool(fields.get(conditions.get(kind), "status") == status)


def progressing(reason: str, message: str = "") -> ChildHealth:
    return ChildHealth(health=Health.PROGRESSING, reason=reason, message=clip(message))


def degraded(reason: str, message: str = "") -> ChildHealth:
    return ChildHealth(health=Health.DEGRADED, reason=reason, message=clip(message))


def unknown(reason: str, message: str = "") -> ChildHealth:
    return ChildHealth(health=Health.UNKNOWN, reason=reason, message=clip(message))


def status_of(body: Mapping[str, Any]) -> Mapping[str, Any] | ChildHealth:
    """The status mapping, or the verdict when there is none (yet) or it is not an object."""
    status = fields.get(body, "status")
    if status is None or status == {}:
        return progressing(REASON_AWAITING_STATUS, "the delegate operator has not written a status")
    if not isinstance(status, Mapping):
        return unknown(REASON_MALFORMED, f"status is a {type(status).__name__}, not an object")
    return status


def stale(body: Mapping[str, Any], observed: int | None) -> ChildHealth | None:
    """Progressing when the status describes an older generation than ``metadata.generation``."""
    generation = fields.as_int(fields.get(body, "metadata", "generation"))
    if generation is None or observed == generation:
        return None
    seen = "no observedGeneration" if observed is None else f"observedGeneration {observed}"
    return progressing(
        REASON_STALE_GENERATION,
        f"status describes {seen}, spec is generation {generation}: waiting for the operator",
    )
