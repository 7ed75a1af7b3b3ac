"""Build the Application's status from the core's verdicts (pure; no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from federator.core import health, inventory, limits
from federator.core.plan import InventoryItem
from federator.core.status_types import ChildEntry


def child_entry(
    item: InventoryItem, verdict: health.ChildHealth, spec_hash: str | None, *, owned: bool = True
) -> dict[str, Any]:
    """One entry of status.children. `owned: false` marks an object reported but not this
    application's (another's, one federator did not create, a `managed: false` topic): the
    inventory skips it, so it is never pruned or deleted."""
    return ChildEntry(
        kind=item.kind,
        api_version=item.api_version,
        namespace=item.namespace,
        name=item.name,
        health=verdict.health,
        reason=verdict.reason,
        message=verdict.message,
        topic=item.topic,
        streamlet=item.streamlet,
        spec_hash=spec_hash,
        owned=owned,
    ).to_status()


def build_status(
    previous: Mapping[str, Any],
    app_health: health.AppHealth,
    children: Sequence[dict[str, Any]],
    *,
    generation: int,
    now: str,
) -> dict[str, Any]:
    """The whole status, with lastTransitionTime kept where a condition did not change, within
    `limits.STATUS_BYTES`: a large inventory is summarised (`core.inventory`); `inventory` is
    None otherwise, which the merge patch of the status turns into removing a previous one."""
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "phase": app_health.phase,
        "ready": app_health.ready,
        "total": app_health.total,
        "summary": app_health.summary,
        "conditions": health.merge_conditions(
            previous.get("conditions") or [],
            app_health.conditions,
            now=now,
            observed_generation=generation,
        ),
        "children": [],
        "inventory": None,
    }
    listed, summary = inventory.fit(children, limits.STATUS_BYTES - inventory.size(status))
    status["children"] = list(listed)
    status["inventory"] = summary
    return status


REFUSED_REASONS = {401: "Unauthorized", 403: "Forbidden"}


def refused_conditions(
    previous: Mapping[str, Any], status: int, message: str, *, generation: int | None, now: str
) -> list[dict[str, Any]]:
    """The conditions of an Application whose reconcile the API server refused (or that failed
    before a status could be computed): `Stalled` True with the server's own words, as kstatus
    means it (the controller cannot make progress), every other condition kept as it was; the
    next reconcile that finishes replaces it."""
    reason = REFUSED_REASONS.get(status, "ReconcileFailed")
    kept = [
        dict(c)
        for c in previous.get("conditions") or []
        if isinstance(c, Mapping) and c.get("type") != "Stalled"
    ]
    old = next(
        (
            c
            for c in previous.get("conditions") or []
            if isinstance(c, Mapping) and c.get("type") == "Stalled"
        ),
        None,
    )
    same = old is not None and old.get("status") == "True" and old.get("reason") == reason
    stalled = {
        "type": "Stalled",
        "status": "True",
        "reason": reason,
        "message": message[:1000],
        "lastTransitionTime": old.get("lastTransitionTime") if same and old else now,
    }
    if generation is not None:
        stalled["observedGeneration"] = generation
    return [*kept, stalled]
