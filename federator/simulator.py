"""Delegate simulator: plays the Strimzi, Spark, Apache Flink and Lyft Flink operators' status role.

A DEVELOPMENT TOOL, never started by ``federator run``. The delegate operators cannot run on a
laptop or in CI (they need Kafka, Spark and Flink), yet federator's whole job is to read their
statuses. The simulator stands in for them: it lists federator's children of each delegate kind
(label ``app.kubernetes.io/managed-by=federator``) and moves each one ONE step per tick through
the state enumeration its real operator uses, writing through the ``/status`` subresource exactly
what that operator would write. Every status it writes is one ``federator.core.health.assess``
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

The state machine (``next_step``) is pure: a body in, the next complete status out.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from federator.core import health, naming
from federator.core.fields import as_int
from federator.core.fields import get as _get

if TYPE_CHECKING:
    from federator.simulator_broker import BrokerTopics

log = logging.getLogger("federator.simulator")

MANAGED_SELECTOR: Final = naming.MANAGED_SELECTOR
FIELD_MANAGER: Final = "federator-simulator"
FAIL_ANNOTATION: Final = "simulator.federator.io/fail"
FAIL_STATE_ANNOTATION: Final = "simulator.federator.io/fail-state"
DEFAULT_INTERVAL: Final = 0.5
DEFAULT_DISCOVERY_INTERVAL: Final = 5.0
DEFAULT_FAILURE_MESSAGE: Final = "failure injected by the delegate simulator"

KAFKA_TOPIC: Final = health.KIND_KAFKA_TOPIC
SPARK_APPLICATION: Final = health.KIND_SPARK_APPLICATION
FLINK_DEPLOYMENT: Final = health.KIND_FLINK_DEPLOYMENT
FLINK_APPLICATION: Final = health.KIND_FLINK_APPLICATION

# Strimzi's own annotations (the topic operator honours them).
STRIMZI_PAUSE_ANNOTATION: Final = "strimzi.io/pause-reconciliation"
STRIMZI_MANAGED_ANNOTATION: Final = "strimzi.io/managed"


@dataclass(frozen=True)
class Delegate:
    """One delegate kind: where its CRD lives and which versions we can speak, best first."""

    kind: str
    group: str
    plural: str
    versions: tuple[str, ...]

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"


DELEGATES: Final[tuple[Delegate, ...]] = (
    # Strimzi serves v1 since 0.49; older releases only v1beta2 (same status schema).
    Delegate(KAFKA_TOPIC, "kafka.strimzi.io", "kafkatopics", ("v1", "v1beta2")),
    Delegate(SPARK_APPLICATION, "sparkoperator.k8s.io", "sparkapplications", ("v1beta2",)),
    Delegate(FLINK_DEPLOYMENT, "flink.apache.org", "flinkdeployments", ("v1beta1",)),
    Delegate(FLINK_APPLICATION, "flink.k8s.io", "flinkapplications", ("v1beta1",)),
)
DELEGATES_BY_KIND: Final[dict[str, Delegate]] = {d.kind: d for d in DELEGATES}

# The failure states each kind can be put in (the first is the default).
KAFKA_DEFAULT_FAILURE_REASON: Final = "KafkaError"
SPARK_FAILURE_STATES: Final = ("FAILED", "SUBMISSION_FAILED", "FAILING")
FLINK_FAILURE_STATES: Final = ("FAILED", "ROLLED_BACK")
LYFT_FAILURE_STATES: Final = ("DeployFailed", "FAILED", "RollingBackJob")
_FAILURE_STATES: Final[dict[str, tuple[str, ...]]] = {
    SPARK_APPLICATION: SPARK_FAILURE_STATES,
    FLINK_DEPLOYMENT: FLINK_FAILURE_STATES,
    FLINK_APPLICATION: LYFT_FAILURE_STATES,
}


@dataclass(frozen=True)
class Failure:
    """A failure to show on one child until it is recovered."""

    message: str
    state: str | None = None
    """Which failure state (see ``*_FAILURE_STATES``; for KafkaTopic the Ready=False reason)."""


@dataclass(frozen=True)
class Step:
    """The next status of a child: what the delegate would write on its next reconcile."""

    status: dict[str, Any]
    """The complete new ``.status`` (``merge_patch`` turns it into a patch)."""
    state: str
    """The state it reports, for logs: ``SUBMITTED``, ``STABLE``, ``Ready``..."""
    generation: int | None
    """The ``metadata.generation`` this status describes. The simulator remembers it for Spark,
    whose status (like the real operator's) does not record which spec it was submitted for."""


def validate_failure(kind: str, state: str | None) -> None:
    """Raise ValueError for a kind the simulator does not drive or a state it cannot show."""
    if kind not in DELEGATES_BY_KIND:
        raise ValueError(f"unsupported kind {kind!r}; one of {', '.join(DELEGATES_BY_KIND)}")
    allowed = _FAILURE_STATES.get(kind)
    if state is not None and allowed is not None and state not in allowed:
        raise ValueError(f"{kind} failure state must be one of {', '.join(allowed)}: {state!r}")
    if state is not None and not state:
        raise ValueError("an empty failure state; omit it for the default")


# --------------------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------------------


def utc_now() -> str:
    """RFC 3339 in UTC with second precision, as Kubernetes writes timestamps."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _new_uuid() -> str:
    return str(uuid.uuid4())


def _status(body: Mapping[str, Any]) -> dict[str, Any]:
    status = body.get("status")
    return copy.deepcopy(dict(status)) if isinstance(status, Mapping) else {}


def _generation(body: Mapping[str, Any]) -> int:
    generation = as_int(_get(body, "metadata", "generation"))
    return 1 if generation is None else generation


def _annotations(body: Mapping[str, Any]) -> Mapping[str, Any]:
    annotations = _get(body, "metadata", "annotations")
    return annotations if isinstance(annotations, Mapping) else {}


def _name(body: Mapping[str, Any]) -> str:
    return str(_get(body, "metadata", "name") or "unnamed")


def spec_hash(spec: Any) -> str:
    """A short, stable hash of a spec: what the Lyft operator records as ``deployHash``."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:8]


def kafka_topic_id(seed: str) -> str:
    """A Kafka topic UUID in Kafka's own form (22 characters of URL-safe base64)."""
    raw = hashlib.sha256(seed.encode()).digest()[:16]
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def failure_from_annotations(body: Mapping[str, Any]) -> Failure | None:
    """The failure a human asked for with ``simulator.federator.io/fail``, if any."""
    annotations = _annotations(body)
    if FAIL_ANNOTATION not in annotations:
        return None
    message = str(annotations.get(FAIL_ANNOTATION) or "") or DEFAULT_FAILURE_MESSAGE
    state = annotations.get(FAIL_STATE_ANNOTATION)
    return Failure(message=message, state=str(state) if state else None)


_MISSING: Final = object()


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) turning ``old`` into ``new`` (removed keys become null)."""
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key, _MISSING)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            nested = merge_patch(before, value)
            if nested:
                patch[key] = nested
        elif before is _MISSING or before != value:
            patch[key] = copy.deepcopy(value)
    return patch


def _condition(
    previous: Mapping[str, Any],
    kind: str,
    value: str,
    *,
    now: str,
    reason: str = "",
    message: str = "",
) -> dict[str, Any]:
    """A Strimzi-style condition; keeps ``lastTransitionTime`` when its status did not change."""
    old: Mapping[str, Any] | None = None
    for item in previous.get("conditions") or []:
        if isinstance(item, Mapping) and item.get("type") == kind:
            old = item
    same = old is not None and old.get("status") == value and old.get("lastTransitionTime")
    condition: dict[str, Any] = {
        "type": kind,
        "status": value,
        "lastTransitionTime": old["lastTransitionTime"] if same and old else now,
    }
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


# --------------------------------------------------------------------------------------------------
# Strimzi KafkaTopic
# --------------------------------------------------------------------------------------------------


def kafka_topic_step(
    body: Mapping[str, Any],
    *,
    failure: Failure | None = None,
    now: str,
    new_id: Callable[[], str] = _new_uuid,
) -> Step | None:
    """Strimzi's topic operator: Ready for the current generation, or Ready=False on failure."""
    old = _status(body)
    generation = _generation(body)
    annotations = _annotations(body)
    name = _name(body)
    topic_name = _get(body, "spec", "topicName") or name
    topic_id = old.get("topicId") or kafka_topic_id(new_id())
    new: dict[str, Any] = {"topicName": topic_name, "topicId": topic_id}
    if failure is not None:
        reason = failure.state or KAFKA_DEFAULT_FAILURE_REASON
        new["conditions"] = [
            _condition(old, "Ready", "False", now=now, reason=reason, message=failure.message)
        ]
        new["observedGeneration"] = generation
        state = f"Ready=False ({reason})"
    elif str(annotations.get(STRIMZI_PAUSE_ANNOTATION, "")).lower() == "true":
        # Paused: not reconciled, so the observed generation stays where it was.
        new["conditions"] = [_condition(old, "ReconciliationPaused", "True", now=now)]
        if "observedGeneration" in old:
            new["observedGeneration"] = old["observedGeneration"]
        state = "ReconciliationPaused"
    elif str(annotations.get(STRIMZI_MANAGED_ANNOTATION, "")).lower() == "false":
        new["conditions"] = [_condition(old, "Unmanaged", "True", now=now)]
        new["observedGeneration"] = generation
        state = "Unmanaged"
    else:
        new["conditions"] = [_condition(old, "Ready", "True", now=now)]
        new["observedGeneration"] = generation
        state = "Ready"
    # A pending ``replicasChange`` is left out: the simulated change completes at once.
    if new == old:
        return None
    return Step(status=new, state=state, generation=generation)


# --------------------------------------------------------------------------------------------------
# Kubeflow SparkApplication
# --------------------------------------------------------------------------------------------------


def spark_expected_executors(body: Mapping[str, Any]) -> int:
    """Executors the Spark operator would start: instances, the dynamic floor, else one."""
    spec = _get(body, "spec") or {}
    counts = []
    instances = _get(spec, "executor", "instances")
    if isinstance(instances, int) and not isinstance(instances, bool):
        counts.append(instances)
    if _get(spec, "dynamicAllocation", "enabled") is True:
        for key in ("minExecutors", "initialExecutors"):
            value = _get(spec, "dynamicAllocation", key)
            if isinstance(value, int) and not isinstance(value, bool):
                counts.append(value)
    if not counts:
        configured = _get(spec, "sparkConf", "spark.executor.instances")
        if isinstance(configured, str) and configured.strip().isdigit():
            counts.append(int(configured))
    return max(counts) if counts else 1


def _changed(new: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """`new` with `changes` applied: a `_MISSING` value removes its key."""
    for key, value in changes.items():
        if value is _MISSING:
            new.pop(key, None)
        else:
            new[key] = value
    return new


def _spark(old: dict[str, Any], state: str, *, error: str = "", **changes: Any) -> dict[str, Any]:
    """A Spark status in ``state``, keeping what the operator keeps across states."""
    new = {key: value for key, value in old.items() if key != "applicationState"}
    new["applicationState"] = {"state": state, **({"errorMessage": error} if error else {})}
    new.setdefault("driverInfo", {})  # required by the CRD's status schema
    return _changed(new, changes)


def _counter(status: Mapping[str, Any], key: str) -> int:
    value = as_int(status.get(key))
    return value if value is not None and value > 0 else 0


def spark_application_step(
    body: Mapping[str, Any],
    *,
    failure: Failure | None = None,
    submitted_generation: int | None = None,
    now: str,
    new_id: Callable[[], str] = _new_uuid,
) -> Step | None:
    """The Spark operator's state machine for a streaming application (restartPolicy Always).

    Field by field as kubeflow spark-operator v2.5.2 writes them (checked against its captured
    statuses in tests/unit/test_simulator_conformance.py): a submission counts in both
    ``submissionAttempts`` and ``executionAttempts`` and names only the driver pod;
    ``sparkApplicationId`` and the UI appear when it runs; FAILING sets ``terminationTime``; a
    rerun after a failure, a suspension and a resume keep the counters but forget the run; an
    invalidation (spec change) forgets the counters too.

    ``submitted_generation``: the generation of the last submission (``None``: unknown, e.g. the
    simulator restarted; the current status is then taken to describe the current spec).
    """
    old = _status(body)
    name = _name(body)
    generation = _generation(body)
    state = str(_get(old, "applicationState", "state") or "")
    seen = generation if submitted_generation is None and old else submitted_generation
    suspend = _get(body, "spec", "suspend") is True
    forget_run: dict[str, Any] = {"sparkApplicationId": _MISSING, "executorState": _MISSING}

    def step(new: dict[str, Any], new_state: str, described: int | None = seen) -> Step | None:
        return None if new == old else Step(status=new, state=new_state, generation=described)

    def attempt(new_state: str, *, error: str = "", executed: bool) -> dict[str, Any]:
        """A spark-submit: new submissionID, the attempt counted, only the driver pod named."""
        changes: dict[str, Any] = {
            **forget_run,
            "submissionID": new_id(),
            "lastSubmissionAttemptTime": now,
            "submissionAttempts": _counter(old, "submissionAttempts") + 1,
            "driverInfo": {"podName": f"{name}-driver"},
            "terminationTime": _MISSING,
        }
        if executed:
            changes["executionAttempts"] = _counter(old, "executionAttempts") + 1
        return _spark(old, new_state, error=error, **changes)

    def idle(new_state: str, **changes: Any) -> dict[str, Any]:
        """No run any more (rerun pending, suspended): no driver, no id, no executors."""
        return _spark(
            old, new_state, driverInfo={}, terminationTime=_MISSING, **forget_run, **changes
        )

    if failure is not None:
        target = failure.state or SPARK_FAILURE_STATES[0]
        if target == "SUBMISSION_FAILED":
            if state == target:
                return step(_spark(old, target, error=failure.message), target)
            new = attempt(target, error=failure.message, executed=False)
            return step(new, target, generation)
        # The driver failed: FAILING first (restartPolicy Always), FAILED when retries are over.
        changes = {"terminationTime": old.get("terminationTime") or now}
        return step(_spark(old, target, error=failure.message, **changes), target)
    if suspend:
        if state == "SUSPENDED":
            return None
        if state == "SUSPENDING":
            return step(idle("SUSPENDED"), "SUSPENDED")
        return step(_spark(old, "SUSPENDING"), "SUSPENDING")
    if state in ("SUSPENDED", "SUSPENDING"):
        return step(idle("RESUMING"), "RESUMING")
    if not old or state in {"", "RESUMING", "PENDING_RERUN", "SUBMISSION_FAILED"}:
        return step(attempt("SUBMITTED", executed=True), "SUBMITTED", generation)
    if seen != generation and state != "INVALIDATING":
        # The operator kills the running application and resubmits the updated spec.
        return step(_spark(old, "INVALIDATING"), "INVALIDATING")
    if state == "INVALIDATING":
        # The rerun of a changed spec starts afresh: the attempt counters go too.
        new = {"applicationState": {"state": "PENDING_RERUN"}, "driverInfo": {}}
        if "submissionID" in old:
            new["submissionID"] = old["submissionID"]
        return step(new, "PENDING_RERUN")
    if state in ("SUBMITTED", "RUNNING"):
        count = spark_expected_executors(body)
        executors = {f"{name}-exec-{index}": "RUNNING" for index in range(1, count + 1)}
        application_id = old.get("sparkApplicationId") or f"spark-{uuid.UUID(new_id()).hex}"
        new = _spark(
            old,
            "RUNNING",
            sparkApplicationId=application_id,
            driverInfo={
                "podName": f"{name}-driver",
                "webUIAddress": f"{_ui_address(name)}:4040",
                "webUIPort": 4040,
                "webUIServiceName": f"{name}-ui-svc",
            },
            executorState=executors,
        )
        return step(new, "RUNNING")
    # FAILED, FAILING, COMPLETED, SUCCEEDING, UNKNOWN, anything else: restartPolicy Always
    # reruns the application, keeping the attempt counters.
    return step(idle("PENDING_RERUN"), "PENDING_RERUN")


def _ui_address(name: str) -> str:
    """A stable stand-in for the UI service's cluster IP (the operator writes the real one)."""
    digest = hashlib.sha256(name.encode()).digest()
    return f"10.96.{digest[0]}.{max(digest[1], 1)}"


# --------------------------------------------------------------------------------------------------
# Apache FlinkDeployment
# --------------------------------------------------------------------------------------------------

FLINK_API_VERSION: Final = "flink.apache.org/v1beta1"
FLINK_ERROR_TYPE: Final = "org.apache.flink.kubernetes.operator.exception.ReconciliationException"


def flink_reconciled_spec(body: Mapping[str, Any], first: bool) -> str:
    """``reconciliationStatus.lastReconciledSpec``: the spec plus ``resource_metadata``."""
    return json.dumps(
        {
            "spec": _get(body, "spec") or {},
            "resource_metadata": {
                "apiVersion": FLINK_API_VERSION,
                "metadata": {"generation": _generation(body)},
                "firstDeployment": first,
            },
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def flink_error(message: str) -> str:
    """``status.error`` as the Apache operator writes it: a serialised exception."""
    return json.dumps(
        {
            "type": FLINK_ERROR_TYPE,
            "message": message,
            "additionalMetadata": {},
            "throwableList": [],
        }
    )


def _flink(old: dict[str, Any], lifecycle: str, **changes: Any) -> dict[str, Any]:
    new = {key: value for key, value in old.items() if key != "error"}
    new["lifecycleState"] = lifecycle
    return _changed(new, changes)


def flink_deployment_step(
    body: Mapping[str, Any],
    *,
    failure: Failure | None = None,
    now: str,
    new_id: Callable[[], str] = _new_uuid,
) -> Step | None:
    """The Apache Flink Kubernetes operator's lifecycle for an application-mode deployment."""
    old = _status(body)
    generation = _generation(body)
    lifecycle = old.get("lifecycleState")
    observed = old.get("observedGeneration")
    job = _get(body, "spec", "job")
    has_job = isinstance(job, Mapping)
    suspended = has_job and _get(job, "state") == "suspended"
    reconciliation = dict(old.get("reconciliationStatus") or {})
    job_status = dict(old.get("jobStatus") or {})
    name = _name(body)

    def step(new: dict[str, Any], new_state: str) -> Step | None:
        return None if new == old else Step(status=new, state=new_state, generation=generation)

    def job_in(state: str, **extra: Any) -> dict[str, Any] | object:
        if not has_job:
            return _MISSING
        # updateTime moves only when the job state does: a settled status is not rewritten.
        same = job_status.get("state") == state and job_status.get("updateTime")
        updated = job_status["updateTime"] if same else now
        return {**job_status, "jobName": name, "state": state, "updateTime": updated, **extra}

    if failure is not None:
        target = failure.state or FLINK_FAILURE_STATES[0]
        if target == "ROLLED_BACK":
            new = _flink(
                old,
                "ROLLED_BACK",
                reconciliationStatus={**reconciliation, "state": "ROLLED_BACK"},
                jobManagerDeploymentStatus="READY",
                jobStatus=job_in("RUNNING"),
                observedGeneration=generation,
            )
        elif old.get("jobManagerDeploymentStatus") in (None, "MISSING"):
            # Refused before anything was deployed (e.g. the spec failed the operator's
            # validation): no JobManager, and no job that could have a state.
            new = _flink(
                old,
                "FAILED",
                jobManagerDeploymentStatus="MISSING",
                jobStatus={k: v for k, v in job_status.items() if k != "state"} or _MISSING,
                observedGeneration=generation,
            )
        else:
            new = _flink(old, "FAILED", jobStatus=job_in("FAILED"), observedGeneration=generation)
        new["error"] = flink_error(failure.message)
        return step(new, target)
    if not old or lifecycle is None:
        new = {
            "lifecycleState": "CREATED",
            "jobManagerDeploymentStatus": "MISSING",
            "reconciliationStatus": {"state": "UPGRADING"},
        }
        if has_job:
            new["jobStatus"] = {"jobName": name}
        return step(new, "CREATED")
    if suspended:
        reconciled = flink_reconciled_spec(body, first=False)
        new = _flink(
            old,
            "SUSPENDED",
            reconciliationStatus={
                **reconciliation,
                "state": "DEPLOYED",
                "lastReconciledSpec": reconciled,
                "reconciliationTimestamp": _epoch_millis(now),
            },
            jobManagerDeploymentStatus="MISSING",
            jobStatus=job_in("SUSPENDED"),
            observedGeneration=generation,
        )
        return (
            None if lifecycle == "SUSPENDED" and observed == generation else step(new, "SUSPENDED")
        )
    if lifecycle != "CREATED" and observed != generation:
        # A spec change: the operator records the new spec and upgrades the job.
        new = _flink(
            old,
            "UPGRADING",
            reconciliationStatus={
                **reconciliation,
                "state": "UPGRADING",
                "lastReconciledSpec": flink_reconciled_spec(body, first=False),
                "reconciliationTimestamp": _epoch_millis(now),
            },
            observedGeneration=generation,
        )
        return step(new, "UPGRADING")
    if lifecycle == "DEPLOYED" and old.get("jobManagerDeploymentStatus") == "DEPLOYING":
        # The JobManager Deployment is available; its REST endpoint not answering yet.
        new = _flink(old, "DEPLOYED", jobManagerDeploymentStatus="DEPLOYED_NOT_READY")
        return step(new, "DEPLOYED")
    if lifecycle == "DEPLOYED":
        return _flink_stable(old, body=body, now=now, new_id=new_id, step=step, job_in=job_in)
    if lifecycle != "STABLE":
        # CREATED, UPGRADING, a recovered FAILED/ROLLED_BACK, a resumed SUSPENDED: deploy.
        new = _flink(
            old,
            "DEPLOYED",
            reconciliationStatus={
                **reconciliation,
                "state": "DEPLOYED",
                "lastReconciledSpec": flink_reconciled_spec(body, first=lifecycle == "CREATED"),
                "reconciliationTimestamp": _epoch_millis(now),
            },
            jobManagerDeploymentStatus="DEPLOYING",
            jobStatus=job_in("RECONCILING"),
            observedGeneration=generation,
        )
        return step(new, "DEPLOYED")
    # STABLE on the current generation: heal anything that is not the stable picture.
    return _flink_stable(old, body=body, now=now, new_id=new_id, step=step, job_in=job_in)


def _flink_stable(
    old: dict[str, Any],
    *,
    body: Mapping[str, Any],
    now: str,
    new_id: Callable[[], str],
    step: Callable[[dict[str, Any], str], Step | None],
    job_in: Callable[..., dict[str, Any] | object],
) -> Step | None:
    """JobManager READY, job RUNNING, the reconciled spec recorded as the last stable one."""
    reconciliation = dict(old.get("reconciliationStatus") or {})
    reconciled = reconciliation.get("lastReconciledSpec") or flink_reconciled_spec(body, False)
    job_status = old.get("jobStatus") or {}
    running = (
        isinstance(job_status, Mapping)
        and job_status.get("state") == "RUNNING"
        and job_status.get("jobId")
    )
    new = _flink(
        old,
        "STABLE",
        reconciliationStatus={
            **reconciliation,
            "state": "DEPLOYED",
            "lastReconciledSpec": reconciled,
            "lastStableSpec": reconciled,
        },
        jobManagerDeploymentStatus="READY",
        observedGeneration=_generation(body),
    )
    job = job_in("RUNNING", jobId=uuid.UUID(new_id()).hex, startTime=str(_epoch_millis(now)))
    if running:
        new["jobStatus"] = dict(job_status)
    elif isinstance(job, dict):
        new["jobStatus"] = job
    return step(new, "STABLE")


def _epoch_millis(timestamp: str) -> int:
    try:
        parsed = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return 0
    return int(parsed.timestamp() * 1000)


# --------------------------------------------------------------------------------------------------
# Lyft FlinkApplication
# --------------------------------------------------------------------------------------------------

LYFT_FAILED_PHASES: Final = frozenset({"DeployFailed", "RollingBackJob"})


def _lyft(old: dict[str, Any], phase: str, now: str, **changes: Any) -> dict[str, Any]:
    new = {
        key: value
        for key, value in old.items()
        if key not in ("failedDeployHash", "lastSeenError", "reason")
    }
    new["phase"] = phase
    new.setdefault("deployHash", "")
    new.setdefault("startedAt", now)
    if old.get("phase") != phase or not old:
        new["lastUpdatedAt"] = now
    return _changed(new, changes)


def flink_application_step(
    body: Mapping[str, Any],
    *,
    failure: Failure | None = None,
    now: str,
    new_id: Callable[[], str] = _new_uuid,
) -> Step | None:
    """The Lyft flinkk8soperator's phases; ``deployHash`` is set once the spec is Running."""
    old = _status(body)
    generation = _generation(body)
    phase = str(old.get("phase") or "")
    desired_hash = spec_hash(_get(body, "spec"))
    deploy_hash = str(old.get("deployHash") or "")
    job_status = dict(old.get("jobStatus") or {})
    job_state = job_status.get("state")
    parallelism = _get(body, "spec", "parallelism")
    name = _name(body)

    def step(new: dict[str, Any], new_state: str) -> Step | None:
        if new == old:
            return None
        return Step(status=new, state=new_state or "New", generation=generation)

    if failure is not None:
        target = failure.state or LYFT_FAILURE_STATES[0]
        error = {"appError": failure.message, "method": "SubmitJob", "isRetryable": False}
        if target == "FAILED":
            new = _lyft(old, phase or "Running", now, jobStatus={**job_status, "state": "FAILED"})
        else:
            new = _lyft(old, target, now, failedDeployHash=desired_hash)
        new["lastSeenError"] = error
        return step(new, target)
    failed = (
        phase in LYFT_FAILED_PHASES
        or bool(old.get("failedDeployHash"))
        or job_state in ("FAILED", "FAILING")
    )
    if failed:
        new = _lyft(old, "Recovering", now, jobStatus={**job_status, "state": "RESTARTING"})
        return step(new, "Recovering")
    if not old:
        return step(_lyft(old, "", now), "")
    if phase == "":
        return step(_lyft(old, "ClusterStarting", now), "ClusterStarting")
    if phase == "Running" and deploy_hash != desired_hash:
        return step(_lyft(old, "Updating", now), "Updating")
    if phase == "Updating":
        return step(_lyft(old, "ClusterStarting", now), "ClusterStarting")
    if phase == "ClusterStarting":
        cluster = {"health": "Green", "numberOfTaskManagers": 1, "healthyTaskManagers": 1}
        # A running job of the previous spec is savepointed before the new one is submitted.
        following = "Savepointing" if deploy_hash and job_state == "RUNNING" else "SubmittingJob"
        return step(_lyft(old, following, now, clusterStatus=cluster), following)
    if phase in ("Savepointing", "Recovering"):
        changes: dict[str, Any] = {}
        if phase == "Savepointing":
            changes["savepointPath"] = f"file:///savepoints/{name}/savepoint-{desired_hash}"
        return step(_lyft(old, "SubmittingJob", now, **changes), "SubmittingJob")
    if phase in ("SubmittingJob", "Rescaling", "Cancelling", "DualRunning") or (
        phase == "Running" and job_state != "RUNNING"
    ):
        job = {
            **job_status,
            "jobID": uuid.UUID(new_id()).hex,
            "state": "RUNNING",
            "health": "Green",
            "startTime": now,
        }
        if isinstance(parallelism, int) and not isinstance(parallelism, bool):
            job["parallelism"] = parallelism
        new = _lyft(old, "Running", now, jobStatus=job, deployHash=desired_hash)
        return step(new, "Running")
    if phase == "Running":
        return None
    # Deleting or a phase we do not know: start the cluster again.
    return step(_lyft(old, "ClusterStarting", now), "ClusterStarting")


# --------------------------------------------------------------------------------------------------
# Dispatcher
# --------------------------------------------------------------------------------------------------


def next_step(
    kind: str,
    body: Mapping[str, Any],
    *,
    failure: Failure | None = None,
    submitted_generation: int | None = None,
    now: str | None = None,
    new_id: Callable[[], str] = _new_uuid,
) -> Step | None:
    """The next status the delegate of ``kind`` would write for ``body``; None when settled.

    ``failure``: show this failure instead (kept until the caller stops passing it).
    ``submitted_generation``: SparkApplication only (see ``spark_application_step``).
    """
    when = now or utc_now()
    if kind == KAFKA_TOPIC:
        return kafka_topic_step(body, failure=failure, now=when, new_id=new_id)
    if kind == SPARK_APPLICATION:
        return spark_application_step(
            body,
            failure=failure,
            submitted_generation=submitted_generation,
            now=when,
            new_id=new_id,
        )
    if kind == FLINK_DEPLOYMENT:
        return flink_deployment_step(body, failure=failure, now=when, new_id=new_id)
    if kind == FLINK_APPLICATION:
        return flink_application_step(body, failure=failure, now=when, new_id=new_id)
    raise ValueError(f"the simulator does not drive kind {kind!r}")


# --------------------------------------------------------------------------------------------------
# The simulator (I/O)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    """A delegate kind as the API server serves it now."""

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


def served_version(crd: Mapping[str, Any], delegate: Delegate) -> Served | None:
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
            return Served(delegate, version, "status" in subresources)
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
    _served: dict[str, Served] = field(default_factory=dict, init=False, repr=False)
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
    def served(self) -> dict[str, Served]:
        """The delegate kinds found on the API server at the last discovery."""
        with self._lock:
            return dict(self._served)

    def discover(self) -> dict[str, Served]:
        """Read the delegate CRDs: served version and whether ``/status`` is a subresource."""
        from kubernetes.client import CustomObjectsApi
        from kubernetes.client.exceptions import ApiException

        api = CustomObjectsApi(self.api_client)
        found: dict[str, Served] = {}
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

    def _list(self, api: Any, served: Served) -> Iterable[Mapping[str, Any]]:
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

    def _advance(self, api: Any, served: Served, body: Mapping[str, Any]) -> Transition | None:
        from kubernetes.client.exceptions import ApiException

        kind = served.delegate.kind
        namespace = str(_get(body, "metadata", "namespace") or "")
        name = _name(body)
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
        if kind == SPARK_APPLICATION and uid not in self._submitted and body.get("status"):
            # Seen for the first time with a status (e.g. after a restart): trust it.
            self._submitted[uid] = _generation(body)
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
            "status": merge_patch(_status(body), step.status),
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
        if kind == SPARK_APPLICATION and step.generation is not None:
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
