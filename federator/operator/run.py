"""`federator run`: build the operator from settings and hand the loop to kopf.

Also what makes it quiet at rest: kopf's per-event log lines at DEBUG, as many
connections to the API server as threads that use them, and a stop that stays clean however
many signals arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import time
from collections.abc import Sequence
from typing import Any

import kopf
from kubernetes import client

from federator.core.scope import Scope
from federator.core.settings import Settings
from federator.core.sharding import Shard
from federator.kube import connect
from federator.kube.client import Kube
from federator.kube.crdschemas import CrdSchemaCache
from federator.kube.discovery import DiscoveryCache
from federator.metrics import Metrics
from federator.operator import memory, stopsignals
from federator.operator.fairness import Turns
from federator.operator.handlers import build_registry
from federator.operator.reconciler import OBSERVERS, Reconciler
from federator.operator.stopsignals import SIGNALS, STOP_SIGNALS, StopSignals
from federator.operator.workers import POSTERS, RECONCILERS, Workers

log = logging.getLogger("federator.run")
CONNECTIONS = RECONCILERS + OBSERVERS + POSTERS + min(32, (os.cpu_count() or 1) + 4)
"""HTTP connections kept open to the API server: one per thread that may use the client at
once (the reconciles holding a turn, the child pool, the Event posters, and asyncio's default
executor, which runs finalizers, start-up priming and failure Events: min(32, CPUs + 4)
threads). The client's default (5 per CPU: 10 on 2 cores) is fewer, and urllib3 closes every
connection beyond its pool: under load, each request then paid a new TLS handshake
("Connection pool is full, discarding connection")."""
STOP_DEADLINE = 600.0
"""Seconds a graceful stop may take before the process kills itself (kopf's
`ultimate_exiting_timeout`, which it arms on its own signal handlers only)."""
KOPF_OBJECTS = "kopf.objects"
"""kopf's per-object logger: one INFO line per handler call ("Handler 'child-kafkatopics'
succeeded"), i.e. per child event, and per timer tick."""


class _DemoteToDebug(logging.Filter):
    """kopf's per-object INFO lines become DEBUG lines, shown only when the root logger is at
    DEBUG (`federator run -v`): a line per child event was 3.2 MB of log for 1,000 applications,
    and federator logs its own line per decision (applied, pruned, health changed)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO:
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger().isEnabledFor(logging.DEBUG)


_DEMOTE = _DemoteToDebug()


def configure_logging(verbose: bool) -> None:
    """INFO (DEBUG with `verbose`) to stderr; kopf's per-event lines at DEBUG."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    objects = logging.getLogger(KOPF_OBJECTS)
    if _DEMOTE not in objects.filters:
        objects.addFilter(_DEMOTE)


async def operate(signals: StopSignals = SIGNALS, **kopf_args: Any) -> bool:
    """kopf's operator in this loop, stopped by SIGINT/SIGTERM through a stop flag: True when
    stopped by a signal. kopf's own handlers resolve a future, and a second signal (Ctrl-C
    twice, a SIGTERM during the graceful stop) raised `InvalidStateError`, logged as an
    ERROR; ours are idempotent, and a second signal only says the stop is under way.

    Ours are process signal handlers (`stopsignals`), not the loop's: a signal that reached the
    loop's wake-up pipe just as the loop's handlers were removed at the end of the stop was
    dropped unseen (seen once in CI), and a process handler stays until the process exits. A
    signal that arrived before this loop started stops it at once."""
    loop = asyncio.get_running_loop()
    existing = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
    stop = asyncio.Event()

    def begin_stop() -> None:
        if stop.is_set():
            return
        stop.set()
        # kopf's last resort, which a stop flag does not arm: a stop that hangs is killed.
        loop.call_later(STOP_DEADLINE, os.kill, os.getpid(), signal.SIGKILL)

    def on_stop() -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: it is stopping anyway
            loop.call_soon_threadsafe(begin_stop)

    signals.on_stop = on_stop
    if signals.requested:
        begin_stop()
    try:
        tasks = await kopf.spawn_tasks(stop_flag=stop, **kopf_args)
        # kopf installed its handlers on the loop as it spawned its tasks (in the main thread
        # only): take them off the loop (which resets each signal to its default), and put
        # ours back at once.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)
                signals.install()
        signals.install()
        await kopf.run_tasks(tasks, ignored=existing)
    finally:
        signals.on_stop = None  # a signal from now on is seen by `run` (`requested`)
    return stop.is_set() or bool(signals.requested)


def api_client(kubeconfig: str | None) -> client.ApiClient:
    """From --kubeconfig, else $KUBECONFIG / ~/.kube/config, else the in-cluster identity."""
    return connect.api_client(kubeconfig or None, pool_size=CONNECTIONS)


def run(
    settings: Settings,
    *,
    kubeconfig: str | None = None,
    namespaces: Sequence[str] = (),
    verbose: bool = False,
    peering: str | None = None,
    priority: int | None = None,
) -> None:
    """Run until signalled. With `peering`, replicas join kopf's (Cluster)KopfPeering NAME and
    only the highest priority works; kopf's default priority is 0 for all, which pauses every
    replica, so each process picks a distinct random one unless told."""
    SIGNALS.install()  # already, if the CLI started us; a library caller gets them here
    configure_logging(verbose)
    memory.limit_arenas()  # before any thread starts
    if kubeconfig:
        os.environ["KUBECONFIG"] = kubeconfig  # kopf's own login reads it too
    kube = Kube(api_client(kubeconfig), instance=Shard(settings.sharding.shard).identity)
    metrics = Metrics(per_application=settings.operator.metrics_per_application)
    kube.on_write = metrics.count_api_write  # type: ignore[assignment]
    turns = Turns(RECONCILERS)  # a large reconcile passes its turn between chunks
    watched = tuple(namespaces) or settings.operator.namespaces
    reconciler = Reconciler(
        kube=kube,
        settings=settings,
        discovery=DiscoveryCache(kube),
        schemas=CrdSchemaCache(kube),
        on_read=metrics.count_child_read,  # type: ignore[arg-type]
        pace=turns.pass_turn,
        scope=Scope.of(watched),
    )
    workers = Workers(
        kube=kube,
        reconciler=reconciler,
        metrics=metrics,
        debounce=settings.operator.status_debounce_seconds,
        turns=turns,
        shard=reconciler.shard,
        scope=reconciler.scope,
    )
    if settings.operator.metrics_port:
        metrics.start_server(settings.operator.metrics_port)
    liveness = (
        f"http://0.0.0.0:{settings.operator.liveness_port}/healthz"
        if settings.operator.liveness_port
        else None
    )
    if peering and priority is None:
        priority = secrets.randbelow(2**31 - 2) + 1
    if settings.sharding.shard:
        log.info(
            "shard %s: serving the Applications labelled %s",
            *(settings.sharding.shard, Shard(settings.sharding.shard).selector),
        )
    registry = build_registry(
        workers, reconciler, settings, namespaces=watched, prime=peering is None
    )
    delay = 1.0
    while not SIGNALS.requested:
        started = time.monotonic()
        try:
            with contextlib.suppress(asyncio.CancelledError):  # as kopf.run
                asyncio.run(
                    operate(
                        registry=registry,
                        standalone=peering is None,
                        peering_name=peering,
                        priority=priority or 0,
                        clusterwide=not watched,
                        namespaces=watched,
                        liveness_endpoint=liveness,
                    )
                )
            break  # stopped by a signal: a clean exit
        except Exception as exc:
            # kopf's watch machinery can die on a race it does not absorb (e.g. a delegate CRD
            # deleted between its discovery and its watch request: a 404 on the watch), or on
            # credentials the API server refuses (kopf's `LoginError`). The state lives in the
            # cluster, so restart the machinery in-process, with backoff, instead of exiting: a
            # restart of converged applications makes no writes. A signal ends the wait.
            delay = 1.0 if time.monotonic() - started > 60 else min(delay * 2, 30.0)
            log.warning(
                "the watch machinery failed (%s: %s); restarting in %.0fs",
                type(exc).__name__,
                exc,
                delay,
            )
            SIGNALS.wait(delay)
    stopsignals.ignore_from_now_on()
