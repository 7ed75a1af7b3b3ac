"""Fit the inventory (`status.children`) into the room a status has. Pure.

The status of an Application lives in the same etcd object as its spec, so it must stay within
`limits.STATUS_BYTES` whatever the number of children. A small application lists every child;
a large one lists the children that need attention (every entry that is not Healthy, worst
first, as many as fit) and counts the rest by kind and health, in `status.inventory`:

    inventory: {summarised: true, total: 3000, listed: 41, counts: [
        {kind: Deployment, health: Healthy, count: 1000},
        {kind: KafkaTopic, health: Healthy, count: 1990},
        {kind: KafkaTopic, health: Progressing, count: 10}]}

The counts are a list, not a map of maps: the status is written with a JSON merge patch, which
merges maps key by key (a health no child has any more would stay counted) but replaces lists.

A summarised inventory no longer names every child federator owns, so it cannot be what pruning
and deletion rely on: the operator then lists the application's children in the cluster by
label and owner annotation (`Reconciler._find_owned`), as it does at a restart, a resync and
deletion (see `summarised`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from federator.core import delegates
from federator.core.health import Health
from federator.core.plan import InventoryItem
from federator.core.status_types import ChildEntry


def size(value: Any) -> int:
    """Bytes of `value` as the API server stores it (compact JSON, UTF-8)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def summarised(status: Mapping[str, Any] | None) -> bool:
    """Whether `status.children` lists only part of the children (see the module docstring)."""
    if not isinstance(status, Mapping):
        return False
    summary = status.get("inventory")
    return isinstance(summary, Mapping) and summary.get("summarised") is True


def items(status: Mapping[str, Any] | None) -> list[InventoryItem]:
    """What `status.children` says federator owns: its well-formed entries of kinds federator
    writes, but those reported and not owned (`owned: false`). Only part of it when the status
    is summarised (`summarised`)."""
    if not isinstance(status, Mapping):
        return []
    entries = status.get("children")
    return [
        item
        for item in (
            InventoryItem.from_status(e)
            for e in (entries if isinstance(entries, list) else [])
            if isinstance(e, Mapping)
        )
        if item is not None and item.kind in delegates.BY_KIND
    ]


def fit(
    entries: Sequence[Mapping[str, Any]], room: int
) -> tuple[list[Mapping[str, Any]], dict[str, Any] | None]:
    """The entries to write and the summary: every entry and None when they fit in `room`
    bytes; else the entries that are not Healthy, worst first (stable), as many as fit, with
    the counts of all of them by kind and health."""
    if size(list(entries)) <= room:
        return list(entries), None
    typed = [(entry, ChildEntry.from_status(entry)) for entry in entries]
    counts: dict[tuple[str, str], int] = {}
    for _, child in typed:
        key = (child.kind, child.health.value)
        counts[key] = counts.get(key, 0) + 1
    summary: dict[str, Any] = {
        "summarised": True,
        "total": len(entries),
        "listed": 0,
        "counts": [
            {"kind": kind, "health": health, "count": n}
            for (kind, health), n in sorted(counts.items())
        ],
    }
    attention = [
        entry
        for entry, _ in sorted(
            (pair for pair in typed if pair[1].health is not Health.HEALTHY),
            key=lambda pair: -pair[1].health.priority,
        )
    ]
    # What is left once the summary itself is written (its "listed" grows by a few digits).
    left = room - size(summary) - 16
    kept: list[Mapping[str, Any]] = []
    for entry in attention:
        cost = size(entry) + 1  # the comma between entries
        if cost > left:
            break  # worst first: never list a milder entry in place of a worse one
        kept.append(entry)
        left -= cost
    summary["listed"] = len(kept)
    return kept, summary
