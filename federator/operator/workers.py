"""One debounced worker per Application: every trigger (spec change, child event, resync)
marks the application dirty; its worker reconciles once per quiet window, one at a time,
retrying transient API errors with exponential backoff. A burst of child events therefore
yields one reconcile and at most one status write, and one failing application never blocks
or slows the others (each has its own task; the blocking work runs in threads).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from federator.core import health
from federator.kube.client import Kube, KubeError
from federator.metrics import Metrics
from federator.operator.reconciler import Outcome, Reconciler

log = logging.getLogger("federator.workers")

AppKey = tuple[str, str]  # (namespace, name)
MAX_BACKOFF = 60.0


@dataclass
class Workers:
    kube: Kube
    reconciler: Reconciler
    metrics: Metrics | None = None
    debounce: float = 0.2
    _dirty: set[AppKey] = field(default_factory=set)
    _tasks: dict[AppKey, asyncio.Task[None]] = field(default_factory=dict)

    def kick(self, namespace: str, name: str) -> None:
        """Mark an application dirty; start its worker if idle. Call on the event loop."""
        key = (namespace, name)
        self._dirty.add(key)
        task = self._tasks.get(key)
        if task is None or task.done():
            self._tasks[key] = asyncio.get_running_loop().create_task(
                self._run(key), name=f"federator:{namespace}/{name}"
            )

    def forget(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        self._dirty.discard(key)
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()
        if self.metrics is not None:
            self.metrics.forget(namespace, name)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, key: AppKey) -> None:
        backoff = 0.5
        while key in self._dirty:
            await asyncio.sleep(self.debounce)  # the quiet window that coalesces a burst
            self._dirty.discard(key)
            try:
                await asyncio.to_thread(self.once, *key)
                backoff = 0.5
            except KubeError as exc:
                log.warning("reconcile of %s/%s failed, retrying in %.1fs: %s", *key, backoff, exc)
                self._dirty.add(key)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
            except Exception:
                log.exception("reconcile of %s/%s crashed; retrying in %.1fs", *key, backoff)
                self._dirty.add(key)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    def once(self, namespace: str, name: str) -> Outcome | None:
        """Reconcile one application now (blocking). None when it is gone or being deleted."""
        body = self.kube.get_application(namespace, name)
        if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
            return None
        started = time.perf_counter()
        try:
            outcome = self.reconciler.reconcile(body)
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
            self.kube.patch_application_status(namespace, name, outcome.status)
            if self.metrics is not None:
                self.metrics.count_status_write(namespace, name)
            self._events(body, old, outcome)
        elif outcome.applied or outcome.pruned:
            self._events(body, old, outcome)
        return outcome

    def _events(self, body: dict[str, Any], old: dict[str, Any], outcome: Outcome) -> None:
        """Kubernetes Events for what changed: Compiled, Applied, Pruned, HealthChanged,
        InvalidSpec. Only on change, so a no-op resync posts nothing."""
        new = outcome.status
        old_compiled = _condition(old, "Compiled")
        new_compiled = _condition(new, "Compiled")
        generation = (body.get("metadata") or {}).get("generation")
        if outcome.result == "invalid":
            if old_compiled != new_compiled or old.get("observedGeneration") != generation:
                self.kube.event(
                    body,
                    type_="Warning",
                    reason="InvalidSpec",
                    message="; ".join(outcome.problems),
                )
        elif old_compiled != new_compiled or old.get("observedGeneration") != generation:
            self.kube.event(
                body,
                type_="Normal",
                reason="Compiled",
                message=f"generation {generation}: {new.get('total', 0)} children",
            )
        if outcome.applied:
            self.kube.event(
                body,
                type_="Normal",
                reason="Applied",
                message=f"applied {len(outcome.applied)}: " + ", ".join(outcome.applied[:10]),
            )
        if outcome.pruned:
            self.kube.event(
                body,
                type_="Normal",
                reason="Pruned",
                message=f"pruned {len(outcome.pruned)}: " + ", ".join(outcome.pruned[:10]),
            )
        if old.get("phase") != new.get("phase"):
            self.kube.event(
                body,
                type_="Warning" if new.get("phase") in ("Degraded", "Invalid") else "Normal",
                reason="HealthChanged",
                message=f"{old.get('phase') or 'None'} -> {new.get('phase')}: "
                + str(_condition_message(new, "Ready")),
            )


def _condition(status: dict[str, Any], kind: str) -> tuple[Any, Any]:
    for condition in status.get("conditions") or []:
        if condition.get("type") == kind:
            return (condition.get("status"), condition.get("message"))
    return (None, None)


def _condition_message(status: dict[str, Any], kind: str) -> Any:
    return _condition(status, kind)[1]
