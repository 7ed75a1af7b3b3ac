"""`federator run`: build the operator from settings and hand the loop to kopf."""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Sequence

import kopf
from kubernetes import client, config

from federator.core.settings import Settings
from federator.core.sharding import Shard
from federator.kube.client import Kube
from federator.kube.discovery import DiscoveryCache
from federator.metrics import Metrics
from federator.operator.fairness import Turns
from federator.operator.handlers import build_registry
from federator.operator.reconciler import Reconciler
from federator.operator.workers import RECONCILERS, Workers

log = logging.getLogger("federator.run")
CONNECTIONS = 32
"""HTTP connections kept open to the API server. The client's default (5 per CPU: 10 here) is
fewer than the threads that use it at once (the child pool, the reconciles, the Event
posters), and urllib3 closes every connection beyond its pool: under load, each request then
paid a new TLS handshake ("Connection pool is full, discarding connection")."""


def api_client(kubeconfig: str | None) -> client.ApiClient:
    """From --kubeconfig, else $KUBECONFIG / ~/.kube/config, else the in-cluster identity."""
    conf = client.Configuration()
    try:
        config.load_kube_config(config_file=kubeconfig, client_configuration=conf)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        if kubeconfig:
            raise
        config.load_incluster_config(client_configuration=conf)  # type: ignore[no-untyped-call]
    conf.connection_pool_maxsize = CONNECTIONS
    return client.ApiClient(conf)


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
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if kubeconfig:
        os.environ["KUBECONFIG"] = kubeconfig  # kopf's own login reads it too
    kube = Kube(api_client(kubeconfig), instance=Shard(settings.sharding.shard).identity)
    metrics = Metrics()
    kube.on_write = metrics.count_api_write  # type: ignore[assignment]
    turns = Turns(RECONCILERS)  # a large reconcile passes its turn between chunks
    reconciler = Reconciler(
        kube=kube,
        settings=settings,
        discovery=DiscoveryCache(kube),
        on_read=metrics.count_child_read,  # type: ignore[arg-type]
        pace=turns.pass_turn,
    )
    workers = Workers(
        kube=kube,
        reconciler=reconciler,
        metrics=metrics,
        debounce=settings.operator.status_debounce_seconds,
        turns=turns,
        shard=reconciler.shard,
    )
    watched = tuple(namespaces) or settings.operator.namespaces
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
    while True:
        started = time.monotonic()
        try:
            kopf.run(
                registry=registry,
                standalone=peering is None,
                peering_name=peering,
                priority=priority or 0,
                clusterwide=not watched,
                namespaces=watched,
                liveness_endpoint=liveness,
            )
            return  # stopped by a signal: a clean exit
        except Exception as exc:
            # kopf's watch machinery can die on a race it does not absorb (e.g. a delegate CRD
            # deleted between its discovery and its watch request: a 404 on the watch). The
            # state lives in the cluster, so restart the machinery in-process, with backoff,
            # instead of exiting: a restart of converged applications makes no writes.
            delay = 1.0 if time.monotonic() - started > 60 else min(delay * 2, 30.0)
            log.warning(
                "the watch machinery failed (%s: %s); restarting in %.0fs",
                type(exc).__name__,
                exc,
                delay,
            )
            time.sleep(delay)
