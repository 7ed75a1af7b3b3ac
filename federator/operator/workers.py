"""One debounced worker per Application: every trigger (spec change, child event, resync)
marks the application dirty; its worker reconciles once the application has been quiet for a
short gap (`QUIET`), at the latest `debounce` seconds after the first trigger, and never
sooner than `MIN_INTERVAL` after its previous reconcile started; one reconcile at a time,
retrying transient API errors with exponential backoff. An isolated change is therefore acted
on within milliseconds, a burst of child events (events closer together than the gap, for up
to `debounce` seconds) yields one reconcile and at most one status write, and a sustained
stream of events at most one reconcile per `MIN_INTERVAL`; the echoes of our own applies
trigger nothing. One failing application never blocks or slows the others (each has its own
task; the blocking work runs in threads), and one huge application never starves them: at most
`RECONCILERS` reconciles run at once, granted in turn (`fairness.Turns`), and a reconcile
working through thousands of children lets waiting applications go first between chunks.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from federator.core import appkind, crdcheck, health
from federator.core.scope import CLUSTERWIDE, Scope
from federator.core.sharding import DEFAULT as DEFAULT_SHARD
from federator.core.sharding import Shard
from federator.core.status_types import Phase
from federator.kube.client import Kube, KubeError
from federator.metrics import Metrics
from federator.operator import status
from federator.operator.access import Access
from federator.operator.fairness import Closed, Turns
from federator.operator.reconciler import Outcome, Reconciler
from federator.operator.watch_cache import WatchCache

log = logging.getLogger("federator.workers")

AppKey = tuple[str, str]  # (namespace, name)
MAX_BACKOFF = 60.0
QUIET = 0.01
"""Seconds without a new trigger after which a dirty application is reconciled (capped by the
debounce window): long enough to coalesce the events of one burst (a delegate operator writing
several statuses), short enough not to delay an isolated change."""
MIN_INTERVAL = 0.05
"""Seconds between the starts of two reconciles of one application (capped by the debounce
window): bounds the reconciles and status writes of an application whose children change
continuously, without delaying the next wave of an application being deployed."""
RECONCILERS = 4
"""Reconciles running at once. Reconciles wait on the API server most of the time and share
the child pool (`reconciler.OBSERVERS` threads), so a few suffice; more would only hold more
applications in memory at once and share the same CPU."""
THREADS = 64
"""Threads a reconcile may wait for its turn in (the wait blocks a thread, not the event
loop); applications beyond that wait in the executor's queue, also in arrival order."""
POSTERS = 4
"""Threads posting Events in the background (best effort; a reconcile never waits for them)."""
Echo = tuple[str, str, str, str]  # (kind, namespace, name, resourceVersion) of a child event


def app_key(namespace: str, name: str) -> tuple[str, str, str]:
    return (appkind.KIND, namespace, name)


@dataclass
class Workers:
    kube: Kube
    reconciler: Reconciler
    metrics: Metrics | None = None
    debounce: float = 0.2
    shard: Shard = DEFAULT_SHARD
    """The Applications this process serves (`core.sharding`)."""
    scope: Scope = CLUSTERWIDE
    """The namespaces whose Applications this process serves (`core.scope`)."""
    _dirty: set[AppKey] = field(default_factory=set)
    _tasks: dict[AppKey, asyncio.Task[None]] = field(default_factory=dict)
    _since: dict[AppKey, float] = field(default_factory=dict)  # first trigger while dirty
    _last: dict[AppKey, float] = field(default_factory=dict)  # latest trigger
    _started: dict[AppKey, float] = field(default_factory=dict)  # latest reconcile start
    _real: set[AppKey] = field(default_factory=set)  # triggered by more than child echoes
    _fresh: set[AppKey] = field(default_factory=set)  # a resync: GET every child
    _echoes: dict[AppKey, list[Echo]] = field(default_factory=dict)
    apps: WatchCache = field(default_factory=WatchCache)  # Applications, fed by kopf's watch
    _poster: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(POSTERS, thread_name_prefix="events")
    )
    turns: Turns = field(default_factory=lambda: Turns(RECONCILERS))
    """Shared with the reconciler, whose `pace` passes the turn between chunks."""
    _threads: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(THREADS, thread_name_prefix="reconcile")
    )
    access: Access = field(default_factory=Access)
    """Whether the API server accepts federator's credentials (the readiness probe's)."""

    def kick(
        self, namespace: str, name: str, child: Echo | None = None, *, fresh: bool = False
    ) -> None:
        """Mark an application dirty; start its worker if idle. Call on the event loop.

        `child`: the child version whose event triggered this. When every trigger since the
        last reconcile is the echo of one of our own applies (the version that apply returned,
        which the reconcile that wrote it already saw), the worker skips the reconcile.
        `fresh`: observe every child by GET, not from the watch cache (the resync)."""
        key = (namespace, name)
        if fresh:
            self._fresh.add(key)
        if child is None:
            self._real.add(key)
        else:
            self._echoes.setdefault(key, []).append(child)
        now = asyncio.get_running_loop().time()
        if key not in self._dirty:
            self._since[key] = now
        self._last[key] = now
        self._dirty.add(key)
        task = self._tasks.get(key)
        if task is None or task.done():
            self._tasks[key] = asyncio.get_running_loop().create_task(
                self._run(key), name=f"federator:{namespace}/{name}"
            )

    def forget(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        self._dirty.discard(key)
        self._since.pop(key, None)
        self._last.pop(key, None)
        self._started.pop(key, None)
        self._real.discard(key)
        self._fresh.discard(key)
        self._echoes.pop(key, None)
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()
        if self.metrics is not None:
            self.metrics.forget(namespace, name)

    async def stop(self) -> None:
        self.turns.close()  # reconciles waiting for a turn in their threads never start
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, key: AppKey) -> None:
        backoff = 0.5
        gone = False
        try:
            gone = await self._loop(key, backoff)
        finally:
            if gone and key not in self._dirty:
                # Gone (deleted, being deleted, another shard's): the children's deletion
                # events kick it after `forget`; keep nothing of it (create/delete cycles
                # must leave the memory flat).
                self._since.pop(key, None)
                self._last.pop(key, None)
                self._started.pop(key, None)
                if self._tasks.get(key) is asyncio.current_task():
                    del self._tasks[key]

    async def _loop(self, key: AppKey, backoff: float) -> bool:
        """Reconcile while dirty; whether the application was gone at the last try."""
        gone = False
        while key in self._dirty:
            await self._quiet(key)  # coalesces a burst; bounded by the debounce window
            self._dirty.discard(key)
            real = key in self._real
            self._real.discard(key)
            fresh = key in self._fresh
            self._fresh.discard(key)
            echoes = self._echoes.pop(key, [])
            if not real and all(self.reconciler.own_write(*echo) for echo in echoes):
                continue  # only the echoes of our own applies: nothing new to see
            self._started[key] = asyncio.get_running_loop().time()
            try:
                outcome = await asyncio.get_running_loop().run_in_executor(
                    self._threads, functools.partial(self.once, *key, fresh=fresh)
                )
            except Closed:
                return False  # the operator is stopping
            except KubeError as exc:
                self.access.saw(exc)
                if not exc.retryable and exc.status not in status.REFUSED_REASONS:
                    # A refusal of the request itself (404, 422) does not go away by asking
                    # again: the next change of the application or of a child, or the resync,
                    # tries again.
                    log.warning("reconcile of %s/%s failed: %s", *key, exc)
                    await asyncio.to_thread(self._failed, key, exc)
                    backoff = 0.5
                    continue
                # Transient, or federator's identity refused (401: a rotated or revoked token;
                # 403: its RBAC changed): retried with backoff until the server accepts it
                # again; a refusal is also named on the Application while it lasts.
                log.warning("reconcile of %s/%s failed, retrying in %.1fs: %s", *key, backoff, exc)
                if exc.status in status.REFUSED_REASONS:
                    await asyncio.to_thread(self._failed, key, exc)
                self._dirty.add(key)
                self._real.add(key)
                self._fresh.add(key)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
            except Exception:
                log.exception("reconcile of %s/%s crashed; retrying in %.1fs", *key, backoff)
                self._dirty.add(key)
                self._real.add(key)
                self._fresh.add(key)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
            else:
                self.access.accepted()
                gone = outcome is None
                if outcome is not None and outcome.retry:
                    # The status says which writes failed; try those again soon, backing off.
                    self._dirty.add(key)
                    self._real.add(key)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                else:
                    backoff = 0.5
        return gone

    async def _quiet(self, key: AppKey) -> None:
        """Sleep until `key` has had no trigger for `QUIET` seconds, or until `debounce` seconds
        after the first trigger since it became dirty, whichever comes first; and at least
        until `MIN_INTERVAL` after the previous reconcile started. A trigger that is not a child
        event (the application created or changed, a resync) has no burst to wait for."""
        loop = asyncio.get_running_loop()
        gap = 0.0 if key in self._real else min(QUIET, self.debounce)
        spacing = min(MIN_INTERVAL, self.debounce)
        while True:
            now = loop.time()
            since = self._since.get(key, now)
            wake = min(self._last.get(key, since) + gap, since + self.debounce)
            wake = max(wake, self._started.get(key, -spacing) + spacing)
            if wake <= now:
                return
            await asyncio.sleep(wake - now)

    def once(self, namespace: str, name: str, *, fresh: bool = False) -> Outcome | None:
        """Reconcile one application now (blocking, in its turn). None when it is gone or being
        deleted. The application is read from the watch cache unless `fresh`, or unless our own
        last status write has not echoed yet (then the cached status would be older than ours)."""
        with self.turns.turn():
            return self._once(namespace, name, fresh=fresh)

    def _once(self, namespace: str, name: str, *, fresh: bool) -> Outcome | None:
        if not self.scope.serves(namespace):
            return None  # another operator's: never read, reconciled or written here
        known, cached = (False, None) if fresh else self.apps.lookup(app_key(namespace, name))
        body = dict(cached) if known and cached is not None else None
        if body is None:
            body = self.kube.get_application(namespace, name)
        if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
            return None
        if not self.shard.serves(body):
            return None  # relabelled to another shard since the trigger: that shard serves it
        started = time.perf_counter()
        try:
            outcome = self.reconciler.reconcile(body, fresh=fresh)
        except Exception:
            if self.metrics is not None:
                self.metrics.observe_reconcile("error", time.perf_counter() - started)
            raise
        if self.metrics is not None:
            self.metrics.observe_reconcile(
                "invalid" if outcome.result == "invalid" else "success",
                time.perf_counter() - started,
            )
            self.metrics.record_health(namespace, name, outcome.app_health, outcome.reports)
        old = body.get("status") or {}
        if health.status_changed(old, outcome.status):
            written = self.kube.patch_application_status(namespace, name, outcome.status)
            self.apps.wrote(app_key(namespace, name), written)
            if self.metrics is not None:
                self.metrics.count_status_write(namespace, name)
            self._events(body, old, outcome)
        elif outcome.applied or outcome.pruned:
            self._events(body, old, outcome)
        return outcome

    def _failed(self, key: AppKey, exc: KubeError) -> None:
        """A reconcile that could not finish: say so on the Application (an Event; for a
        refusal also its `Stalled` condition, with the server's words), since its status could
        not be computed. Best effort, and never raises: the same refusal may stop these writes
        too (a 401 refuses everything), and the worker must live to retry."""
        try:
            body = self.kube.get_application(*key)
            if body is None:
                return
            if exc.status in status.REFUSED_REASONS:
                old = body.get("status") or {}
                conditions = status.refused_conditions(
                    old,
                    exc.status,
                    str(exc),
                    generation=(body.get("metadata") or {}).get("generation"),
                    now=self.reconciler.clock(),
                )
                if conditions != old.get("conditions"):
                    written = self.kube.patch_application_status(*key, {"conditions": conditions})
                    self.apps.wrote(app_key(*key), written)
            self.kube.event(
                body, type_="Warning", reason="ReconcileFailed", message=str(exc)[:1000]
            )
        except KubeError as again:
            self.access.saw(again)
            log.warning("could not report the failure on %s/%s: %s", *key, again)

    def _events(self, body: dict[str, Any], old: dict[str, Any], outcome: Outcome) -> None:
        """Kubernetes Events, and one log line each, for what changed: Compiled, Applied,
        Pruned, HealthChanged, InvalidSpec. Only on change, so a no-op resync posts nothing.
        Posted in the background (best effort, like every Event): the next reconcile, e.g. the
        next wave, does not wait for them."""
        pending: list[dict[str, Any]] = []

        def post(**event: Any) -> None:
            pending.append(event)

        new = outcome.status
        old_compiled = _condition(old, "Compiled")
        new_compiled = _condition(new, "Compiled")
        generation = (body.get("metadata") or {}).get("generation")
        if outcome.result == "invalid":
            if old_compiled != new_compiled or old.get("observedGeneration") != generation:
                post(
                    type_="Warning",
                    reason="InvalidSpec",
                    message="; ".join(outcome.problems),
                )
        elif old_compiled != new_compiled or old.get("observedGeneration") != generation:
            post(
                type_="Normal",
                reason="Compiled",
                message=f"generation {generation}: {new.get('total', 0)} children",
            )
        if outcome.applied:
            post(
                type_="Normal",
                reason="Applied",
                message=f"applied {len(outcome.applied)}: " + ", ".join(outcome.applied[:10]),
            )
        if outcome.failures:
            post(
                type_="Warning",
                reason="WriteFailed",
                message=f"{len(outcome.failures)} failed: " + "; ".join(outcome.failures[:5]),
            )
        if outcome.refused:
            post(
                type_="Warning",
                reason=crdcheck.REASON,
                message=f"{len(outcome.refused)} not applied: " + "; ".join(outcome.refused[:3]),
            )
        if outcome.pruned:
            post(
                type_="Normal",
                reason="Pruned",
                message=f"pruned {len(outcome.pruned)}: " + ", ".join(outcome.pruned[:10]),
            )
        old_phase, new_phase = Phase.parse(old.get("phase")), Phase.parse(new.get("phase"))
        if old_phase != new_phase:
            post(
                type_="Warning" if new_phase is not None and new_phase.alarming else "Normal",
                reason="HealthChanged",
                message=f"{old_phase or 'None'} -> {new_phase}: "
                + str(_condition_message(new, "Ready")),
            )
        meta = body.get("metadata") or {}
        where = f"{meta.get('namespace')}/{meta.get('name')}"
        for event in pending:
            # The log's line per decision (what was applied, pruned, how the health changed);
            # the child events that led to it are logged at DEBUG only (kopf's, see `run`).
            level = logging.WARNING if event["type_"] == "Warning" else logging.INFO
            log.log(level, "%s %s: %s", event["reason"], where, str(event["message"])[:1000])
            self._poster.submit(self.kube.event, body, **event)


def _condition(status: dict[str, Any], kind: str) -> tuple[Any, Any]:
    for condition in status.get("conditions") or []:
        if condition.get("type") == kind:
            return (condition.get("status"), condition.get("message"))
    return (None, None)


def _condition_message(status: dict[str, Any], kind: str) -> Any:
    return _condition(status, kind)[1]
