"""Desired vs observed -> what to apply, what waits, what to prune (DESIGN §4). Pure.

The operator compiles the spec into children, observes what the cluster holds, and asks this
module what to do. Deciding here, without I/O, keeps every rule testable as a table: topics go
first, a streamlet waits until all its topics are Healthy, unchanged children are not written,
Retain topics are never deleted, and an object federator did not create for this application is
never written or deleted: one owned by another application, or one created by anybody else
(unless its owner consented with `federator.io/adopt: <namespace>/<application>`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from federator.core import delegates, naming, sharding
from federator.core.health import ChildHealth, Health
from federator.core.keys import Key
from federator.core.model import DeletionPolicy
from federator.core.render import Child

REASON_WAITING_FOR_TOPICS = "WaitingForTopics"
REASON_OWNED_ELSEWHERE = "OwnedByAnotherApplication"
REASON_ALREADY_EXISTS = "AlreadyExists"
NOT_OURS = frozenset({REASON_OWNED_ELSEWHERE, REASON_ALREADY_EXISTS})
"""Held reasons of objects that are not this application's: never in its inventory."""


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
    adopt: str | None = None
    """The `federator.io/adopt` annotation: the application its owner lets take it over."""

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
            adopt=annotations.get(naming.ADOPT_ANNOTATION),
        )

    def owned_by(self, owner: str) -> bool:
        return self.owner == owner

    @property
    def uid(self) -> str | None:
        uid = (self.body.get("metadata") or {}).get("uid")
        return str(uid) if uid else None


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
    """Unchanged: same spec-hash AND no drift in the fields federator owns AND the shard label
    of the serving shard (absent for the default shard: a child moved there must lose it)."""
    manifest = child.manifest
    meta = manifest.get("metadata", {})
    live_meta = live.body.get("metadata") or {}
    return (
        live.spec_hash == child.spec_hash
        and contains(manifest.get("spec", {}), live.body.get("spec"))
        and contains(meta.get("labels", {}), live_meta.get("labels"))
        and sharding.shard_of(manifest) == sharding.shard_of(live.body)
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
    def from_body(cls, body: Mapping[str, Any]) -> InventoryItem:
        """A live child found in the cluster (by its labels and owner annotation)."""
        meta = body.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        labels = meta.get("labels") or {}
        kind, name = str(body.get("kind", "")), str(meta.get("name", ""))
        topic = None
        if kind == delegates.KAFKA_TOPIC.kind:  # the annotation is set only when names differ
            topic = annotations.get(naming.TOPIC_ANNOTATION) or name
        return cls(
            kind=kind,
            api_version=str(body.get("apiVersion", "")),
            namespace=str(meta.get("namespace", "")),
            name=name,
            topic=topic,
            streamlet=labels.get(naming.STREAMLET_LABEL),
        )

    @classmethod
    def from_status(cls, entry: Mapping[str, Any]) -> InventoryItem | None:
        """An entry of status.children; None for a malformed one and for an object reported
        but not owned (`owned: false`: another's, or not federator's)."""
        if entry.get("owned") is False:
            return None
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
    """Owned children no longer desired: delete them. (Retain topics no longer desired are
    not among them: they only leave the inventory, which `decide.report` writes.)"""


def make_plan(
    children: Sequence[Child],
    observed: Mapping[Key, Observed],
    inventory: Sequence[InventoryItem],
    *,
    owner: str,
    installed: Collection[str],
    deletion_policy: DeletionPolicy,
    external_topics: Collection[str] = (),
    found: Sequence[Observed] = (),
) -> Plan:
    """Decide the next step. `installed`: CRD names the cluster serves (core kinds always are);
    `owner`: this application's `<namespace>/<name>`; `external_topics`: unmanaged topics,
    which exist outside federator and count as ready; `found`: objects listed in the cluster
    that carry this application's owner annotation (children a crash kept out of the
    inventory), pruned like inventory items when no longer desired.

    Only what `observed` shows as this application's (its owner annotation) is ever pruned: an
    inventory entry whose object is gone, or now belongs to someone else, is just dropped."""
    apply: list[Child] = []
    unchanged: list[Child] = []
    held: list[Held] = []
    # A topic counts as ready only when it is this application's (or its owner consented to
    # the take-over): streamlets never start on another's topic, however healthy it is.
    topic_ready = {
        c.topic: _is_healthy(live) and not_ours(c, live, owner) is None
        for c in children
        if c.topic is not None
        for live in [observed.get(c.key)]
        if live is not None
    }
    for child in sorted(children, key=lambda c: c.wave):  # stable: keeps order inside a wave
        delegate = delegates.BY_KIND[child.kind]
        live = observed.get(child.key)
        if not delegate.served(installed):
            held.append(
                Held(
                    child=child,
                    health=delegates.not_installed(delegate),
                )
            )
            continue
        if live is not None and not live.owned_by(owner):
            refused = not_ours(child, live, owner)
            if refused is not None:
                held.append(Held(child=child, health=refused))
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
    prune = [
        item
        for item in _owned_candidates(inventory, observed, found, owner)
        if item.key not in desired
        # Retain: a topic that left the spec is kept (released), never deleted.
        and not (
            item.kind == delegates.KAFKA_TOPIC.kind and deletion_policy is DeletionPolicy.RETAIN
        )
    ]
    return Plan(
        apply=tuple(apply),
        unchanged=tuple(unchanged),
        held=tuple(held),
        prune=tuple(prune),
    )


def not_ours(child: Child, live: Observed, owner: str) -> ChildHealth | None:
    """Why a live object that is not this application's is left alone, or None when it is
    ours or its owner consented to the take-over (`federator.io/adopt: <owner>` on an object
    nobody owns)."""
    if live.owned_by(owner):
        return None
    where = f"{child.kind} {child.namespace}/{child.name}"
    if live.owner is not None:
        return ChildHealth(
            health=Health.DEGRADED,
            reason=REASON_OWNED_ELSEWHERE,
            message=f"{where} already belongs to application {live.owner}; federator leaves it "
            "untouched: rename the streamlet or topic",
        )
    if live.adopt == owner:
        return None
    consent = (
        f"annotate it {naming.ADOPT_ANNOTATION}={owner} (its owner's consent) to let this "
        "application take it over"
    )
    if child.topic is not None:
        remedy = f"rename the topic, declare it managed: false to use it as it is, or {consent}"
    else:
        remedy = f"rename the streamlet or the application, or {consent}"
    return ChildHealth(
        health=Health.DEGRADED,
        reason=REASON_ALREADY_EXISTS,
        message=f"{where} already exists and was not created by federator; it is left "
        f"untouched: {remedy}",
    )


def _is_healthy(live: Observed | None) -> bool:
    return live is not None and live.health.health is Health.HEALTHY


def _owned_candidates(
    inventory: Sequence[InventoryItem],
    observed: Mapping[Key, Observed],
    found: Sequence[Observed],
    owner: str,
) -> list[InventoryItem]:
    """The inventory plus what was found in the cluster with this application's annotation,
    keeping only objects that exist and are this application's: an entry whose object is gone
    has nothing to delete, and one that now carries another owner (or none) is not ours."""
    live = {**{f.key: f for f in found}, **observed}
    items = {i.key: i for i in inventory}
    for extra in found:
        items.setdefault(extra.key, InventoryItem.from_body(extra.body))
    return [i for i in items.values() if i.key in live and live[i.key].owned_by(owner)]


def deletion_plan(
    inventory: Sequence[InventoryItem],
    *,
    app_namespace: str,
    deletion_policy: DeletionPolicy,
    owner: str,
    observed: Mapping[Key, Observed],
    found: Sequence[Observed] = (),
) -> tuple[InventoryItem, ...]:
    """On Application deletion, what the finalizer deletes itself: Delete-policy topics, and
    children the garbage collector cannot reach (other namespaces), among the inventory and
    what was `found` in the cluster with this application's annotation; only objects that
    `observed`/`found` show as this application's. Owned same-namespace children are left to
    the garbage collector (their ownerReferences)."""
    out = []
    for item in _owned_candidates(inventory, observed, found, owner):
        if item.kind == delegates.KAFKA_TOPIC.kind:
            if deletion_policy is DeletionPolicy.DELETE:
                out.append(item)
        elif item.namespace != app_namespace:
            out.append(item)
    return tuple(out)
