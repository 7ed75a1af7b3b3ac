"""Prometheus metrics of the operator (DESIGN §6, issue 4 item 7).

Every metric lives in a dedicated ``CollectorRegistry`` owned by a ``Metrics`` instance, never in
prometheus-client's global default registry: tests, and several operators in one process, each
get their own numbers. The module-level functions delegate to one process-wide instance,
``METRICS``, which is what ``federator run`` serves.

Metrics:

- ``federator_application_phase{namespace,application,phase}``: gauge, 1 for the application's
  current phase and 0 for every other phase (all phases are always set, so a change is visible
  as one series falling and another rising).
- ``federator_application_children{namespace,application,kind,health}``: gauge, the number of
  children of that kind in that health; every health of a kind present is set (0 included).
- ``federator_reconcile_duration_seconds{result}``: histogram, result success|invalid|error.
- ``federator_api_writes_total{verb,kind}``: counter, verb apply|delete|patch_status|event.
- ``federator_status_writes_total{namespace,application}``: counter of Application status
  patches.
- ``federator_child_reads_total{source,kind}``: counter of children observed by reconciles,
  source cache (the watch cache) or api (a GET: a cache miss, a restart, a resync).

``forget`` removes every series of a deleted application. This module is shell, not core: the
core stays free of I/O (the HTTP server) and of process-wide state.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from time import perf_counter
from typing import Final, Literal, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from federator.core.health import HEALTH_ORDER, PHASE_INVALID, AppHealth, ChildReport

ReconcileResult = Literal["success", "invalid", "error"]
WriteVerb = Literal["create", "claim", "apply", "delete", "patch_status", "event"]
ReadSource = Literal["cache", "api"]

RECONCILE_RESULTS: Final[tuple[str, ...]] = get_args(ReconcileResult)
WRITE_VERBS: Final[tuple[str, ...]] = get_args(WriteVerb)
READ_SOURCES: Final[tuple[str, ...]] = get_args(ReadSource)
PHASES: Final[tuple[str, ...]] = (*(health.value for health in HEALTH_ORDER), PHASE_INVALID)
"""Every value ``status.phase`` can take (the CRD's enum)."""
HEALTHS: Final[tuple[str, ...]] = tuple(health.value for health in HEALTH_ORDER)

# A reconcile is a few API calls on a healthy cluster; the long tail is retries and big apps.
RECONCILE_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class MetricsServerError(Exception):
    """The metrics HTTP server could not start (e.g. the port is in use)."""


class Metrics:
    """The operator's metrics in their own registry (one instance per operator)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry: Final = registry if registry is not None else CollectorRegistry()
        self.application_phase: Final = Gauge(
            "federator_application_phase",
            "1 for the application's current phase, 0 for the other phases.",
            ("namespace", "application", "phase"),
            registry=self.registry,
        )
        self.application_children: Final = Gauge(
            "federator_application_children",
            "Children of an application by kind and health.",
            ("namespace", "application", "kind", "health"),
            registry=self.registry,
        )
        self.reconcile_duration: Final = Histogram(
            "federator_reconcile_duration_seconds",
            "Duration of one reconciliation of an Application, by result.",
            ("result",),
            buckets=RECONCILE_BUCKETS,
            registry=self.registry,
        )
        self.api_writes: Final = Counter(
            "federator_api_writes",
            "Writes to the Kubernetes API by verb and kind of the object written.",
            ("verb", "kind"),
            registry=self.registry,
        )
        self.status_writes: Final = Counter(
            "federator_status_writes",
            "Status patches of an Application.",
            ("namespace", "application"),
            registry=self.registry,
        )
        self.child_reads: Final = Counter(
            "federator_child_reads",
            "Children observed by reconciles, from the watch cache or by a GET.",
            ("source", "kind"),
            registry=self.registry,
        )
        self._lock = threading.Lock()
        # The child kinds last recorded per application, to remove series of vanished kinds.
        self._kinds: dict[tuple[str, str], frozenset[str]] = {}
        self._servers: list[tuple[object, threading.Thread]] = []

    # ---------------------------------------------------------------- applications

    def record_health(
        self,
        namespace: str,
        application: str,
        app_health: AppHealth,
        children_reports: Sequence[ChildReport],
    ) -> None:
        """Set the phase and children-by-kind-and-health gauges of one application."""
        for phase in PHASES:
            self.application_phase.labels(namespace, application, phase).set(
                1 if phase == app_health.phase else 0
            )
        counts: dict[tuple[str, str], int] = {}
        for report in children_reports:
            key = (report.kind, report.health.health.value)
            counts[key] = counts.get(key, 0) + 1
        kinds = frozenset(kind for kind, _ in counts)
        with self._lock:
            vanished = self._kinds.get((namespace, application), frozenset()) - kinds
            self._kinds[(namespace, application)] = kinds
        for kind in sorted(kinds):
            for health in HEALTHS:
                self.application_children.labels(namespace, application, kind, health).set(
                    counts.get((kind, health), 0)
                )
        for kind in vanished:
            self._remove_children(namespace, application, kind)

    def forget(self, namespace: str, application: str) -> None:
        """Remove every series of a deleted application (absent series are ignored)."""
        for phase in PHASES:
            _remove(self.application_phase, namespace, application, phase)
        with self._lock:
            kinds = self._kinds.pop((namespace, application), frozenset())
        for kind in kinds:
            self._remove_children(namespace, application, kind)
        _remove(self.status_writes, namespace, application)

    def _remove_children(self, namespace: str, application: str, kind: str) -> None:
        for health in HEALTHS:
            _remove(self.application_children, namespace, application, kind, health)

    # ---------------------------------------------------------------- reconciles and writes

    def observe_reconcile(self, result: ReconcileResult, seconds: float) -> None:
        """Record one reconciliation that took ``seconds`` and ended with ``result``."""
        if result not in RECONCILE_RESULTS:
            raise ValueError(f"unknown reconcile result {result!r}; one of {RECONCILE_RESULTS}")
        self.reconcile_duration.labels(result).observe(seconds)

    @contextmanager
    def time_reconcile(self) -> Iterator[ReconcileOutcome]:
        """Time the ``with`` block; it ends ``success`` unless ``outcome.result`` is changed.

        An exception escaping the block records ``error`` and propagates; a cancellation (not an
        ``Exception``) records nothing.
        """
        outcome = ReconcileOutcome()
        started = perf_counter()
        try:
            yield outcome
        except Exception:
            self.observe_reconcile("error", perf_counter() - started)
            raise
        self.observe_reconcile(outcome.result, perf_counter() - started)

    def count_api_write(self, verb: WriteVerb, kind: str) -> None:
        """Count one write to the API server (``kind``: the kind of the object written)."""
        if verb not in WRITE_VERBS:
            raise ValueError(f"unknown write verb {verb!r}; one of {WRITE_VERBS}")
        self.api_writes.labels(verb, kind).inc()

    def count_child_read(self, source: ReadSource, kind: str) -> None:
        """Count one child observed by a reconcile, from the watch cache or the API."""
        if source not in READ_SOURCES:
            raise ValueError(f"unknown read source {source!r}; one of {READ_SOURCES}")
        self.child_reads.labels(source, kind).inc()

    def count_status_write(self, namespace: str, application: str) -> None:
        """Count one status patch of an Application."""
        self.status_writes.labels(namespace, application).inc()

    # ---------------------------------------------------------------- serving

    def start_server(self, port: int, host: str = "0.0.0.0") -> None:
        """Serve this registry on ``http://host:port/metrics`` in a daemon thread; 0 disables."""
        if port == 0:
            return
        if not 0 < port < 65536:
            raise MetricsServerError(f"metrics port {port} is not in 1..65535 (0 disables)")
        try:
            server, thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise MetricsServerError(
                f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}"
            ) from exc
        with self._lock:
            self._servers.append((server, thread))

    def stop_servers(self) -> None:
        """Stop every server ``start_server`` started (for tests and orderly shutdown)."""
        with self._lock:
            servers, self._servers = self._servers, []
        for server, thread in servers:
            server.shutdown()  # type: ignore[attr-defined]
            server.server_close()  # type: ignore[attr-defined]
            thread.join(timeout=5)


class ReconcileOutcome:
    """What ``Metrics.time_reconcile`` yields: set ``result`` to ``invalid`` for a bad spec."""

    __slots__ = ("result",)

    def __init__(self) -> None:
        self.result: ReconcileResult = "success"


def _remove(metric: Gauge | Counter, *labels: str) -> None:
    with suppress(KeyError):  # never recorded (older prometheus-client raise): nothing to forget
        metric.remove(*labels)


METRICS: Final = Metrics()
"""The process-wide instance ``federator run`` records into and serves."""
REGISTRY: Final = METRICS.registry


def record_health(
    namespace: str,
    application: str,
    app_health: AppHealth,
    children_reports: Sequence[ChildReport],
) -> None:
    """``METRICS.record_health``: set an application's phase and children gauges."""
    METRICS.record_health(namespace, application, app_health, children_reports)


def forget(namespace: str, application: str) -> None:
    """``METRICS.forget``: remove every series of a deleted application."""
    METRICS.forget(namespace, application)


def observe_reconcile(result: ReconcileResult, seconds: float) -> None:
    """``METRICS.observe_reconcile``: record one reconciliation's duration and result."""
    METRICS.observe_reconcile(result, seconds)


def count_api_write(verb: WriteVerb, kind: str) -> None:
    """``METRICS.count_api_write``: count one API write."""
    METRICS.count_api_write(verb, kind)


def count_status_write(namespace: str, application: str) -> None:
    """``METRICS.count_status_write``: count one Application status patch."""
    METRICS.count_status_write(namespace, application)


def start_server(port: int, host: str = "0.0.0.0") -> None:
    """``METRICS.start_server``: serve the process-wide registry; port 0 disables."""
    METRICS.start_server(port, host)
