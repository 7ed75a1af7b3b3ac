"""Kubeflow spark-operator `SparkApplication` (sparkoperator.k8s.io/v1beta2): a streamlet on Spark.

Status: `applicationState.state` (the operator's ApplicationStateType), `submissionID` (new at each
submission: it has no observedGeneration), `executorState` per executor pod. Checked against the
real operator v2.5.2 (tests/integration/test_real_spark.py and the statuses it captured).
"""

from __future__ import annotations

import datetime
import hashlib
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final

from federator.core import health
from federator.core.childpods import PodSources, spark_role
from federator.core.delegates import reading as read
from federator.core.delegates import simstep as sim
from federator.core.delegates.base import Delegate, Simulation
from federator.core.delegates.simstep import Failure, Step
from federator.core.fields import as_int, as_str, get
from federator.core.health import (
    REASON_MALFORMED,
    REASON_UNRECOGNISED_STATE,
    ChildHealth,
    Health,
)

REASON_AWAITING_SUBMISSION: Final = "AwaitingSubmission"
REASON_AWAITING_RESUBMISSION: Final = "AwaitingResubmission"
REASON_EXECUTORS_PENDING: Final = "ExecutorsPending"
REASON_NO_EXECUTORS: Final = "NoExecutors"
SPARK_FAILURE_STATES: Final = ("FAILED", "SUBMISSION_FAILED", "FAILING")
"""The failure states the simulator can show (the first is the default)."""


# --------------------------------------------------------------------------------------------------
# Health
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
    if len(error) <= health.MAX_CHILD_MESSAGE:
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


def _required_executors(body: Mapping[str, Any]) -> int:
    """Executors the application should run: the dynamic-allocation floor, else the instances."""
    if get(body, "spec", "dynamicAllocation", "enabled") is True:
        return as_int(get(body, "spec", "dynamicAllocation", "minExecutors")) or 0
    instances = as_int(get(body, "spec", "executor", "instances"))
    if instances is not None:
        return instances
    configured = as_str(get(body, "spec", "sparkConf", "spark.executor.instances"))
    if configured is not None and configured.strip().isdigit():
        return int(configured)
    # The Spark operator's defaulting sets one executor when none is given.
    return 1


def spark_application(
    body: Mapping[str, Any], mark: str | None = None, now: str | None = None
) -> ChildHealth:
    """Health of a Kubeflow ``SparkApplication`` running a streaming job.

    ``now`` (RFC 3339, passed in: this module reads no clock) lets a RUNNING submission that never
    got an executor turn Degraded after ``SPARK_EXECUTOR_GRACE_SECONDS``; without it, it stays
    Progressing."""
    status = read.status_of(body)
    if isinstance(status, ChildHealth):
        if status.health is Health.PROGRESSING:
            return read.progressing(REASON_AWAITING_SUBMISSION, "waiting for the Spark operator")
        return status
    raw_state = get(status, "applicationState", "state")
    if raw_state is None:
        raw_state = ""
    if not isinstance(raw_state, str):
        return read.unknown(REASON_MALFORMED, "status.applicationState.state is not a string")
    state = raw_state
    error = as_str(get(status, "applicationState", "errorMessage")) or ""

    # Suspending never resubmits, so the submissionID legitimately stays: decide this first.
    if state == "SUSPENDED":
        return ChildHealth(
            health=Health.SUSPENDED, reason=state, message="the application is suspended"
        )
    submission = as_str(get(status, "submissionID")) or ""
    if mark is not None and mark == submission:
        # The state (even a failure) still belongs to the previous spec's submission.
        text = "waiting for the Spark operator to resubmit the updated spec"
        text += f" (state {state or 'NEW'}: {error})" if error else f" (state {state or 'NEW'})"
        return read.progressing(REASON_AWAITING_RESUBMISSION, text)
    if state in SPARK_FAILED_STATES:
        return read.degraded(
            state, _spark_error_text(error) or f"the Spark operator reports {state}"
        )
    if state == "COMPLETED":
        return read.degraded(state, "the streaming job completed; a streaming job must not finish")
    if state == "":
        return read.progressing(
            REASON_AWAITING_SUBMISSION, "waiting for the Spark operator to submit"
        )
    if state in SPARK_PROGRESSING_STATES:
        return read.progressing(state, error)
    if state == "RUNNING":
        executors = get(status, "executorState")
        running = (
            sum(1 for value in executors.values() if value == "RUNNING")
            if isinstance(executors, Mapping)
            else 0
        )
        expected = _required_executors(body)
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
                else _seconds_since(get(status, "lastSubmissionAttemptTime"), now)
            )
            if elapsed is not None and elapsed >= SPARK_EXECUTOR_GRACE_SECONDS:
                return read.degraded(
                    REASON_NO_EXECUTORS, f"{text} {elapsed / 60:.0f} min after submission"
                )
            return read.progressing(REASON_EXECUTORS_PENDING, text)
        if running < expected:
            # Executors exist but are not all running (pending, replaced): the driver is at it.
            return read.progressing(REASON_EXECUTORS_PENDING, text)
        return ChildHealth(health=Health.HEALTHY, reason=state, message=text)
    return read.unknown(REASON_UNRECOGNISED_STATE, f"unrecognised SparkApplication state {state!r}")


# --------------------------------------------------------------------------------------------------
# Simulator step
# --------------------------------------------------------------------------------------------------


def spark_expected_executors(body: Mapping[str, Any]) -> int:
    """Executors the Spark operator would start: instances, the dynamic floor, else one."""
    spec = get(body, "spec") or {}
    counts = []
    instances = get(spec, "executor", "instances")
    if isinstance(instances, int) and not isinstance(instances, bool):
        counts.append(instances)
    if get(spec, "dynamicAllocation", "enabled") is True:
        for key in ("minExecutors", "initialExecutors"):
            value = get(spec, "dynamicAllocation", key)
            if isinstance(value, int) and not isinstance(value, bool):
                counts.append(value)
    if not counts:
        configured = get(spec, "sparkConf", "spark.executor.instances")
        if isinstance(configured, str) and configured.strip().isdigit():
            counts.append(int(configured))
    return max(counts) if counts else 1


def _spark(old: dict[str, Any], state: str, *, error: str = "", **changes: Any) -> dict[str, Any]:
    """A Spark status in ``state``, keeping what the operator keeps across states."""
    new = {key: value for key, value in old.items() if key != "applicationState"}
    new["applicationState"] = {"state": state, **({"errorMessage": error} if error else {})}
    new.setdefault("driverInfo", {})  # required by the CRD's status schema
    return sim.changed(new, changes)


def spark_application_step(
    body: Mapping[str, Any],
    *,
    failure: Failure | None = None,
    submitted_generation: int | None = None,
    now: str,
    new_id: Callable[[], str] = sim.new_uuid,
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
    old = sim.status_of(body)
    name = sim.name_of(body)
    generation = sim.generation_of(body)
    state = str(get(old, "applicationState", "state") or "")
    seen = generation if submitted_generation is None and old else submitted_generation
    suspend = get(body, "spec", "suspend") is True
    forget_run: dict[str, Any] = {"sparkApplicationId": sim.MISSING, "executorState": sim.MISSING}

    def step(new: dict[str, Any], new_state: str, described: int | None = seen) -> Step | None:
        return None if new == old else Step(status=new, state=new_state, generation=described)

    def attempt(new_state: str, *, error: str = "", executed: bool) -> dict[str, Any]:
        """A spark-submit: new submissionID, the attempt counted, only the driver pod named."""
        changes: dict[str, Any] = {
            **forget_run,
            "submissionID": new_id(),
            "lastSubmissionAttemptTime": now,
            "submissionAttempts": sim.counter(old, "submissionAttempts") + 1,
            "driverInfo": {"podName": f"{name}-driver"},
            "terminationTime": sim.MISSING,
        }
        if executed:
            changes["executionAttempts"] = sim.counter(old, "executionAttempts") + 1
        return _spark(old, new_state, error=error, **changes)

    def idle(new_state: str, **changes: Any) -> dict[str, Any]:
        """No run any more (rerun pending, suspended): no driver, no id, no executors."""
        return _spark(
            old, new_state, driverInfo={}, terminationTime=sim.MISSING, **forget_run, **changes
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


def _run_token(status: Mapping[str, Any]) -> str:
    """Every submission gets a new submissionID: until it changes, the status is the old spec's."""
    return str(status.get("submissionID") or "")


def _suspend(spec: dict[str, Any]) -> None:
    spec["suspend"] = True


SPARK_APPLICATION = Delegate(
    kind="SparkApplication",
    group="sparkoperator.k8s.io",
    versions=("v1beta2",),
    plural="sparkapplications",
    template="sparkapplication.yaml.j2",
    name_limit=63,
    operator="the Kubeflow Spark operator (sparkapplications.sparkoperator.k8s.io)",
    required=(("mainApplicationFile",),),
    judge=lambda body, j: spark_application(body, j.mark, j.now),
    run_token=_run_token,
    suspend=_suspend,
    simulation=Simulation(
        step=spark_application_step,
        failure_states=SPARK_FAILURE_STATES,
        remembers_generation=True,
    ),
    pods=PodSources(roles=(spark_role("driver"), spark_role("executor"))),
    namespace_setting=("sparkConf", "spark.kubernetes.namespace"),
)
