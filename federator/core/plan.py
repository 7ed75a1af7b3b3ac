"""Desired vs observed -> what to apply, what waits, what to prune (DESIGN §4). Pure.

The operator compiles the spec into children, observes what the cluster holds, and asks this
module what to do. Deciding here, without I/O, keeps every rule testable as a table: topics go
first, a streamlet waits until all its topics are Healthy, unchanged children are not written,
Retain topics are never deleted, and a name owned by another application is never taken over.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from federator.core import naming, runtimes
from federator.core.health import ChildHealth, Health
from federator.core.model import DeletionPolicy
from federator.core.render import Child

Key = tuple[str, str, str]  # (kind, namespace, name)

REASON_WAITING_FOR_TOPICS = "WaitingForTopics"
REASON_DELEGATE_NOT_INSTALLED = "DelegateNotInstalled"
REASON_OWNED_ELSEWHERE = "OwnedByAnotherApplication"


@dataclass(frozen=True, kw_only=True)
class Observed:
    """One live child as the cluster holds it."""

    key: Key
    spec_hash: str | None
    """The `federator.io/spec-hash` annotation: what federator last applied."""
    owner: str | None
    """The `federator.io/application` annotation (`<namespace>/<app>`), None if absent."""
    health: ChildHealth
    body: Mapping[str, Any]

    @classmethod
    def from_body(cls, body: Mapping[str, Any], health: ChildHealth) -> Observed:
        meta = body.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        return cls(
            key=(str(body.get("kind", "")), str(meta.get("namespace", "")), str(meta.get("name"))),
            spec_hash=annotations.get(naming.SPEC_HASH_ANNOTATION),
            owner=annotations.get(naming.APPLICATION_ANNOTATION),
            health=health,
            body=body,
        )


def contains(desired: Any, live: Any) -> bool:
    """Does the live object still hold every field federator sets? The server adds defaults
    (so live has more), but a hand edit or deletion of one of our fields is drift to repair."""
    if isinstance(desired, Mapping):
        return isinstance(live, Mapping) and all(
            k in live and contains(v, live[k]) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(contains(d, v) for d, v in zip(desired, live, strict=True))
        )
    return bool(desired == live)


def in_sync(child: Child, live: Observed) -> bool:
    """Unchanged: same spec-hash AND no drift in the fields federator owns."""
    manifest = child.manifest
    meta = manifest.get("metadata", {})
    live_meta = live.body.get("metadata") or {}
    return (
        live.spec_hash == child.spec_hash
        and contains(manifest.get("spec", {}), live.body.get("spec"))
        and contains(meta.get("labels", {}), live_meta.get("labels"))
    )


@dataclass(frozen=True, kw_only=True)
class InventoryItem:
    """An entry of `status.children`: what federator owns, remembered across spec changes so
    pruning never needs to re-render an old spec."""

    kind: str
    api_version: str
    namespace: str
    name: str
    topic: str | None = None
    streamlet: str | None = None

    @property
    def key(self) -> Key:
        return (self.kind, self.namespace, self.name)

    @classmethod
    def from_child(cls, child: Child) -> InventoryItem:
        return cls(
            kind=child.kind,
            api_version=child.api_version,
            namespace=child.namespace,
            name=child.name,
            topic=child.topic,
            streamlet=child.streamlet,
        )

    @classmethod
    def from_status(cls, entry: Mapping[str, Any]) -> InventoryItem | None:
        try:
            return cls(
                kind=str(entry["kind"]),
                api_version=str(entry["apiVersion"]),
                namespace=str(entry.get("namespace", "")),
                name=str(entry["name"]),
                topic=entry.get("topic"),
                streamlet=entry.get("streamlet"),
            )
        except (KeyError, TypeError):
            return None


@dataclass(frozen=True, kw_only=True)
class Held:
    """A desired child not applied now, and why (it shows in status as that child's health)."""

    child: Child
    health: ChildHealth


@dataclass(frozen=True, kw_only=True)
class Plan:
    apply: tuple[Child, ...]
    """Children to write (missing or changed), in wave order."""
    unchanged: tuple[Child, ...]
    held: tuple[Held, ...]
    prune: tuple[InventoryItem, ...]
    """Owned children no longer desired: delete them."""
    release: tuple[InventoryItem, ...]
    """No longer desired but kept (Retain topics): dropped from the inventory, not deleted."""

    @property
    def inventory(self) -> tuple[InventoryItem, ...]:
        """What federator owns after this plan: every desired child that it wrote or holds."""
        children = (*self.apply, *self.unchanged)
        held = (h.child for h in self.held if h.health.reason != REASON_OWNED_ELSEWHERE)
        items = [InventoryItem.from_child(c) for c in (*children, *held)]
        return tuple(sorted(items, key=lambda i: i.key))


def make_plan(
    children: Sequence[Child],
    observed: Mapping[Key, Observed],
    inventory: Sequence[InventoryItem],
    *,
    owner: str,
    installed: Collection[str],
    deletion_policy: DeletionPolicy,
    external_topics: Collection[str] = (),
) -> Plan:
    """Decide the next step. `installed`: CRD names the cluster serves (core kinds always are);
    `owner`: this application's `<namespace>/<name>`; `external_topics`: unmanaged topics,
    which exist outside federator and count as ready."""
    apply: list[Child] = []
    unchanged: list[Child] = []
    held: list[Held] = []
    topic_ready = {
        c.topic: _is_healthy(observed.get(c.key)) for c in children if c.topic is not None
    }
    for child in sorted(children, key=lambda c: c.wave):  # stable: keeps order inside a wave
        delegate = runtimes.BY_KIND[child.kind]
        live = observed.get(child.key)
        if not delegate.served(installed):
            held.append(
                Held(
                    child=child,
                    health=ChildHealth(
                        health=Health.MISSING,
                        reason=REASON_DELEGATE_NOT_INSTALLED,
                        message=f"CRD {delegate.crd_name} is not installed: install "
                        f"{delegate.operator}",
                    ),
                )
            )
            continue
        if live is not None and live.owner not in (None, owner):
            held.append(
                Held(
                    child=child,
                    health=ChildHealth(
                        health=Health.DEGRADED,
                        reason=REASON_OWNED_ELSEWHERE,
                        message=f"{child.kind} {child.namespace}/{child.name} already belongs to "
                        f"application {live.owner}; rename a streamlet or topic",
                    ),
                )
            )
            continue
        if live is not None and in_sync(child, live):
            unchanged.append(child)
            continue
        waiting = [
            t for t in child.topics if t not in external_topics and not topic_ready.get(t, False)
        ]
        if waiting:
            held.append(
                Held(
                    child=child,
                    health=ChildHealth(
                        health=Health.PROGRESSING,
                        reason=REASON_WAITING_FOR_TOPICS,
                        message="waiting for topics: " + ", ".join(waiting),
                    ),
                )
            )
            continue
        apply.append(child)

    desired = {c.key for c in children}
    prune: list[InventoryItem] = []
    release: list[InventoryItem] = []
    for item in inventory:
        if item.key in desired:
            continue
        if item.kind == runtimes.KAFKA_TOPIC.kind and deletion_policy is DeletionPolicy.RETAIN:
            release.append(item)
        else:
            prune.append(item)
    return Plan(
        apply=tuple(apply),
        unchanged=tuple(unchanged),
        held=tuple(held),
        prune=tuple(prune),
        release=tuple(release),
    )


def _is_healthy(live: Observed | None) -> bool:
    return live is not None and live.health.health is Health.HEALTHY


def deletion_plan(
    inventory: Sequence[InventoryItem], *, app_namespace: str, deletion_policy: DeletionPolicy
) -> tuple[InventoryItem, ...]:
    """On Application deletion, what the finalizer deletes itself: Delete-policy topics, and
    children the garbage collector cannot reach (other namespaces). Owned same-namespace
    children are left to the garbage collector."""
    out = []
    for item in inventory:
        if item.kind == runtimes.KAFKA_TOPIC.kind:
            if deletion_policy is DeletionPolicy.DELETE:
                out.append(item)
        elif item.namespace != app_namespace:
            out.append(item)
    return tuple(out)
