"""Prometheus metrics of the operator (DESIGN §6, issue 4 item 7), bounded (issue 14).

Every metric lives in a dedicated ``CollectorRegistry`` owned by a ``Metrics`` instance, never in
prometheus-client's global default registry: tests, and several operators in one process, each
get their own numbers. ``federator run`` makes one and hands it to whoever records.

No series is ever zero: a count that drops to 0 loses its series (a scrape of 1,000 converged
applications is a few lines, not 26 per application). Always served, bounded by the number of
phases, kinds and healths whatever the number of applications:

- ``federator_applications{phase}``: gauge, the applications in that phase.
- ``federator_children{kind,health}``: gauge, the children of all applications by kind and
  health.
- ``federator_reconcile_duration_seconds{result}``: histogram, result success|invalid|error.
- ``federator_api_writes_total{verb,kind}``: counter, verb create|claim|apply|delete|
  patch_status|event.
- ``federator_status_writes_total``: counter of Application status patches.
- ``federator_child_reads_total{source,kind}``: counter of children observed by reconciles,
  source cache (the watch cache) or api (a GET: a cache miss, a restart, a resync after a
  watch re-listed).

Per application, only with ``per_application`` (settings ``operator.metricsPerApplication``,
off by default: the series grow with the applications, 850 of them made a 2.5 MB scrape, and
each Application's status already says the same to kubectl, Argo CD and kube-state-metrics):

- ``federator_application_phase{namespace,application,phase}``: 1, the current phase only.
- ``federator_application_children{namespace,application,kind,health}``: the non-zero counts.
- ``federator_application_status_writes_total{namespace,application}``.

``forget`` removes every trace of a deleted application. This module is shell, not core: the
core stays free of I/O (the HTTP server) and of process-wide state.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from federator.core.health import HEALTH_ORDER, AppHealth, ChildReport, Health
from federator.core.status_types import Phase

ReconcileResult = Literal["success", "invalid", "error"]
WriteVerb = Literal["create", "claim", "apply", "delete", "patch_status", "event"]
ReadSource = Literal["cache", "api"]

RECONCILE_RESULTS: Final[tuple[str, ...]] = get_args(ReconcileResult)
WRITE_VERBS: Final[tuple[str, ...]] = get_args(WriteVerb)
READ_SOURCES: Final[tuple[str, ...]] = get_args(ReadSource)
PHASES: Final[tuple[str, ...]] = tuple(phase.value for phase in Phase)
"""Every value ``status.phase`` can take (the CRD's enum)."""
HEALTHS: Final[tuple[str, ...]] = tuple(health.value for health in HEALTH_ORDER)

# A reconcile is a few API calls on a healthy cluster; the long tail is retries and big apps.
RECONCILE_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class MetricsServerError(Exception):
    """The metrics HTTP server could not start (e.g. the port is in use)."""


class Metrics:
    """The operator's metrics in their own registry (one instance per operator).

    `per_application`: also serve the per-application series (see the module docstring)."""

    def __init__(
        self, registry: CollectorRegistry | None = None, *, per_application: bool = False
    ) -> None:
        self.registry: Final = registry if registry is not None else CollectorRegistry()
        self.per_application: Final = per_application
        self.applications: Final = Gauge(
            "federator_applications",
            "Applications by phase.",
            ("phase",),
            registry=self.registry,
        )
        self.children: Final = Gauge(
            "federator_children",
            "Children of all applications by kind and health.",
            ("kind", "health"),
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
            "Status patches of Applications.",
            registry=self.registry,
        )
        self.child_reads: Final = Counter(
            "federator_child_reads",
            "Children observed by reconciles, from the watch cache or by a GET.",
            ("source", "kind"),
            registry=self.registry,
        )
        self.application_phase: Final = (
            Gauge(
                "federator_application_phase",
                "1 for the application's current phase (no series for the others).",
                ("namespace", "application", "phase"),
                registry=self.registry,
            )
            if per_application
            else None
        )
        self.application_children: Final = (
            Gauge(
                "federator_application_children",
                "Children of an application by kind and health (no series for zero).",
                ("namespace", "application", "kind", "health"),
                registry=self.registry,
            )
            if per_application
            else None
        )
        self.application_status_writes: Final = (
            Counter(
                "federator_application_status_writes",
                "Status patches of an Application.",
                ("namespace", "application"),
                registry=self.registry,
            )
            if per_application
            else None
        )
        self._lock = threading.Lock()
        # What was last recorded per application: its phase and children counts, to move the
        # totals and remove the series that dropped to zero.
        self._apps: dict[tuple[str, str], _Recorded] = {}
        self._phases: dict[Phase, int] = {}
        self._children: dict[tuple[str, Health], int] = {}
        self._servers: list[tuple[object, threading.Thread]] = []

    # ---------------------------------------------------------------- applications

    def record_health(
        self,
        namespace: str,
        application: str,
        app_health: AppHealth,
        children_reports: Sequence[ChildReport],
    ) -> None:
        """Record an application's phase and children by kind and health (the totals move;
        what did not change is not touched)."""
        counts: dict[tuple[str, Health], int] = {}
        for report in children_reports:
            key = (report.kind, report.health.health)
            counts[key] = counts.get(key, 0) + 1
        new = _Recorded(Phase(app_health.phase), counts)
        with self._lock:
            old = self._apps.get((namespace, application))
            if old == new:
                return  # the common case: a resync of a converged application
            self._apps[(namespace, application)] = new
            self._move(namespace, application, old, new)

    def forget(self, namespace: str, application: str) -> None:
        """Remove every trace of a deleted application (an unknown one is ignored)."""
        with self._lock:
            old = self._apps.pop((namespace, application), None)
            self._move(namespace, application, old, None)
        if self.application_status_writes is not None:
            _remove(self.application_status_writes, namespace, application)

    def _move(
        self, namespace: str, application: str, old: _Recorded | None, new: _Recorded | None
    ) -> None:
        """From `old` to `new` (None: absent) in the totals and per-application series,
        removing each series whose value drops to zero. Under the lock."""
        if old is None or new is None or old.phase != new.phase:
            if old is not None:
                _add(self.applications, self._phases, old.phase, -1)
                if self.application_phase is not None:
                    _remove(self.application_phase, namespace, application, old.phase)
            if new is not None:
                _add(self.applications, self._phases, new.phase, 1)
                if self.application_phase is not None:
                    self.application_phase.labels(namespace, application, new.phase).set(1)
        before = old.children if old is not None else {}
        after = new.children if new is not None else {}
        for key in before.keys() | after.keys():
            delta = after.get(key, 0) - before.get(key, 0)
            if not delta:
                continue
            _add(self.children, self._children, key, delta)
            if self.application_children is not None:
                if after.get(key, 0):
                    self.application_children.labels(namespace, application, *key).set(after[key])
                else:
                    _remove(self.application_children, namespace, application, *key)

    # ---------------------------------------------------------------- reconciles and writes

    def observe_reconcile(self, result: ReconcileResult, seconds: float) -> None:
        """Record one reconciliation that took ``seconds`` and ended with ``result``."""
        if result not in RECONCILE_RESULTS:
            raise ValueError(f"unknown reconcile result {result!r}; one of {RECONCILE_RESULTS}")
        self.reconcile_duration.labels(result).observe(seconds)

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
        self.status_writes.inc()
        if self.application_status_writes is not None:
            self.application_status_writes.labels(namespace, application).inc()

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


@dataclass(frozen=True)
class _Recorded:
    """What `record_health` last recorded of one application."""

    phase: Phase
    children: dict[tuple[str, Health], int]


def _add(gauge: Gauge, totals: dict[Any, int], key: Any, delta: int) -> None:
    """Move one total; a total of zero loses its series (no zero-valued series)."""
    total = totals.get(key, 0) + delta
    labels = tuple(str(part) for part in (key if isinstance(key, tuple) else (key,)))
    if total > 0:
        totals[key] = total
        gauge.labels(*labels).set(total)
    else:
        totals.pop(key, None)
        _remove(gauge, *labels)


def _remove(metric: Gauge | Counter, *labels: str) -> None:
    with suppress(KeyError):  # never recorded (older prometheus-client raise): nothing to forget
        metric.remove(*labels)
