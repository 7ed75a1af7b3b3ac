"""Delegate simulator: plays the Strimzi, Spark, Apache Flink and Lyft Flink operators' status role.

A DEVELOPMENT TOOL, never started by ``federator run``. The delegate operators cannot run on a
laptop or in CI (they need Kafka, Spark and Flink), yet federator's whole job is to read their
statuses. The simulator stands in for them: it lists federator's children of each delegate kind
(label ``app.kubernetes.io/managed-by=federator``) and moves each one ONE step per tick through
the state enumeration its real operator uses, writing through the ``/status`` subresource exactly
what that operator would write. Every status it writes is one ``federator.core.delegates.assess``
reads as the intended health (the unit tests check each transition).

The sequences (each arrow is one tick):

- KafkaTopic (Strimzi): no status -> ``Ready=True`` with ``observedGeneration``, ``topicName``,
  ``topicId``; a spec change -> ``Ready=True`` for the new generation. In broker mode
  (``kafka_topics``, see ``federator.simulator_broker``) the topics are created and altered on a
  real Kafka broker instead, and the status is the broker's answer. The annotations
  ``strimzi.io/pause-reconciliation: "true"`` and ``strimzi.io/managed: "false"`` give the
  ``ReconciliationPaused`` and ``Unmanaged`` conditions, as Strimzi does.
- SparkApplication (Kubeflow): ``""`` -> SUBMITTED (new ``submissionID``) -> RUNNING with one
  RUNNING executor per expected instance; a spec change -> INVALIDATING -> PENDING_RERUN ->
  SUBMITTED (new ``submissionID``) -> RUNNING; ``spec.suspend`` -> SUSPENDING -> SUSPENDED;
  resumed -> RESUMING -> SUBMITTED -> RUNNING; a refused submission (SUBMISSION_FAILED) is
  retried at once.
- FlinkDeployment (Apache): CREATED -> DEPLOYED (JobManager DEPLOYING) -> DEPLOYED
  (DEPLOYED_NOT_READY) -> STABLE (JobManager READY, job RUNNING); a spec change -> UPGRADING ->
  DEPLOYED -> STABLE; ``spec.job.state: suspended`` -> SUSPENDED.
- FlinkApplication (Lyft): New (``""``) -> ClusterStarting -> SubmittingJob -> Running (job
  RUNNING, ``deployHash`` = the spec's hash); a spec change -> Updating -> ClusterStarting ->
  Savepointing -> SubmittingJob -> Running with the new ``deployHash``.

The Spark and Flink sequences, and the fields of each status, are checked against the statuses
the real spark-operator v2.5.2 and Flink operator 1.7.0 wrote (test_simulator_conformance.py).

Failures are injected with ``DelegateSimulator.fail`` (kept until ``recover``) or by a human with
``kubectl annotate <kind> <name> simulator.federator.io/fail="<message>"`` (optionally
``simulator.federator.io/fail-state``); without a failure, a failed child recovers the way its
operator would (Spark PENDING_RERUN -> SUBMITTED -> RUNNING, Flink DEPLOYED -> STABLE, Lyft
Recovering -> SubmittingJob -> Running).

Each delegate's step is pure (a body in, the next complete status out) and lives with the
delegate (``federator.core.delegates.<kind>``, `Delegate.simulation`); this module is the I/O
that drives them on a real API server.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from federator.core import delegates, naming
from federator.core.delegates import Delegate
from federator.core.delegates.simstep import (
    Failure,
    Step,
    failure_from_annotations,
    generation_of,
    merge_patch,
    name_of,
    new_uuid,
    status_of,
    utc_now,
)
from federator.core.fields import get as _get

if TYPE_CHECKING:
    from federator.simulator_broker import BrokerTopics

log = logging.getLogger("federator.simulator")

MANAGED_SELECTOR: Final = naming.MANAGED_SELECTOR
FIELD_MANAGER: Final = "federator-simulator"
DEFAULT_INTERVAL: Final = 0.5
DEFAULT_DISCOVERY_INTERVAL: Final = 5.0

KAFKA_TOPIC: Final = delegates.KAFKA_TOPIC.kind
DELEGATES: Final[tuple[Delegate, ...]] = delegates.SIMULATED
DELEGATES_BY_KIND: Final[dict[str, Delegate]] = {d.kind: d for d in DELEGATES}


def validate_failure(kind: str, state: str | None) -> None:
    """Raise ValueError for a kind the simulator does not drive or a state it cannot show."""
    if kind not in DELEGATES_BY_KIND:
        raise ValueError(f"unsupported kind {kind!r}; one of {', '.join(DELEGATES_BY_KIND)}")
    allowed = DELEGATES_BY_KIND[kind].simulation.failure_states
    if state is not None and allowed and state not in allowed:
        raise ValueError(f"{kind} failure state must be one of {', '.join(allowed)}: {state!r}")
    if state is not None and not state:
        raise ValueError("an empty failure state; omit it for the default")


def next_step(
    kind: str,
    body: Mapping[str, Any],
    *,
    failure: Failure | None = None,
    submitted_generation: int | None = None,
    now: str | None = None,
    new_id: Callable[[], str] = new_uuid,
) -> Step | None:
    """The next status the delegate of ``kind`` would write for ``body``; None when settled.

    ``failure``: show this failure instead (kept until the caller stops passing it).
    ``submitted_generation``: for a delegate whose status does not say which generation it was
    submitted for (`Simulation.remembers_generation`: Spark).
    """
    delegate = DELEGATES_BY_KIND.get(kind)
    if delegate is None:
        raise ValueError(f"the simulator does not drive kind {kind!r}")
    simulation = delegate.simulation
    extra = (
        {"submitted_generation": submitted_generation} if simulation.remembers_generation else {}
    )
    return simulation.step(body, failure=failure, now=now or utc_now(), new_id=new_id, **extra)


@dataclass(frozen=True)
class ServedKind:
    """A delegate kind as the API server serves it now (which version, whether /status is a
    subresource)."""

    delegate: Delegate
    version: str
    status_subresource: bool


@dataclass(frozen=True)
class Transition:
    """One status write the simulator made."""

    kind: str
    namespace: str
    name: str
    state: str


def served_version(crd: Mapping[str, Any], delegate: Delegate) -> ServedKind | None:
    """The version of a CRD the simulator speaks (best first), if the CRD is Established."""
    versions = {
        v.get("name"): v
        for v in _get(crd, "spec", "versions") or []
        if isinstance(v, Mapping) and v.get("served", True)
    }
    established = any(
        c.get("type") == "Established" and c.get("status") == "True"
        for c in _get(crd, "status", "conditions") or []
        if isinstance(c, Mapping)
    )
    if not established:
        return None
    for version in delegate.versions:
        if version in versions:
            subresources = versions[version].get("subresources") or {}
            return ServedKind(delegate, version, "status" in subresources)
    return None


@dataclass(eq=False)
class DelegateSimulator:
    """Drives the statuses of federator's delegate children on a real API server.

    ``api_client``: a ``kubernetes.client.ApiClient`` allowed to list the delegate kinds, read
    their CRDs and patch their status. ``namespaces``: only these (default: all namespaces).
    ``kinds``: only these delegate kinds (default: all), e.g. every kind but SparkApplication
    when the real spark-operator runs. ``interval``: seconds between ticks of
    ``run_in_thread``/``run``. ``kafka_topics``: broker mode (``federator.simulator_broker``):
    KafkaTopics are reconciled on a real Kafka broker and their statuses are its answers.
    """

    api_client: Any
    interval: float = DEFAULT_INTERVAL
    namespaces: Sequence[str] | None = None
    kinds: frozenset[str] | None = None
    label_selector: str = MANAGED_SELECTOR
    discovery_interval: float = DEFAULT_DISCOVERY_INTERVAL
    clock: Callable[[], str] = utc_now
    kafka_topics: BrokerTopics | None = None
    _served: dict[str, ServedKind] = field(default_factory=dict, init=False, repr=False)
    _discovered_at: float | None = field(default=None, init=False, repr=False)
    _failures: dict[tuple[str, str, str], Failure] = field(
        default_factory=dict, init=False, repr=False
    )
    _submitted: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    # _lock guards the dictionaries (fail() never waits for a tick's API calls); _tick_lock
    # keeps ticks from overlapping when step() is called next to the background thread.
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)
    _tick_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)

    # -- failure injection

    def fail(
        self, kind: str, namespace: str, name: str, message: str, state: str | None = None
    ) -> None:
        """Put one child in its delegate's failure state (from the next tick) until ``recover``."""
        validate_failure(kind, state)
        with self._lock:
            self._failures[(kind, namespace, name)] = Failure(message=message, state=state)

    def recover(self, kind: str, namespace: str, name: str) -> None:
        """Let the child recover the way its operator would (a no-op if it was not failed)."""
        with self._lock:
            self._failures.pop((kind, namespace, name), None)

    # -- discovery

    @property
    def served(self) -> dict[str, ServedKind]:
        """The delegate kinds found on the API server at the last discovery."""
        with self._lock:
            return dict(self._served)

    def discover(self) -> dict[str, ServedKind]:
        """Read the delegate CRDs: served version and whether ``/status`` is a subresource."""
        from kubernetes.client import CustomObjectsApi
        from kubernetes.client.exceptions import ApiException

        api = CustomObjectsApi(self.api_client)
        found: dict[str, ServedKind] = {}
        for delegate in self._delegates():
            try:
                crd = api.get_cluster_custom_object(
                    "apiextensions.k8s.io", "v1", "customresourcedefinitions", delegate.crd_name
                )
            except ApiException as exc:
                if exc.status != 404:
                    log.warning("reading CRD %s failed: %s", delegate.crd_name, exc.reason)
                continue
            served = served_version(crd, delegate) if isinstance(crd, Mapping) else None
            if served is not None:
                found[delegate.kind] = served
        with self._lock:
            for kind in found.keys() - self._served.keys():
                log.info("simulating %s (%s)", kind, found[kind].version)
            self._served = found
            self._discovered_at = time.monotonic()
        return found

    def _delegates(self) -> tuple[Delegate, ...]:
        return tuple(d for d in DELEGATES if self.kinds is None or d.kind in self.kinds)

    # -- ticks

    def step(self) -> list[Transition]:
        """One tick: every child of every served delegate kind moves at most one state."""
        from kubernetes.client import CustomObjectsApi

        with self._tick_lock:
            with self._lock:
                since = (
                    None if self._discovered_at is None else time.monotonic() - self._discovered_at
                )
                missing = len(self._served) < len(self._delegates())
            # Absent kinds are looked for often (a CRD installed later is picked up quickly).
            if (
                since is None
                or since >= self.discovery_interval
                or (missing and since >= min(self.interval, 1.0))
            ):
                self.discover()
            api = CustomObjectsApi(self.api_client)
            transitions: list[Transition] = []
            live: set[str] = set()
            for served in self.served.values():
                for body in self._list(api, served):
                    uid = str(_get(body, "metadata", "uid") or "")
                    live.add(uid)
                    transition = self._advance(api, served, body)
                    if transition is not None:
                        transitions.append(transition)
            for uid in list(self._submitted):
                if uid not in live:
                    del self._submitted[uid]
            if self.kafka_topics is not None and KAFKA_TOPIC in self.served:
                self.kafka_topics.sweep(live, self._still_exists)
            return transitions

    def _still_exists(self, namespace: str, name: str, uid: str) -> bool | None:
        """Whether the KafkaTopic with this uid still exists (None: cannot tell now)."""
        from kubernetes.client import CustomObjectsApi
        from kubernetes.client.exceptions import ApiException

        served = self.served.get(KAFKA_TOPIC)
        if served is None:
            return None
        delegate = served.delegate
        try:
            body = CustomObjectsApi(self.api_client).get_namespaced_custom_object(
                delegate.group, served.version, namespace, delegate.plural, name
            )
        except ApiException as exc:
            return False if exc.status == 404 else None
        return str(_get(body, "metadata", "uid") or "") == uid

    def _list(self, api: Any, served: ServedKind) -> Iterable[Mapping[str, Any]]:
        from kubernetes.client.exceptions import ApiException

        group, version, plural = served.delegate.group, served.version, served.delegate.plural
        try:
            if self.namespaces is None:
                result = api.list_cluster_custom_object(
                    group, version, plural, label_selector=self.label_selector
                )
                return list(result.get("items") or [])
            items: list[Mapping[str, Any]] = []
            for namespace in self.namespaces:
                result = api.list_namespaced_custom_object(
                    group, version, namespace, plural, label_selector=self.label_selector
                )
                items += result.get("items") or []
            return items
        except ApiException as exc:
            if exc.status == 404:
                # The CRD (or this version of it) went away: rediscover on the next tick.
                with self._lock:
                    self._served.pop(served.delegate.kind, None)
            else:
                log.warning("listing %s failed: %s", served.delegate.kind, exc.reason)
            return []

    def _advance(self, api: Any, served: ServedKind, body: Mapping[str, Any]) -> Transition | None:
        from kubernetes.client.exceptions import ApiException

        kind = served.delegate.kind
        remembers = served.delegate.simulation.remembers_generation
        namespace = str(_get(body, "metadata", "namespace") or "")
        name = name_of(body)
        uid = str(_get(body, "metadata", "uid") or "")
        if _get(body, "metadata", "deletionTimestamp"):
            if kind == KAFKA_TOPIC and self.kafka_topics is not None:
                self.kafka_topics.deleted(namespace, name, uid)
            return None
        with self._lock:
            requested = self._failures.get((kind, namespace, name))
        failure = requested or failure_from_annotations(body)
        if failure is not None and failure.state is not None:
            try:
                validate_failure(kind, failure.state)
            except ValueError as exc:
                log.warning("%s %s/%s: ignoring %s", kind, namespace, name, exc)
                failure = Failure(message=failure.message)
        if remembers and uid not in self._submitted and body.get("status"):
            # Seen for the first time with a status (e.g. after a restart): trust it.
            self._submitted[uid] = generation_of(body)
        if kind == KAFKA_TOPIC and self.kafka_topics is not None:
            step = self.kafka_topics.step(body, failure=failure, now=self.clock())
        else:
            step = next_step(
                kind,
                body,
                failure=failure,
                submitted_generation=self._submitted.get(uid),
                now=self.clock(),
            )
        if step is None:
            return None
        patch: dict[str, Any] = {
            "metadata": {"resourceVersion": _get(body, "metadata", "resourceVersion")},
            "status": merge_patch(status_of(body), step.status),
        }
        group, version, plural = served.delegate.group, served.version, served.delegate.plural
        write = (
            api.patch_namespaced_custom_object_status
            if served.status_subresource
            else api.patch_namespaced_custom_object
        )
        try:
            write(
                group,
                version,
                namespace,
                plural,
                name,
                patch,
                field_manager=FIELD_MANAGER,
                _content_type="application/merge-patch+json",
            )
        except ApiException as exc:
            if exc.status in (404, 409):
                return None  # deleted or changed since the list: the next tick sees it anew
            log.warning("%s %s/%s: status write failed: %s", kind, namespace, name, exc.reason)
            return None
        if remembers and step.generation is not None:
            self._submitted[uid] = step.generation
        log.info("%s %s/%s -> %s", kind, namespace, name, step.state)
        return Transition(kind=kind, namespace=namespace, name=name, state=step.state)

    # -- running

    def run(self) -> None:
        """Tick every ``interval`` seconds until ``stop()`` (blocks; ``run_in_thread`` doesn't)."""
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:  # a development tool keeps going; the next tick retries
                log.exception("simulator tick failed")
            self._stop.wait(self.interval)

    def run_in_thread(self) -> threading.Thread:
        """Start ticking in a daemon thread; ``stop()`` ends it."""
        if self._thread is not None and self._thread.is_alive():
            return self._thread
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="delegate-simulator", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the background thread (if any) and wait for its current tick to end."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            with contextlib.suppress(RuntimeError):
                thread.join(timeout)

    def __enter__(self) -> DelegateSimulator:
        self.run_in_thread()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
