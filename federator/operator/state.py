"""What a `Reconciler` keeps between reconciles and shares between its jobs: its clients,
the memory of its own writes and apply marks, the caches, and the pool its I/O runs on.

The jobs (observe, apply, owned, impersonation, refusals, finalizer) are each a class over this
state, in a module of their own; `reconciler.Reconciler` is all of them, the one entry point.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from federator.core import delegates, health, sharding
from federator.core.keys import Key
from federator.core.scope import CLUSTERWIDE, Scope
from federator.core.settings import Settings
from federator.kube.client import Kube, ResourceRef, split_api_version
from federator.kube.crdschemas import CrdSchemaCache
from federator.kube.discovery import DiscoveryCache
from federator.operator.compile_cache import CompileCache
from federator.operator.fairness import FairPool
from federator.operator.watch_cache import WatchCache

UNASSESSED = health.ChildHealth(health=health.Health.UNKNOWN, reason="Listed")
"""The health of an object found by listing, only ever pruned or deleted (never reported)."""
OBSERVERS = 8
"""Concurrent GETs and applies of children (a shared pool, so many applications reconciling at
once never open more connections than this), served to the applications in turn."""
CHUNK = 4 * OBSERVERS
"""Children a reconcile works through before it lets a waiting application's reconcile go first
(`Reconciler.pace`): a few round trips, so a small application waits that long, not for
thousands of another's children."""
T = TypeVar("T")
R = TypeVar("R")


def ref_of(kind: str, api_version: str, namespace: str, name: str) -> ResourceRef:
    group, version = split_api_version(api_version)
    return ResourceRef(
        group=group,
        version=version,
        plural=delegates.BY_KIND[kind].plural,
        namespace=namespace,
        name=name,
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ReconcilerState:
    """The fields of a `Reconciler` (its constructor) and the helpers every job uses."""

    kube: Kube
    settings: Settings
    discovery: DiscoveryCache
    clock: Callable[[], str] = _now
    _marks: dict[Key, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # resourceVersions of our last write: one per apply, two per create (create, then claim)
    _written: dict[Key, tuple[str, ...]] = field(default_factory=dict)
    compiled: CompileCache = field(default_factory=CompileCache)
    cache: WatchCache = field(default_factory=WatchCache)
    on_read: Callable[[str, str], None] | None = None  # (source cache|api, kind), for metrics
    _pool: FairPool = field(default_factory=lambda: FairPool(OBSERVERS, name="observe"))
    pace: Callable[[], None] | None = None
    """Called between chunks of a large reconcile: the worker passes its turn there when
    another application waits (`fairness.Turns.pass_turn`)."""
    schemas: CrdSchemaCache | None = None
    """The installed delegate CRDs' schemas, to check each child against before it is
    applied (None: not checked; the API server's answer alone decides)."""
    _judged: OrderedDict[Key, tuple[bytes, health.ChildHealth | None]] = field(
        default_factory=OrderedDict
    )
    scope: Scope = CLUSTERWIDE
    """The namespaces this operator serves (`-n`, else `operator.namespaces`, else all):
    nothing outside them is reconciled, read as a child, written, pruned or deleted."""

    @property
    def shard(self) -> sharding.Shard:
        """The Applications (and children) this operator process serves."""
        return sharding.Shard(self.settings.sharding.shard)

    def _map(self, owner: str, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """`fn` over `items` on the shared pool in `owner`'s turn, CHUNK at a time, pacing
        between chunks: one application's thousands of children are interleaved with the
        others' few instead of queued before them."""
        out: list[R] = []
        for start in range(0, len(items), CHUNK):
            if start and self.pace is not None:
                self.pace()
            out += self._pool.map(owner, fn, items[start : start + CHUNK])
        return out

    def own_write(self, kind: str, namespace: str, name: str, resource_version: str) -> bool:
        """Whether this exact version of a child is one our own last write returned: its
        watch event carries nothing the reconcile that wrote it did not already see."""
        with self._lock:
            return bool(resource_version) and resource_version in self._written.get(
                (kind, namespace, name), ()
            )

    def _remember(self, key: Key, *bodies: Mapping[str, Any] | None) -> None:
        """The versions one write produced (a create's two), or forget them (None)."""
        versions = tuple(
            str(v)
            for b in bodies
            if (v := ((b or {}).get("metadata") or {}).get("resourceVersion"))
        )
        with self._lock:
            if versions:
                self._written[key] = versions
            else:
                self._written.pop(key, None)

    def _marks_for(self, keys: Iterable[Key]) -> dict[Key, str]:
        """The apply marks the verdicts of these children read (`decide.verdict`): what
        `_mark_before_apply` recorded at their last spec-changing apply."""
        with self._lock:
            return {key: mark for key in keys if (mark := self._marks.get(key)) is not None}
