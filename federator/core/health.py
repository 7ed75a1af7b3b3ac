"""Health: per-kind adapters turn a delegate's status into a ChildHealth; aggregation rolls them up.

This module is purely computational: no kopf, no kubernetes client, no clock, no environment, no
I/O. Every function takes plain JSON-like mappings (what the API server returns) and returns
frozen values. It never raises on odd bodies: a missing, ``None`` or wrong-typed field makes the
child Progressing (waiting for the delegate to write it) or Unknown (a value we cannot interpret),
always with a reason saying which.

The vocabulary is Argo CD's, ordered Healthy < Suspended < Progressing < Missing < Degraded <
Unknown; the application's phase is the worst child (DESIGN §5). A child whose status does not yet
reflect the latest applied spec is Progressing, never Healthy: each adapter knows how its delegate
says so (``observedGeneration``, Spark's ``submissionID``, Lyft's ``deployHash``).

The state enumerations come from the delegates' own sources:

- Strimzi KafkaTopic (``kafka.strimzi.io`` v1 / v1beta2): conditions ``Ready``, ``Unmanaged``,
  ``ReconciliationPaused``; ``observedGeneration``; ``replicasChange.state`` pending|ongoing.
- Kubeflow Spark operator (``sparkoperator.k8s.io/v1beta2``) ``ApplicationStateType`` and the
  executor states in ``status.executorState`` (PENDING, RUNNING, COMPLETED, FAILED, UNKNOWN).
- Apache Flink Kubernetes operator (``flink.apache.org/v1beta1``) ``ResourceLifecycleState``,
  ``JobManagerDeploymentStatus`` and Flink's ``JobStatus``.
- Lyft flinkk8soperator (``flink.k8s.io/v1beta1``) ``FlinkApplicationPhase`` and Flink job states.
"""

from __future__ import annotations

import datetime
import enum
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from federator.core import fields

# --------------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------------


class Health(enum.StrEnum):
    """The health of one child, and of the application (Argo CD's vocabulary).

    A ``str`` enum: members compare equal to, and format as, their values ("Healthy").
    """

    HEALTHY = "Healthy"
    SUSPENDED = "Suspended"
    PROGRESSING = "Progressing"
    MISSING = "Missing"
    DEGRADED = "Degraded"
    UNKNOWN = "Unknown"

    @property
    def priority(self) -> int:
        """Position in the roll-up order: the higher, the worse."""
        return _PRIORITY[self]


# Argo CD's order: an unknown child hides everything, a degraded one everything but unknown.
HEALTH_ORDER: Final[tuple[Health, ...]] = (
    Health.HEALTHY,
    Health.SUSPENDED,
    Health.PROGRESSING,
    Health.MISSING,
    Health.DEGRADED,
    Health.UNKNOWN,
)
_PRIORITY: Final[dict[Health, int]] = {health: index for index, health in enumerate(HEALTH_ORDER)}


def worst(healths: Iterable[Health]) -> Health:
    """The worst of the given healths; Healthy (the neutral element) when there are none."""
    return max(healths, key=lambda health: _PRIORITY[health], default=Health.HEALTHY)


@dataclass(frozen=True, kw_only=True)
class ChildHealth:
    """The health of one child as judged from its delegate's status."""

    health: Health
    reason: str
    """Fixed CamelCase (``StaleGeneration``) or the delegate's own state string (``SUBMITTED``)."""
    message: str = ""
    """Human readable; carries the delegate's own error text when there is one."""


@dataclass(frozen=True, kw_only=True)
class ApplyMark:
    """What the operator saw on a child when it last applied a spec-changing update to it.

    Some delegates have no ``observedGeneration``: their status cannot say which spec it describes.
    For those, the operator records a token from the child's status at the moment it applies a new
    spec, and the child stays Progressing until the delegate has replaced that token, i.e. until the
    status describes the new spec. ``None`` means "no spec change pending" (nothing recorded).
    """

    spark_submission_id: str | None = None
    """``status.submissionID`` of the SparkApplication at the apply (``""`` when it had none).

    The Spark operator resubmits the application on a spec change and gives every submission a new
    ID; until ``submissionID`` differs from this value the status still describes the old spec.
    """
    lyft_deploy_hash: str | None = None
    """``status.deployHash`` of the Lyft FlinkApplication at the apply (``""`` when it had none).

    The Lyft operator sets ``deployHash`` to the hash of the spec it has deployed; until it changes
    from this value the running job is still the old spec's.
    """


# --------------------------------------------------------------------------------------------------
# Fixed reasons (child level)
# --------------------------------------------------------------------------------------------------

REASON_NOT_FOUND: Final = "NotFound"
REASON_DELEGATE_NOT_INSTALLED: Final = "DelegateNotInstalled"
REASON_UNSUPPORTED_KIND: Final = "UnsupportedKind"
REASON_MALFORMED: Final = "MalformedStatus"
REASON_AWAITING_STATUS: Final = "AwaitingStatus"
REASON_STALE_GENERATION: Final = "StaleGeneration"
REASON_UNRECOGNISED_STATE: Final = "UnrecognisedState"
# KafkaTopic
REASON_READY: Final = "Ready"
REASON_UNMANAGED: Final = "Unmanaged"
REASON_NOT_READY: Final = "NotReady"
REASON_AWAITING_READY: Final = "AwaitingReady"
REASON_RECONCILIATION_PAUSED: Final = "ReconciliationPaused"
REASON_REPLICAS_CHANGE: Final = "ReplicasChange"
# SparkApplication
REASON_AWAITING_SUBMISSION: Final = "AwaitingSubmission"
REASON_AWAITING_RESUBMISSION: Final = "AwaitingResubmission"
REASON_EXECUTORS_PENDING: Final = "ExecutorsPending"
REASON_NO_EXECUTORS: Final = "NoExecutors"
# FlinkDeployment / FlinkApplication
REASON_FLINK_ERROR: Final = "FlinkError"
REASON_JOB_MANAGER_ERROR: Final = "JobManagerError"
REASON_JOB_FAILED: Final = "JobFailed"
REASON_JOB_FAILING: Final = "JobFailing"
REASON_JOB_FINISHED: Final = "JobFinished"
REASON_JOB_CANCELED: Final = "JobCanceled"
REASON_FAILED_DEPLOY_HASH: Final = "FailedDeployHash"
REASON_AWAITING_DEPLOY: Final = "AwaitingDeploy"
# Deployment
REASON_AVAILABLE: Final = "Available"
REASON_ROLLOUT_IN_PROGRESS: Final = "RolloutInProgress"
REASON_PROGRESS_DEADLINE_EXCEEDED: Final = "ProgressDeadlineExceeded"
REASON_PAUSED: Final = "Paused"
REASON_SCALED_TO_ZERO: Final = "ScaledToZero"

# Strimzi's KafkaError messages start with the Kafka client exception's class name, e.g.
# "org.apache.kafka.common.errors.InvalidReplicationFactorException: Unable to replicate ...".
KAFKA_ERRORS_PACKAGE: Final = "org.apache.kafka.common.errors."
# Child messages are clipped: a Spark errorMessage can be a whole stack trace.
MAX_CHILD_MESSAGE: Final = 1024
# The API server rejects condition messages over 32768 characters.
MAX_CONDITION_MESSAGE: Final = 32768


# --------------------------------------------------------------------------------------------------
# Defensive readers: a body is whatever the API server (or a user) wrote
# --------------------------------------------------------------------------------------------------


def _clip(text: str, limit: int = MAX_CHILD_MESSAGE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _conditions(status: Any) -> dict[str, Mapping[str, Any]]:
    """Well-formed conditions of a status by type (the last one wins, as kubectl shows them)."""
    found: dict[str, Mapping[str, Any]] = {}
    items = fields.get(status, "conditions")
    if not isinstance(items, list):
        return found
    for item in items:
        kind = fields.as_str(fields.get(item, "type"))
        if kind is not None:
            found[kind] = item
    return found


def _condition_is(conditions: Mapping[str, Mapping[str, Any]], kind: str, status: str) -> bool:
    return bool(fields.get(conditions.get(kind), "status") == status)


def _progressing(reason: str, message: str = "") -> ChildHealth:
    return ChildHealth(health=Health.PROGRESSING, reason=reason, message=_clip(message))


def _degraded(reason: str, message: str = "") -> ChildHealth:
    return ChildHealth(health=Health.DEGRADED, reason=reason, message=_clip(message))


def _unknown(reason: str, message: str = "") -> ChildHealth:
    return ChildHealth(health=Health.UNKNOWN, reason=reason, message=_clip(message))


def _status_of(body: Mapping[str, Any]) -> Mapping[str, Any] | ChildHealth:
    """The status mapping, or the verdict when there is none (yet) or it is not an object."""
    status = fields.get(body, "status")
    if status is None or status == {}:
        return _progressing(
            REASON_AWAITING_STATUS, "the delegate operator has not written a status"
        )
    if not isinstance(status, Mapping):
        return _unknown(REASON_MALFORMED, f"status is a {type(status).__name__}, not an object")
    return status


def _stale(body: Mapping[str, Any], observed: int | None) -> ChildHealth | None:
    """Progressing when the status describes an older generation than ``metadata.generation``."""
    generation = fields.as_int(fields.get(body, "metadata", "generation"))
    if generation is None or observed == generation:
        return None
    seen = "no observedGeneration" if observed is None else f"observedGeneration {observed}"
    return _progressing(
        REASON_STALE_GENERATION,
        f"status describes {seen}, spec is generation {generation}: waiting for the operator",
    )


# --------------------------------------------------------------------------------------------------
# Strimzi KafkaTopic
# --------------------------------------------------------------------------------------------------


def kafka_topic(body: Mapping[str, Any]) -> ChildHealth:
    """Health of a Strimzi ``KafkaTopic`` (v1 and v1beta2 share the status schema)."""
    status = _status_of(body)
    if isinstance(status, ChildHealth):
        return status
    conditions = _conditions(status)
    # A paused topic is not reconciled, so its generation legitimately lags: check this first.
    if _condition_is(conditions, "ReconciliationPaused", "True"):
        return ChildHealth(
            health=Health.SUSPENDED,
            reason=REASON_RECONCILIATION_PAUSED,
            message="reconciliation is paused (strimzi.io/pause-reconciliation)",
        )
    stale = _stale(body, fields.as_int(fields.get(status, "observedGeneration")))
    if stale is not None:
        return stale
    if _condition_is(conditions, "Ready", "False"):
        ready = conditions["Ready"]
        message = fields.as_str(fields.get(ready, "message")) or ""
        return _degraded(
            fields.as_str(fields.get(ready, "reason")) or REASON_NOT_READY,
            # Strimzi writes a broker error as the Java exception's text; its package is noise.
            message.removeprefix(KAFKA_ERRORS_PACKAGE) or "the topic operator reports Ready=False",
        )
    replicas_change = fields.get(status, "replicasChange")
    if isinstance(replicas_change, Mapping) and replicas_change:
        target = fields.as_int(fields.get(replicas_change, "targetReplicas"))
        state = fields.as_str(fields.get(replicas_change, "state")) or "pending"
        text = f"replication factor change to {target} is {state}"
        detail = fields.as_str(fields.get(replicas_change, "message"))
        return _progressing(REASON_REPLICAS_CHANGE, f"{text}: {detail}" if detail else text)
    if _condition_is(conditions, "Ready", "True"):
        return ChildHealth(health=Health.HEALTHY, reason=REASON_READY)
    if _condition_is(conditions, "Unmanaged", "True"):
        return ChildHealth(
            health=Health.HEALTHY,
            reason=REASON_UNMANAGED,
            message="the topic is not managed by the topic operator (strimzi.io/managed: false)",
        )
    return _progressing(REASON_AWAITING_READY, "waiting for the topic operator to report Ready")


# --------------------------------------------------------------------------------------------------
# Kubeflow SparkApplication
# --------------------------------------------------------------------------------------------------

SPARK_PROGRESSING_STATES: Final = frozenset(
    {
        "SUBMITTED",
        "PENDING_RERUN",
        "INVALIDATING",
        "SUCCEEDING",
        "RESUMING",
        "SUSPENDING",
        "UNKNOWN",
    }
)
SPARK_FAILED_STATES: Final = frozenset({"FAILED", "SUBMISSION_FAILED", "FAILING"})
SPARK_EXECUTOR_GRACE_SECONDS: Final = 300.0
"""How long a RUNNING submission may go without a single executor pod before it is Degraded.

Measured from the operator's own ``status.lastSubmissionAttemptTime`` (set at every submission,
rerun and resume). A driver asks for its executors as soon as its SparkContext starts; five
minutes covers a slow JVM and application start-up on a busy node."""


# spark-submit's own log lines ("26/11/29 16:44:16 WARN Utils: ...") and Java stack frames: the
# real operator puts spark-submit's whole output (12 KB seen) into errorMessage, and its cause
# (the "Exception in thread" line) comes after the noise that a plain clip would keep.
_SPARK_LOG_LINE: Final = re.compile(r"\d\d/\d\d/\d\d \d\d:\d\d:\d\d (?:WARN|INFO|DEBUG|TRACE) ")
_JAVA_FRAME: Final = re.compile(r"^\s+(?:at |\.\.\. \d+ more)")


def _spark_error_text(error: str) -> str:
    """The operator's errorMessage, without spark-submit's log noise and stack frames when it is
    too long to show whole (the cause, e.g. a refused driver pod, then fits)."""
    if len(error) <= MAX_CHILD_MESSAGE:
        return error
    kept: list[str] = []
    for raw in error.splitlines():
        if _JAVA_FRAME.match(raw):
            continue
        noise = _SPARK_LOG_LINE.search(raw)
        line = raw if noise is None else raw[: noise.start()].rstrip()
        if line.strip():
            kept.append(line)
    return "\n".join(kept)


def _seconds_since(stamp: Any, now: str) -> float | None:
    """Seconds from an RFC 3339 timestamp to ``now`` (None when either does not parse)."""
    if not isinstance(stamp, str):
        return None
    try:
        start = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        end = datetime.datetime.fromisoformat(now.replace("Z", "+00:00"))
    except ValueError:
        return None
    if start.tzinfo is None or end.tzinfo is None:
        return None
    return (end - start).total_seconds()


def _spark_expected_executors(body: Mapping[str, Any]) -> int:
    """Executors the application should run: the dynamic-allocation floor, else the instances."""
    if fields.get(body, "spec", "dynamicAllocation", "enabled") is True:
        return fields.as_int(fields.get(body, "spec", "dynamicAllocation", "minExecutors")) or 0
    instances = fields.as_int(fields.get(body, "spec", "executor", "instances"))
    if instances is not None:
        return instances
    configured = fields.as_str(fields.get(body, "spec", "sparkConf", "spark.executor.instances"))
    if configured is not None and configured.strip().isdigit():
        return int(configured)
    # The Spark operator's defaulting sets one executor when none is given.
    return 1


def spark_application(
    body: Mapping[str, Any], mark: ApplyMark | None = None, now: str | None = None
) -> ChildHealth:
    """Health of a Kubeflow ``SparkApplication`` running a streaming job.

    ``now`` (RFC 3339, passed in: this module reads no clock) lets a RUNNING submission that never
    got an executor turn Degraded after ``SPARK_EXECUTOR_GRACE_SECONDS``; without it, it stays
    Progressing."""
    status = _status_of(body)
    if isinstance(status, ChildHealth):
        if status.health is Health.PROGRESSING:
            return _progressing(REASON_AWAITING_SUBMISSION, "waiting for the Spark operator")
        return status
    raw_state = fields.get(status, "applicationState", "state")
    if raw_state is None:
        raw_state = ""
    if not isinstance(raw_state, str):
        return _unknown(REASON_MALFORMED, "status.applicationState.state is not a string")
    state = raw_state
    error = fields.as_str(fields.get(status, "applicationState", "errorMessage")) or ""

    # Suspending never resubmits, so the submissionID legitimately stays: decide this first.
    if state == "SUSPENDED":
        return ChildHealth(
            health=Health.SUSPENDED, reason=state, message="the application is suspended"
        )
    submission = fields.as_str(fields.get(status, "submissionID")) or ""
    if mark is not None and mark.spark_submission_id == submission:
        # The state (even a failure) still belongs to the previous spec's submission.
        text = "waiting for the Spark operator to resubmit the updated spec"
        text += f" (state {state or 'NEW'}: {error})" if error else f" (state {state or 'NEW'})"
        return _progressing(REASON_AWAITING_RESUBMISSION, text)
    if state in SPARK_FAILED_STATES:
        return _degraded(state, _spark_error_text(error) or f"the Spark operator reports {state}")
    if state == "COMPLETED":
        return _degraded(state, "the streaming job completed; a streaming job must not finish")
    if state == "":
        return _progressing(REASON_AWAITING_SUBMISSION, "waiting for the Spark operator to submit")
    if state in SPARK_PROGRESSING_STATES:
        return _progressing(state, error)
    if state == "RUNNING":
        executors = fields.get(status, "executorState")
        running = (
            sum(1 for value in executors.values() if value == "RUNNING")
            if isinstance(executors, Mapping)
            else 0
        )
        expected = _spark_expected_executors(body)
        text = f"{running}/{expected} executors running"
        if running < expected and not (isinstance(executors, Mapping) and executors):
            # The real operator writes RUNNING once the driver pod runs and lists executor pods
            # in executorState from the first one (PENDING) on, keeping dead ones (FAILED). No
            # entry at all: no executor pod ever existed for this submission. Shortly after it,
            # that is start-up; long after, the driver cannot get executors (quota, RBAC,
            # admission) and nothing will change by itself: Degraded, not Progressing forever.
            text += "; the Spark operator reports no executor pod"
            elapsed = (
                None
                if now is None
                else _seconds_since(fields.get(status, "lastSubmissionAttemptTime"), now)
            )
            if elapsed is not None and elapsed >= SPARK_EXECUTOR_GRACE_SECONDS:
                return _degraded(
                    REASON_NO_EXECUTORS, f"{text} {elapsed / 60:.0f} min after submission"
                )
            return _progressing(REASON_EXECUTORS_PENDING, text)
        if running < expected:
            # Executors exist but are not all running (pending, replaced): the driver is at it.
            return _progressing(REASON_EXECUTORS_PENDING, text)
        return ChildHealth(health=Health.HEALTHY, reason=state, message=text)
    return _unknown(REASON_UNRECOGNISED_STATE, f"unrecognised SparkApplication state {state!r}")


# --------------------------------------------------------------------------------------------------
# Apache FlinkDeployment
# --------------------------------------------------------------------------------------------------

FLINK_PROGRESSING_LIFECYCLES: Final = frozenset(
    {"CREATED", "UPGRADING", "ROLLING_BACK", "DELETING", "DELETED"}
)
FLINK_SETTLED_LIFECYCLES: Final = frozenset({"STABLE", "DEPLOYED"})
_FLINK_JOB_DEGRADED: Final[dict[str, str]] = {
    "FAILED": REASON_JOB_FAILED,
    "FAILING": REASON_JOB_FAILING,
}
# Terminal job states: a streaming job that finished or was cancelled will not come back by itself.
_FLINK_JOB_TERMINAL: Final[dict[str, str]] = {
    "FINISHED": REASON_JOB_FINISHED,
    "CANCELED": REASON_JOB_CANCELED,
}


def _flink_error_text(error: str) -> str:
    """The readable part of the Apache operator's ``status.error`` (a JSON object, usually).

    A failed job's top message is Flink's verdict on restarting it ("Recovery is suppressed by
    NoRestartBackoffTimeStrategy", as the real operator 1.7.0 wrote); what went wrong is the
    deepest entry of ``throwableList``, so that cause is shown too."""
    try:
        parsed = json.loads(error)
    except ValueError:
        return error
    message = fields.as_str(fields.get(parsed, "message"))
    if not message:
        return error
    causes = fields.get(parsed, "throwableList")
    if isinstance(causes, list):
        texts = [fields.as_str(fields.get(c, "message")) for c in causes if isinstance(c, Mapping)]
        root = next((t for t in reversed(texts) if t), None)
        if root and root not in message:
            return f"{message} (caused by {root})"
    return message


def _flink_observed_generation(status: Mapping[str, Any]) -> int | None:
    """``status.observedGeneration``, else the generation in ``lastReconciledSpec`` (older ones)."""
    observed = fields.as_int(fields.get(status, "observedGeneration"))
    if observed is not None:
        return observed
    spec = fields.as_str(fields.get(status, "reconciliationStatus", "lastReconciledSpec"))
    if not spec:
        return None
    try:
        parsed = json.loads(spec)
    except ValueError:
        return None
    return fields.as_int(fields.get(parsed, "resource_metadata", "metadata", "generation"))


def flink_deployment(body: Mapping[str, Any]) -> ChildHealth:
    """Health of an Apache ``FlinkDeployment`` (application mode; session mode has no job)."""
    status = _status_of(body)
    if isinstance(status, ChildHealth):
        return status
    lifecycle = fields.get(status, "lifecycleState")
    job_manager = fields.get(status, "jobManagerDeploymentStatus")
    job_state = fields.get(status, "jobStatus", "state")
    raw_error = fields.as_str(fields.get(status, "error")) or ""
    error = _flink_error_text(raw_error) if raw_error else ""

    stale = _stale(body, _flink_observed_generation(status))
    if stale is not None:
        # An error on a stale generation means the operator rejected the new spec.
        return _degraded(REASON_FLINK_ERROR, error) if error else stale
    if lifecycle == "FAILED":
        return _degraded("FAILED", error or _flink_job_text(job_state, "the deployment failed"))
    if lifecycle == "ROLLED_BACK":
        text = "the new spec failed and was rolled back to the last stable spec"
        return _degraded("ROLLED_BACK", f"{text}: {error}" if error else text)
    if job_manager == "ERROR":
        return _degraded(REASON_JOB_MANAGER_ERROR, error or "the JobManager deployment is in ERROR")
    if error:
        return _degraded(REASON_FLINK_ERROR, error)
    if isinstance(job_state, str) and job_state in _FLINK_JOB_DEGRADED:
        return _degraded(_FLINK_JOB_DEGRADED[job_state], f"the Flink job is {job_state}")
    if lifecycle == "SUSPENDED":
        return ChildHealth(
            health=Health.SUSPENDED, reason="SUSPENDED", message="the job is suspended"
        )
    if lifecycle is None:
        return _progressing(REASON_AWAITING_STATUS, "no lifecycleState yet")
    if not isinstance(lifecycle, str):
        return _unknown(REASON_MALFORMED, "status.lifecycleState is not a string")
    if lifecycle in FLINK_PROGRESSING_LIFECYCLES:
        return _progressing(lifecycle, f"lifecycle {lifecycle}")
    if lifecycle not in FLINK_SETTLED_LIFECYCLES:
        return _unknown(REASON_UNRECOGNISED_STATE, f"unrecognised lifecycleState {lifecycle!r}")

    if job_manager != "READY":
        shown = job_manager if isinstance(job_manager, str) and job_manager else "not reported"
        return _progressing(
            shown if isinstance(job_manager, str) and job_manager else REASON_AWAITING_STATUS,
            f"JobManager is {shown}",
        )
    if fields.get(body, "spec", "job") is None:
        # Session mode: the cluster is the product; jobs come from FlinkSessionJobs.
        return ChildHealth(health=Health.HEALTHY, reason=lifecycle, message="JobManager READY")
    if isinstance(job_state, str) and job_state in _FLINK_JOB_TERMINAL:
        return _degraded(
            _FLINK_JOB_TERMINAL[job_state],
            f"the Flink job is {job_state}; a streaming job must not finish",
        )
    if job_state != "RUNNING":
        shown = job_state if isinstance(job_state, str) and job_state else "not reported"
        return _progressing(
            shown if isinstance(job_state, str) and job_state else REASON_AWAITING_STATUS,
            f"JobManager READY, job {shown}",
        )
    return ChildHealth(
        health=Health.HEALTHY, reason=lifecycle, message="JobManager READY, job RUNNING"
    )


def _flink_job_text(job_state: Any, default: str) -> str:
    return f"the Flink job is {job_state}" if isinstance(job_state, str) and job_state else default


# --------------------------------------------------------------------------------------------------
# Lyft FlinkApplication
# --------------------------------------------------------------------------------------------------

LYFT_PROGRESSING_PHASES: Final = frozenset(
    {
        "",
        "Updating",
        "Rescaling",
        "ClusterStarting",
        "SubmittingJob",
        "Savepointing",
        "Cancelling",
        "Deleting",
        "Recovering",
        "DualRunning",
    }
)


def _lyft_error_text(status: Mapping[str, Any]) -> str:
    """``status.reason`` and ``status.lastSeenError.appError``, whichever are set."""
    parts = [
        fields.as_str(fields.get(status, "reason")) or "",
        fields.as_str(fields.get(status, "lastSeenError", "appError")) or "",
    ]
    return "; ".join(part for part in parts if part)


def flink_application(body: Mapping[str, Any], mark: ApplyMark | None = None) -> ChildHealth:
    """Health of a Lyft ``FlinkApplication``."""
    status = _status_of(body)
    if isinstance(status, ChildHealth):
        if status.health is Health.PROGRESSING:
            return _progressing(REASON_AWAITING_DEPLOY, "waiting for the Lyft Flink operator")
        return status
    raw_phase = fields.get(status, "phase")
    if raw_phase is None:
        raw_phase = ""
    if not isinstance(raw_phase, str):
        return _unknown(REASON_MALFORMED, "status.phase is not a string")
    phase = raw_phase
    job_state = fields.get(status, "jobStatus", "state")
    deploy_hash = fields.as_str(fields.get(status, "deployHash")) or ""
    failed_hash = fields.as_str(fields.get(status, "failedDeployHash")) or ""
    error = _lyft_error_text(status)

    if phase in ("DeployFailed", "RollingBackJob"):
        return _degraded(phase, error or f"the Lyft operator reports {phase}")
    if failed_hash:
        text = f"deploy {failed_hash} failed"
        text += f"; running {deploy_hash}" if deploy_hash else ""
        return _degraded(REASON_FAILED_DEPLOY_HASH, f"{text}: {error}" if error else text)
    if isinstance(job_state, str) and job_state in _FLINK_JOB_DEGRADED:
        text = f"the Flink job is {job_state} (phase {phase or 'New'})"
        return _degraded(_FLINK_JOB_DEGRADED[job_state], f"{text}: {error}" if error else text)
    if mark is not None and mark.lyft_deploy_hash == deploy_hash:
        return _progressing(
            REASON_AWAITING_DEPLOY,
            f"waiting for the Lyft operator to deploy the updated spec (phase {phase or 'New'},"
            f" deployHash still {deploy_hash or 'empty'})",
        )
    if phase == "Running":
        if isinstance(job_state, str) and job_state in _FLINK_JOB_TERMINAL:
            return _degraded(
                _FLINK_JOB_TERMINAL[job_state],
                f"the Flink job is {job_state}; a streaming job must not finish",
            )
        if job_state == "RUNNING":
            return ChildHealth(health=Health.HEALTHY, reason=phase, message="job RUNNING")
        shown = job_state if isinstance(job_state, str) and job_state else "not reported"
        return _progressing(phase, f"phase Running, job {shown}")
    if phase in LYFT_PROGRESSING_PHASES:
        return _progressing(phase or "New", error)
    return _unknown(REASON_UNRECOGNISED_STATE, f"unrecognised FlinkApplication phase {phase!r}")


# --------------------------------------------------------------------------------------------------
# apps/v1 Deployment
# --------------------------------------------------------------------------------------------------


def deployment(body: Mapping[str, Any], suspended: bool = False) -> ChildHealth:
    """Health of an ``apps/v1`` Deployment (kubectl rollout status semantics).

    ``suspended``: the application is suspended, so zero replicas is the intended state.
    """
    status = _status_of(body)
    if isinstance(status, ChildHealth):
        return status
    stale = _stale(body, fields.as_int(fields.get(status, "observedGeneration")))
    if stale is not None:
        return stale
    progressing = _conditions(status).get("Progressing")
    if (
        fields.get(progressing, "status") == "False"
        and fields.get(progressing, "reason") == REASON_PROGRESS_DEADLINE_EXCEEDED
    ):
        return _degraded(
            REASON_PROGRESS_DEADLINE_EXCEEDED,
            fields.as_str(fields.get(progressing, "message"))
            or "the rollout exceeded its progress deadline",
        )
    if fields.get(body, "spec", "paused") is True:
        return ChildHealth(health=Health.SUSPENDED, reason=REASON_PAUSED, message="rollout paused")
    desired_raw = fields.get(body, "spec", "replicas")
    desired = 1 if desired_raw is None else fields.as_int(desired_raw)
    if desired is None:
        return _unknown(REASON_MALFORMED, "spec.replicas is not an integer")
    replicas = fields.as_int(fields.get(status, "replicas")) or 0
    updated = fields.as_int(fields.get(status, "updatedReplicas")) or 0
    available = fields.as_int(fields.get(status, "availableReplicas")) or 0

    if desired == 0 and suspended:
        if replicas == 0:
            return ChildHealth(
                health=Health.SUSPENDED,
                reason=REASON_SCALED_TO_ZERO,
                message="suspended: 0 replicas",
            )
        return _progressing(
            REASON_ROLLOUT_IN_PROGRESS, f"scaling to zero: {replicas} replicas left"
        )
    if updated < desired:
        return _progressing(
            REASON_ROLLOUT_IN_PROGRESS, f"{updated} of {desired} updated replicas are available"
        )
    if replicas > updated:
        return _progressing(
            REASON_ROLLOUT_IN_PROGRESS,
            f"{replicas - updated} old replicas are pending termination",
        )
    if available < updated:
        return _progressing(
            REASON_ROLLOUT_IN_PROGRESS, f"{available} of {updated} updated replicas are available"
        )
    return ChildHealth(
        health=Health.HEALTHY, reason=REASON_AVAILABLE, message=f"{available}/{desired} available"
    )


# --------------------------------------------------------------------------------------------------
# Dispatcher
# --------------------------------------------------------------------------------------------------

KIND_KAFKA_TOPIC: Final = "KafkaTopic"
KIND_SPARK_APPLICATION: Final = "SparkApplication"
KIND_FLINK_DEPLOYMENT: Final = "FlinkDeployment"
KIND_FLINK_APPLICATION: Final = "FlinkApplication"
KIND_DEPLOYMENT: Final = "Deployment"
SUPPORTED_KINDS: Final = frozenset(
    {
        KIND_KAFKA_TOPIC,
        KIND_SPARK_APPLICATION,
        KIND_FLINK_DEPLOYMENT,
        KIND_FLINK_APPLICATION,
        KIND_DEPLOYMENT,
    }
)


def assess(
    kind: str,
    body: Mapping[str, Any] | None,
    *,
    mark: ApplyMark | None = None,
    suspended: bool = False,
    delegate_installed: bool = True,
    operator_hint: str = "",
    now: str | None = None,
) -> ChildHealth:
    """The health of one child of the given kind from its observed body.

    ``body``: the child as read from the API server, ``None`` when it does not exist.
    ``mark``: what was recorded at the last spec-changing apply (see ``ApplyMark``).
    ``suspended``: the application is suspended (spec.suspend).
    ``delegate_installed``: whether the API server serves the delegate's CRD.
    ``operator_hint``: what to install when it does not, e.g. "install the Strimzi cluster
    operator (kafkatopics.kafka.strimzi.io)".
    ``now``: the current time (RFC 3339) for the adapters that judge how long a state lasted
    (SparkApplication: RUNNING without any executor); ``None`` judges no duration.
    """
    if not delegate_installed:
        return ChildHealth(
            health=Health.MISSING,
            reason=REASON_DELEGATE_NOT_INSTALLED,
            message=operator_hint or f"the CRD for {kind} is not installed",
        )
    if body is None:
        return ChildHealth(
            health=Health.MISSING, reason=REASON_NOT_FOUND, message=f"{kind} not found"
        )
    if not isinstance(body, Mapping):
        return _unknown(REASON_MALFORMED, f"the {kind} is a {type(body).__name__}, not an object")
    if kind == KIND_KAFKA_TOPIC:
        return kafka_topic(body)
    if kind == KIND_SPARK_APPLICATION:
        return spark_application(body, mark, now)
    if kind == KIND_FLINK_DEPLOYMENT:
        return flink_deployment(body)
    if kind == KIND_FLINK_APPLICATION:
        return flink_application(body, mark)
    if kind == KIND_DEPLOYMENT:
        return deployment(body, suspended)
    return _unknown(REASON_UNSUPPORTED_KIND, f"no health adapter for kind {kind!r}")


# --------------------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------------------

PHASE_INVALID: Final = "Invalid"

CONDITION_READY: Final = "Ready"
CONDITION_RECONCILING: Final = "Reconciling"
CONDITION_STALLED: Final = "Stalled"
CONDITION_COMPILED: Final = "Compiled"
CONDITION_DELEGATES_AVAILABLE: Final = "DelegatesAvailable"
CONDITION_TYPES: Final = (
    CONDITION_READY,
    CONDITION_RECONCILING,
    CONDITION_STALLED,
    CONDITION_COMPILED,
    CONDITION_DELEGATES_AVAILABLE,
)

# Fixed reasons (application level).
REASON_ALL_CHILDREN_HEALTHY: Final = "AllChildrenHealthy"
REASON_WAITING_FOR_CHILDREN: Final = "WaitingForChildren"
REASON_NO_CHILDREN: Final = "NoChildren"
REASON_CHILDREN_DEGRADED: Final = "ChildrenDegraded"
REASON_CHILDREN_MISSING: Final = "ChildrenMissing"
REASON_CHILDREN_UNKNOWN: Final = "ChildrenUnknown"
REASON_SUSPENDED: Final = "Suspended"
REASON_INVALID: Final = "Invalid"
REASON_CONVERGED: Final = "Converged"
REASON_NOT_STALLED: Final = "NotStalled"
REASON_COMPILED: Final = "Compiled"
REASON_ALL_DELEGATES_INSTALLED: Final = "AllDelegatesInstalled"

# How many names a condition message lists before "and N more".
MAX_LISTED_NAMES: Final = 2
# How many degraded children the Stalled message details.
MAX_STALLED_DETAILS: Final = 5
MAX_STALLED_DETAIL_MESSAGE: Final = 300

_READY_REASONS: Final[dict[str, str]] = {
    Health.SUSPENDED.value: REASON_SUSPENDED,
    Health.PROGRESSING.value: REASON_WAITING_FOR_CHILDREN,
    Health.MISSING.value: REASON_CHILDREN_MISSING,
    Health.DEGRADED.value: REASON_CHILDREN_DEGRADED,
    Health.UNKNOWN.value: REASON_CHILDREN_UNKNOWN,
    PHASE_INVALID: REASON_INVALID,
}


@dataclass(frozen=True, kw_only=True)
class ChildReport:
    """One child of an application with its assessed health."""

    kind: str
    name: str
    health: ChildHealth
    streamlet: str | None = None
    topic: str | None = None


@dataclass(frozen=True, kw_only=True)
class Condition:
    """A status condition without timestamps (``merge_conditions`` adds those)."""

    type: str
    status: str
    """"True", "False" or "Unknown"."""
    reason: str
    message: str


@dataclass(frozen=True, kw_only=True)
class AppHealth:
    """The rolled-up health of an application: its status minus timestamps and inventory."""

    phase: str
    """Healthy | Progressing | Degraded | Suspended | Missing | Unknown | Invalid."""
    ready: int
    """Children that are Healthy."""
    total: int
    summary: str
    """``ready/total``, the READY printer column."""
    conditions: tuple[Condition, ...]


def _sorted_worst_first(children: Iterable[ChildReport]) -> list[ChildReport]:
    return sorted(
        children, key=lambda child: (-child.health.health.priority, child.name, child.kind)
    )


def _list_names(names: Sequence[str]) -> str:
    """``a, b and 3 more``: at most ``MAX_LISTED_NAMES`` names."""
    listed = ", ".join(names[:MAX_LISTED_NAMES])
    rest = len(names) - MAX_LISTED_NAMES
    return f"{listed} and {rest} more" if rest > 0 else listed


def _condition(kind: str, status: bool, reason: str, message: str) -> Condition:
    return Condition(
        type=kind,
        status="True" if status else "False",
        reason=reason,
        message=_clip(message, MAX_CONDITION_MESSAGE),
    )


def _delegates_condition(children: Sequence[ChildReport]) -> Condition:
    missing: dict[str, str] = {}
    for child in sorted(children, key=lambda child: (child.kind, child.name)):
        if child.health.reason == REASON_DELEGATE_NOT_INSTALLED and child.kind not in missing:
            missing[child.kind] = child.health.message
    if not missing:
        return _condition(CONDITION_DELEGATES_AVAILABLE, True, REASON_ALL_DELEGATES_INSTALLED, "")
    details = "; ".join(
        f"{kind}: {hint}" if hint else kind for kind, hint in sorted(missing.items())
    )
    return _condition(
        CONDITION_DELEGATES_AVAILABLE,
        False,
        REASON_DELEGATE_NOT_INSTALLED,
        f"missing delegate operators: {details}",
    )


def _stalled_message(degraded: Sequence[ChildReport]) -> str:
    details = []
    for child in degraded[:MAX_STALLED_DETAILS]:
        text = child.health.message or child.health.reason
        details.append(f"{child.name}: {_clip(text, MAX_STALLED_DETAIL_MESSAGE)}")
    rest = len(degraded) - MAX_STALLED_DETAILS
    more = f"; and {rest} more" if rest > 0 else ""
    return "Degraded: " + "; ".join(details) + more


def aggregate(
    children: Sequence[ChildReport],
    *,
    problems: Sequence[str] = (),
    suspended: bool = False,
) -> AppHealth:
    """Roll children up into the application's phase, counts and all five conditions.

    ``problems``: every problem of the spec; non-empty means it is invalid (phase Invalid).
    ``suspended``: the spec suspends the application.
    """
    ordered = _sorted_worst_first(children)
    total = len(ordered)
    ready = sum(1 for child in ordered if child.health.health is Health.HEALTHY)
    unready = [child for child in ordered if child.health.health is not Health.HEALTHY]
    degraded = [child for child in ordered if child.health.health is Health.DEGRADED]
    worst_child = worst(child.health.health for child in ordered)

    if problems:
        phase = PHASE_INVALID
    elif not ordered:
        phase = Health.PROGRESSING.value
    elif suspended and worst_child.priority <= Health.SUSPENDED.priority:
        phase = Health.SUSPENDED.value
    else:
        phase = worst_child.value

    # Ready: the summary condition kstatus, Flux and Argo CD look at first.
    if phase == Health.HEALTHY.value:
        ready_condition = _condition(
            CONDITION_READY, True, REASON_ALL_CHILDREN_HEALTHY, f"{ready}/{total} children healthy"
        )
    elif phase == PHASE_INVALID:
        ready_condition = _condition(
            CONDITION_READY, False, REASON_INVALID, "the spec is invalid; see Compiled"
        )
    elif not ordered:
        ready_condition = _condition(
            CONDITION_READY, False, REASON_NO_CHILDREN, "no children observed yet"
        )
    elif phase == Health.SUSPENDED.value and suspended:
        ready_condition = _condition(
            CONDITION_READY, False, REASON_SUSPENDED, "suspended by spec.suspend"
        )
    else:
        ready_condition = _condition(
            CONDITION_READY,
            False,
            _READY_REASONS[phase],
            "Unready: " + _list_names([child.name for child in unready]),
        )

    # Reconciling: kstatus InProgress, while the children converge.
    converging = phase in (Health.PROGRESSING.value, Health.MISSING.value)
    if converging:
        reconciling = _condition(
            CONDITION_RECONCILING,
            True,
            _READY_REASONS[phase] if ordered else REASON_NO_CHILDREN,
            ("Waiting for: " + _list_names([child.name for child in unready]))
            if unready
            else "waiting for children to be observed",
        )
    else:
        reconciling = _condition(
            CONDITION_RECONCILING,
            False,
            _READY_REASONS.get(phase, REASON_CONVERGED),
            "",
        )

    # Stalled: kstatus Failed, progress needs a human.
    if phase == PHASE_INVALID:
        stalled = _condition(
            CONDITION_STALLED, True, REASON_INVALID, f"the spec has {len(problems)} problem(s)"
        )
    elif phase == Health.DEGRADED.value:
        stalled = _condition(
            CONDITION_STALLED, True, REASON_CHILDREN_DEGRADED, _stalled_message(degraded)
        )
    else:
        stalled = _condition(CONDITION_STALLED, False, REASON_NOT_STALLED, "")

    if problems:
        compiled = _condition(
            CONDITION_COMPILED,
            False,
            REASON_INVALID,
            f"{len(problems)} problem(s): " + "; ".join(problems),
        )
    else:
        compiled = _condition(CONDITION_COMPILED, True, REASON_COMPILED, "")

    return AppHealth(
        phase=phase,
        ready=ready,
        total=total,
        summary=f"{ready}/{total}",
        conditions=(ready_condition, reconciling, stalled, compiled, _delegates_condition(ordered)),
    )


# --------------------------------------------------------------------------------------------------
# Status writing helpers (pure: ``now`` is passed in)
# --------------------------------------------------------------------------------------------------


def merge_conditions(
    previous: Sequence[Mapping[str, Any]],
    current: Sequence[Condition],
    *,
    now: str,
    observed_generation: int,
) -> list[dict[str, Any]]:
    """Kubernetes API-convention condition dicts for ``current``, in its order.

    ``lastTransitionTime`` is kept from ``previous`` when a condition's status did not change (so
    unchanged conditions do not churn), else it is ``now``. Previous conditions of types not in
    ``current`` are dropped; malformed previous entries are ignored.
    """
    before: dict[str, Mapping[str, Any]] = {}
    for item in previous if isinstance(previous, Sequence) else ():
        kind = fields.as_str(fields.get(item, "type"))
        if kind is not None:
            before[kind] = item
    merged: list[dict[str, Any]] = []
    for condition in current:
        old = before.get(condition.type)
        old_time = fields.as_str(fields.get(old, "lastTransitionTime"))
        unchanged = old is not None and fields.get(old, "status") == condition.status and old_time
        merged.append(
            {
                "type": condition.type,
                "status": condition.status,
                "reason": condition.reason,
                "message": condition.message,
                "observedGeneration": observed_generation,
                "lastTransitionTime": old_time if unchanged else now,
            }
        )
    return merged


def status_changed(old_status: Mapping[str, Any] | None, new_status: Mapping[str, Any]) -> bool:
    """Whether writing ``new_status`` would change anything in ``old_status``.

    Only the keys of ``new_status`` are compared: fields other writers own (``status.kopf``) are
    not ours to judge. Build ``new_status`` with ``merge_conditions`` so that an unchanged
    condition compares equal.
    """
    if not isinstance(old_status, Mapping):
        return True
    return any(old_status.get(key) != value for key, value in new_status.items())
