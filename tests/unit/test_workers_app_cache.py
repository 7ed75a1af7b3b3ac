"""The worker reads the Application from the watch cache, and by GET exactly when the cache
cannot be trusted: never streamed, a fresh (resync/restart) reconcile, or our own status write
not yet echoed. A counting stand-in for the API: what is asserted is the worker's choice of
source, not the API server (the integration tests run the real one)."""

from __future__ import annotations

from typing import Any

from federator.core import health
from federator.operator.reconciler import Outcome
from federator.operator.workers import Workers, app_key

NS, NAME = "apps", "cra"
KEY = app_key(NS, NAME)


def app(version: str, phase: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Application",
        "metadata": {"namespace": NS, "name": NAME, "resourceVersion": version, "generation": 1},
        "spec": {},
    }
    if phase:
        body["status"] = {"phase": phase}
    return body


class CountingKube:
    def __init__(self, live: dict[str, Any]) -> None:
        self.live = live
        self.gets = 0
        self.patches = 0

    def get_application(self, namespace: str, name: str) -> dict[str, Any]:
        self.gets += 1
        return self.live

    def patch_application_status(
        self, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        self.patches += 1
        version = str(int(self.live["metadata"]["resourceVersion"]) + 1)
        self.live = {**self.live, "metadata": {**self.live["metadata"], "resourceVersion": version}}
        self.live["status"] = status
        return self.live

    def event(self, *_: Any, **__: Any) -> None:
        pass


class Reporting:
    """Reports the phase it is told; remembers which body it was given."""

    def __init__(self) -> None:
        self.phase = "Healthy"
        self.seen: list[dict[str, Any]] = []

    def reconcile(self, body: dict[str, Any], *, fresh: bool = False) -> Outcome:
        self.seen.append(body)
        return Outcome(
            status={"phase": self.phase},
            result="success",
            app_health=health.AppHealth(
                phase=self.phase, ready=0, total=0, summary="0/0", conditions=()
            ),
        )


def workers(live: dict[str, Any]) -> tuple[Workers, CountingKube, Reporting]:
    kube, reconciler = CountingKube(live), Reporting()
    return Workers(kube=kube, reconciler=reconciler), kube, reconciler  # type: ignore[arg-type]


def test_never_streamed_is_read_by_get() -> None:
    w, kube, _ = workers(app("1"))
    w.once(NS, NAME)
    assert kube.gets == 1


def test_a_streamed_application_is_read_from_the_cache_unless_fresh() -> None:
    w, kube, reconciler = workers(app("1", "Healthy"))
    w.apps.seen("ADDED", app("1", "Healthy"))
    w.once(NS, NAME)
    assert (kube.gets, kube.patches) == (0, 0)
    assert reconciler.seen[-1]["metadata"]["resourceVersion"] == "1"
    w.once(NS, NAME, fresh=True)
    assert kube.gets == 1


def test_after_our_status_write_the_application_is_read_by_get_until_its_echo() -> None:
    w, kube, reconciler = workers(app("1"))
    w.apps.seen("ADDED", app("1"))
    w.once(NS, NAME)  # writes the status: version 2
    assert (kube.gets, kube.patches) == (0, 1)
    w.once(NS, NAME)  # the cache still holds version 1, without our status: GET
    assert kube.gets == 1 and kube.patches == 1  # the GET showed our status: nothing to write
    w.apps.seen("MODIFIED", kube.live)  # the echo
    w.once(NS, NAME)
    assert (kube.gets, kube.patches) == (1, 1)
    assert reconciler.seen[-1]["metadata"]["resourceVersion"] == "2"


def test_a_deleted_application_is_not_served_from_the_cache() -> None:
    w, kube, _ = workers(app("1"))
    w.apps.seen("ADDED", app("1"))
    w.apps.seen("DELETED", app("3"))
    w.once(NS, NAME)
    assert kube.gets == 1


def test_a_gone_application_leaves_nothing_behind() -> None:
    """After `forget` (its deletion), its children's deletion events still kick it: the worker
    finds it gone and keeps none of its bookkeeping (flat memory over create/delete cycles)."""
    import asyncio

    w, kube, _ = workers(app("1"))
    kube.live = None  # type: ignore[assignment]  # deleted: the GET finds nothing

    async def scenario() -> None:
        w.debounce = 0.0
        w.forget(NS, NAME)
        for _ in range(3):  # three children's DELETED events
            w.kick(NS, NAME, None)
        for _ in range(200):
            task = w._tasks.get((NS, NAME))
            if task is None:
                break
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert kube.gets >= 1
    key = (NS, NAME)
    assert key not in w._tasks and key not in w._since and key not in w._last
    assert key not in w._started and key not in w._dirty and key not in w._real
