"""kopf wiring: which events trigger which work. No decisions here; see `workers` and the core.

- Application created (from its ADDED event, unless its topics need the finalizer first),
  changed (spec), resumed after a restart, or its resync timer fired: kick its worker (a
  debounced, level-based reconcile). Resyncs are one paced queue (`resyncs`), spread over the
  period, and read the watch cache (`resync`).
- Any child (label `app.kubernetes.io/managed-by: federator`) changed: remember it in the child
  cache (reconciles read children from there) and kick the application named by its
  `federator.io/application` annotation, so health follows the delegates (except the echo of
  our own apply: the very version the applying reconcile already saw, and an application in
  a namespace this operator does not serve: `core.scope`).
- Application deleted: the finalizer deletes Delete-policy topics and cross-namespace
  children; the garbage collector removes the owned rest. A failure that retrying may fix
  holds the deletion (with backoff) for at most `FINALIZE_DEADLINE`; a refusal never does:
  the Application goes, and a Warning Event names what was left behind (`finalize_delay`).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import kopf

from federator.core import delegates, naming, uninstall
from federator.core.appkind import GROUP, PLURAL, VERSION
from federator.core.settings import Settings
from federator.core.sharding import DEFAULT as DEFAULT_SHARD
from federator.core.sharding import Shard
from federator.kube.client import KubeError
from federator.operator import memory, resync, sharding
from federator.operator.diffbase import DigestDiffBase
from federator.operator.reconciler import DeletionIncomplete, Reconciler
from federator.operator.resyncs import Resyncs
from federator.operator.workers import MAX_BACKOFF, Workers

FINALIZER = uninstall.FINALIZER
MANAGED = {naming.MANAGED_BY: naming.MANAGER}
FINALIZE_DEADLINE = 600.0
"""Seconds a deletion may be held by failures that retrying could fix (the API server
unavailable, 5xx, 429, timeouts, conflicts). Past it the Application is let go and what is
left is named in a Warning Event: a deletion always completes, and what it can leave behind
is only ever kept, never lost (Delete-policy topics, children in other namespaces)."""

log = logging.getLogger("federator.handlers")


def configure(settings: kopf.OperatorSettings, shard: Shard = DEFAULT_SHARD) -> None:
    """kopf's own bookkeeping goes to annotations, never into the Application's status; its
    last-handled configuration is a digest, a few hundred bytes whatever the spec's size.
    Every watch is filtered by the API server to this shard's objects (`sharding.watch_only`)."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="federator.io")
    settings.persistence.diffbase_storage = DigestDiffBase(
        prefix="federator.io", key="last-handled-configuration"
    )
    settings.persistence.finalizer = FINALIZER
    settings.posting.level = logging.WARNING  # our own Events say what happened
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 60
    sharding.watch_only(settings, shard)


def finalize_delay(error: Exception, elapsed: float, retry: int) -> float | None:
    """After a failed finalization: seconds to wait before trying again, or None to let the
    Application go now. A refusal (403, 404, 422: the API server's answer will not change by
    asking again) never holds a deletion; anything else is retried with backoff, up to
    `FINALIZE_DEADLINE` seconds after the first try."""
    refused = isinstance(error, KubeError | DeletionIncomplete) and not error.retryable
    if refused or elapsed >= FINALIZE_DEADLINE:
        return None
    return float(min(2.0**retry, MAX_BACKOFF, max(1.0, FINALIZE_DEADLINE - elapsed)))


def left_behind(error: Exception, elapsed: float) -> str:
    """The Warning Event's message when a deletion completes without finishing its work."""
    why = (
        f"still failing after {elapsed:.0f}s"
        if getattr(error, "retryable", True)
        else "refused by the API server"
    )
    return (
        f"the Application was deleted, but federator could not delete everything it should "
        f"({why}): {error}; delete what is left by hand if it must go"
    )


def connection_info(conf: Any) -> kopf.ConnectionInfo:
    """kopf's credentials from a kubernetes client Configuration (kubeconfig or in-cluster).

    The header is read as the client itself would send it (`get_api_key_with_prefix`, which
    first runs the in-cluster loader's hook that re-reads a rotated service-account token),
    then split into scheme and token (RFC 7235). Each loader spells it its own way: a
    kubeconfig gives `Bearer <token>`, the in-cluster loader `bearer <token>`, an
    `api_key_prefix` the scheme apart; the scheme is case-insensitive, and kopf must not
    prepend a second one."""
    header = conf.get_api_key_with_prefix("BearerToken") or conf.get_api_key_with_prefix(
        "authorization"
    )
    scheme, token = authorization(header)
    return kopf.ConnectionInfo(
        server=conf.host,
        ca_path=conf.ssl_ca_cert,
        insecure=not conf.verify_ssl,
        scheme=scheme,
        token=token,
        certificate_path=conf.cert_file,
        private_key_path=conf.key_file,
        username=conf.username or None,
        password=conf.password or None,
    )


def authorization(header: str | None) -> tuple[str | None, str | None]:
    """(scheme, token) of an Authorization header value; a bare token is a bearer token.
    `bearer` in any case is spelled `Bearer`; surrounding whitespace (a token file written with
    a trailing newline) is not part of the token."""
    parts = (header or "").strip().split(None, 1)
    if not parts:
        return None, None
    if len(parts) == 1:
        return "Bearer", parts[0]
    scheme, token = parts
    return ("Bearer" if scheme.lower() == "bearer" else scheme), token.strip()


def build_registry(
    workers: Workers,
    reconciler: Reconciler,
    settings: Settings,
    *,
    namespaces: Sequence[str] = (),
    prime: bool = True,
) -> kopf.OperatorRegistry:
    """`namespaces`: those kopf watches (empty: all). `prime`: list the children into the cache
    at start-up and trust its misses; off under peering, where a standby's watches pause and
    its cache would age."""
    registry = kopf.OperatorRegistry()

    resyncs = _register_lifecycle(
        registry, workers, reconciler, settings, namespaces=namespaces, prime=prime
    )

    async def kick(namespace: str | None, name: str | None, **_: Any) -> None:
        if namespace and name:
            workers.kick(namespace, name)

    async def kick_fresh(namespace: str | None, name: str | None, **_: Any) -> None:
        # A restart: GET what kopf's own listing has not confirmed in the watch cache.
        if namespace and name:
            workers.kick(namespace, name, fresh=True)

    early: set[tuple[str, str]] = set()  # new applications kicked from their ADDED event

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry, id="observe")
    async def application_event(
        event: Any, body: kopf.Body, namespace: str | None, name: str, **_: Any
    ) -> None:
        # Every version of the application, for the reconcile to read (kopf calls event
        # handlers before its creation, update and deletion handlers, which kick it).
        event_type = (event or {}).get("type")
        workers.apps.seen(event_type, (event or {}).get("object") or dict(body))
        if namespace and event_type == "DELETED":
            resyncs.remove(namespace, name)
        elif namespace:
            resyncs.add(namespace, name, (body.get("metadata") or {}).get("uid"))
        # A new application starts deploying from its ADDED event, not from kopf's creation
        # handler, which runs only after kopf's finalizer round trip. Not under
        # deletionPolicy Delete: its topics, in another namespace, may only be created once the
        # finalizer that deletes them is there.
        spec = body.get("spec") or {}
        if (
            namespace
            and (event or {}).get("type") == "ADDED"
            and not body.get("status")
            and spec.get("deletionPolicy") != "Delete"
        ):
            early.add((namespace, name))
            workers.kick(namespace, name)
        elif namespace:
            sharding.on_application_event(workers, event, body, namespace, name)

    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry, id="reconcile")
    async def created(namespace: str | None, name: str, **_: Any) -> None:
        if namespace and (namespace, name) not in early:
            workers.kick(namespace, name)
        early.discard((namespace or "", name))

    kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry, id="reconcile")(kick_fresh)
    kopf.on.update(GROUP, VERSION, PLURAL, registry=registry, id="reconcile", field="spec")(kick)

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry, id="finalize")
    async def finalize(
        body: kopf.Body,
        namespace: str | None,
        name: str,
        retry: int,
        runtime: datetime.timedelta,
        **_: Any,
    ) -> None:
        workers.forget(namespace or "", name)
        early.discard((namespace or "", name))
        await finalize_application(workers, reconciler, dict(body), retry, runtime)

    _register_children(registry, workers, reconciler)
    return registry


def _register_lifecycle(
    registry: kopf.OperatorRegistry,
    workers: Workers,
    reconciler: Reconciler,
    settings: Settings,
    *,
    namespaces: Sequence[str],
    prime: bool,
) -> Resyncs:
    """Login, start-up (kopf's settings, the cache primed, the resync queue started) and
    cleanup; returns the resync queue the Application events feed."""

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        # kopf watches with the very identity our API client uses (one source of credentials).
        return connection_info(workers.kube.api.configuration)

    @kopf.on.probe(registry=registry, id="credentials")
    def credentials(**_: Any) -> str:
        # /healthz (the chart's probes) fails while the API server refuses federator's own
        # credentials: the pod reads unready, with the server's words in the operator's log.
        problem = workers.access.problem()
        if problem is not None:
            raise kopf.PermanentError(problem)
        return "accepted"

    period = settings.operator.resync_seconds

    def kick_resync(namespace: str, name: str) -> None:
        # From the watch cache, unless a watch re-listed within the period (`resync.fresh`).
        fresh = resync.fresh(reconciler.cache.listed_at, time.monotonic(), period)
        workers.kick(namespace, name, fresh=fresh)

    resyncs = Resyncs(period, kick_resync)
    running: list[asyncio.Task[None]] = []

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure(settings, reconciler.shard)
        workers.turns.reopen()  # closed by the cleanup of a machinery that failed (`run`)
        if prime:
            # Before kopf's watches start (they start once the start-up handlers are done).
            await asyncio.to_thread(reconciler.prime_cache, namespaces)
            await asyncio.to_thread(memory.trim)  # what the listing's pages left free
        running.append(asyncio.create_task(resyncs.run(), name="federator:resyncs"))
        running.append(asyncio.create_task(memory.trim_every(), name="federator:trim"))

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        running.clear()
        await workers.stop()

    return resyncs


def _register_children(
    registry: kopf.OperatorRegistry, workers: Workers, reconciler: Reconciler
) -> None:
    """A child's event updates the watch cache and kicks its Application (named by the
    child's owner annotation)."""

    async def child_changed(body: kopf.Body, event: Any = None, **_: Any) -> None:
        event = event or {}
        reconciler.cache.streamed(event.get("type"), event.get("object") or dict(body))
        owner = str(body.metadata.annotations.get(naming.APPLICATION_ANNOTATION, ""))
        namespace, _sep, name = owner.partition("/")
        if not (namespace and name) or not workers.scope.serves(namespace):
            # A child in a namespace shared with another operator (the Kafka namespace) may
            # name an Application this operator does not serve: that one is not ours to kick.
            return
        meta = body.get("metadata") or {}
        echo = (
            str(body.get("kind", "")),
            str(meta.get("namespace") or ""),
            str(meta.get("name") or ""),
            str(meta.get("resourceVersion") or ""),
        )
        # A deletion is never an echo (its resourceVersion is new, but be explicit).
        workers.kick(namespace, name, None if event.get("type") == "DELETED" else echo)

    for delegate in delegates.ALL:
        kopf.on.event(
            delegate.group,
            delegate.plural,
            registry=registry,
            id=f"child-{delegate.plural}",
            labels=MANAGED,
        )(child_changed)


async def finalize_application(
    workers: Workers,
    reconciler: Reconciler,
    body: Mapping[str, Any],
    retry: int,
    runtime: datetime.timedelta,
) -> None:
    """The finalizer's work; returning lets kopf remove the finalizer, `kopf.TemporaryError`
    holds the deletion until the next try (`finalize_delay` decides which)."""
    meta = body.get("metadata") or {}
    where = f"{meta.get('namespace')}/{meta.get('name')}"
    try:
        deleted = await asyncio.to_thread(reconciler.finalize, body)
    except Exception as exc:
        elapsed = runtime.total_seconds()
        delay = finalize_delay(exc, elapsed, retry)
        if delay is not None:
            raise kopf.TemporaryError(f"finalization failed: {exc}", delay=delay) from exc
        log.warning("application %s deleted unfinished: %s", where, exc)
        await asyncio.to_thread(
            workers.kube.event,
            body,
            type_="Warning",
            reason="DeletionIncomplete",
            message=left_behind(exc, elapsed),
        )
        return
    if deleted:
        log.info(
            "application %s deleted; removed %d: %s%s",
            where,
            len(deleted),
            ", ".join(deleted[:10]),
            ", ..." if len(deleted) > 10 else "",
        )
