"""Quiet at rest (issue 14): resyncs spread over the period and read from the watch cache, kopf's
per-event log lines at DEBUG, a connection per thread, a clean stop on repeated signals.

Aspects covered:
- resync offsets: deterministic per uid, within the period, spread evenly over it for 1,000
  applications created together (no minute with far more than its share);
- a resync GETs (fresh) only within one period after a watch re-listed; the watch cache
  records when kopf listed an object it had already streamed (not its first listing);
- logging: kopf's "Handler ... succeeded" lines are dropped at INFO, kept as DEBUG with -v;
  its warnings pass; federator's own lines are untouched;
- the connection pool covers every thread that may use the client at once;
- `operate`: a second SIGTERM while stopping is an INFO line, not an InvalidStateError;
- the wiring: one resync queue (no kopf timer), whose kick reads from the cache.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import uuid
from collections.abc import Iterator
from typing import Any

import kopf
import pytest

from federator.operator import resync, run, workers
from federator.operator.reconciler import OBSERVERS
from federator.operator.watch_cache import WatchCache

PERIOD = 300.0


def uids(n: int) -> list[str]:
    return [str(uuid.uuid5(uuid.NAMESPACE_URL, f"app-{i}")) for i in range(n)]


def test_offsets_are_deterministic_and_within_the_period() -> None:
    for uid in uids(50):
        first = resync.offset(uid, PERIOD)
        assert first == resync.offset(uid, PERIOD)
        assert 0 <= first < PERIOD


@pytest.mark.parametrize(
    ("buckets", "slack"),
    [(5, 0.15), (10, 0.25), (60, 0.8)],
    ids=["per-minute", "per-30s", "per-5s"],
)
def test_applications_created_together_resync_spread_over_the_period(
    buckets: int, slack: float
) -> None:
    """1,000 applications created at once: their timers all start together, so their resyncs
    fall at their offsets. Each slice of the period gets close to its share (a hash is
    uniform, not a grid: the slack is a few standard deviations of a fair draw), where it was
    all of them in one instant when every timer waited exactly one period."""
    n = 1000
    counts = [0] * buckets
    for uid in uids(n):
        counts[int(resync.offset(uid, PERIOD) / PERIOD * buckets)] += 1
    share = n / buckets
    assert max(counts) <= (1 + slack) * share, counts
    assert min(counts) >= (1 - slack) * share, counts


@pytest.mark.parametrize(
    ("listed_at", "now", "fresh"),
    [
        (None, 1000.0, False),  # nothing ever listed (no watch yet): the cache decides per child
        (900.0, 1000.0, True),  # a listing 100 s ago: this may be the first resync since
        (700.0, 1000.0, False),  # every application has resynced since that listing
        (700.0, 999.9, True),
    ],
    ids=["never-listed", "listed-within-the-period", "listed-before-the-period", "just-within"],
)
def test_a_resync_gets_every_child_only_after_a_listing(
    listed_at: float | None, now: float, fresh: bool
) -> None:
    assert resync.fresh(listed_at, now, PERIOD) is fresh


def test_the_watch_cache_records_re_listings_not_the_first_listing() -> None:
    cache = WatchCache()
    body = {
        "kind": "KafkaTopic",
        "metadata": {"namespace": "k", "name": "t", "resourceVersion": "1"},
    }
    cache.seen(None, body)  # our priming
    cache.streamed(None, body)  # kopf's first listing, right after
    for event in ("MODIFIED", "DELETED", "ADDED", "MODIFIED"):
        cache.streamed(event, body)
    assert cache.listed_at is None
    cache.streamed(None, body)  # kopf listed what it had streamed: its stream broke
    first = cache.listed_at
    assert first is not None
    cache.streamed("MODIFIED", body)
    assert cache.listed_at == first
    assert cache.lookup(("KafkaTopic", "k", "t")) == (True, body)


# ------------------------------------------------------------------ logging


@pytest.fixture
def kopf_logs() -> Iterator[logging.Logger]:
    objects = logging.getLogger(run.KOPF_OBJECTS)
    before = list(objects.filters)
    run.configure_logging(verbose=False)
    yield objects
    objects.filters[:] = before


def test_kopf_per_event_lines_are_debug(
    kopf_logs: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    kopf_logs.info("Handler 'child-kafkatopics' succeeded.")
    kopf_logs.info("Timer 'resync' succeeded.")
    kopf_logs.warning("Patching failed with inconsistencies")
    logging.getLogger("federator.workers").info("Applied apps/cra: applied 1: Deployment/x")
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        (run.KOPF_OBJECTS, "WARNING", "Patching failed with inconsistencies"),
        ("federator.workers", "INFO", "Applied apps/cra: applied 1: Deployment/x"),
    ]


def test_verbose_keeps_them_as_debug(
    kopf_logs: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    kopf_logs.info("Handler 'child-kafkatopics' succeeded.")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("DEBUG", "Handler 'child-kafkatopics' succeeded.")
    ]


def test_configure_logging_twice_adds_one_filter(kopf_logs: logging.Logger) -> None:
    run.configure_logging(verbose=False)
    assert sum(isinstance(f, run._DemoteToDebug) for f in kopf_logs.filters) == 1


# ------------------------------------------------------------------ connections and signals


def test_a_connection_for_every_thread_that_may_use_the_client() -> None:
    executor = min(32, (os.cpu_count() or 1) + 4)  # asyncio.to_thread's default executor
    assert workers.RECONCILERS + OBSERVERS + workers.POSTERS + executor <= run.CONNECTIONS


def test_a_second_signal_while_stopping_is_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    """Two SIGTERMs: kopf's own handler resolved a future twice (InvalidStateError, logged
    by asyncio as an ERROR); ours stops once and says so again."""
    caplog.set_level(logging.INFO)
    registry = kopf.OperatorRegistry()
    stopped: list[bool] = []

    def twice() -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)

    @kopf.on.startup(registry=registry)
    async def startup(**_: Any) -> None:
        # Once running (kopf starts its handlers' tasks before it installs its signal handlers).
        asyncio.get_running_loop().call_later(0.2, twice)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        stopped.append(True)

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server="https://127.0.0.1:1", insecure=True)

    async def main() -> bool:
        return await run.operate(registry=registry, standalone=True, clusterwide=True)

    assert asyncio.run(main()) is True
    assert stopped == [True]
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert ("INFO", "SIGTERM received: stopping") in messages
    assert ("INFO", "SIGTERM received again: still stopping") in messages
    # (kopf's own retries against the unreachable API server here are ERRORs of its own.)
    errors = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR and not r.name.startswith("kopf.")
    ]
    assert errors == []
    assert not any("InvalidStateError" in m for _, m in messages)


def test_resyncs_are_one_queue_that_reads_the_cache() -> None:
    """The wiring: no kopf timer per application (each kept a task and a copy of the body);
    the resync queue's kick trusts the watch cache unless a watch listed within the period."""
    from types import SimpleNamespace

    from federator.core.settings import Settings
    from federator.operator import handlers

    kicks: list[tuple[str, str, bool]] = []
    cache = WatchCache()
    fake_workers = SimpleNamespace(
        kick=lambda ns, name, fresh=False: kicks.append((ns, name, fresh))
    )
    registry = handlers.build_registry(
        fake_workers,  # type: ignore[arg-type]
        SimpleNamespace(cache=cache),  # type: ignore[arg-type]
        Settings(),
    )
    assert not list(registry._spawning.get_all_handlers())  # no timer, no daemon
    resyncs = handlers._register_lifecycle(
        kopf.OperatorRegistry(),
        fake_workers,  # type: ignore[arg-type]
        SimpleNamespace(cache=cache),  # type: ignore[arg-type]
        Settings(),
        namespaces=(),
        prime=False,
    )
    assert resyncs.period == Settings().operator.resync_seconds
    resyncs._kick("ns", "a")
    deployment = {"kind": "Deployment", "metadata": {"namespace": "ns", "name": "d"}}
    cache.streamed(None, deployment)  # kopf's first listing
    resyncs._kick("ns", "a")
    cache.streamed(None, deployment)  # a re-listing
    resyncs._kick("ns", "a")
    assert kicks == [("ns", "a", False), ("ns", "a", False), ("ns", "a", True)]
