"""Apache Flink Kubernetes Operator `FlinkDeployment` (flink.apache.org/v1beta1): a streamlet as a
Flink cluster of its own running one job (application mode), or a session cluster.

Status: `lifecycleState` (ResourceLifecycleState), `jobManagerDeploymentStatus`, Flink's
`jobStatus.state`, `error` (a JSON object) and `observedGeneration`. Checked against the real
operator 1.7.0 (tests/integration/test_real_flink.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from federator.core.childpods import PodSources, apache_flink_role
from federator.core.delegates import flinkstatus as fstatus
from federator.core.delegates import reading as read
from federator.core.delegates import simstep as sim
from federator.core.delegates.base import Delegate, Simulation, SpecShape
from federator.core.delegates.simstep import Failure, Step
from federator.core.fields import get
from federator.core.health import (
    REASON_AWAITING_STATUS,
    ChildHealth,
    Health,
)

FLINK_FAILURE_STATES: Final = ("FAILED", "ROLLED_BACK")
"""The failure states the simulator can show (the first is the default)."""


# --------------------------------------------------------------------------------------------------
# Health
# --------------------------------------------------------------------------------------------------


def flink_deployment(body: Mapping[str, Any]) -> ChildHealth:
    """Health of an Apache ``FlinkDeployment`` (application mode; session mode has no job)."""
    status = read.status_of(body)
    if isinstance(status, ChildHealth):
        return status
    job_manager = get(status, "jobManagerDeploymentStatus")
    lifecycle = fstatus.lifecycle_verdict(
        body, status, failed="the deployment failed", job_manager=job_manager
    )
    if isinstance(lifecycle, ChildHealth):
        return lifecycle
    if job_manager != "READY":
        shown = job_manager if isinstance(job_manager, str) and job_manager else "not reported"
        return read.progressing(
            shown if isinstance(job_manager, str) and job_manager else REASON_AWAITING_STATUS,
            f"JobManager is {shown}",
        )
    if get(body, "spec", "job") is None:
        # Session mode: the cluster is the product; jobs come from FlinkSessionJobs.
        return ChildHealth(health=Health.HEALTHY, reason=lifecycle, message="JobManager READY")
    return fstatus.job_verdict(
        lifecycle,
        get(status, "jobStatus", "state"),
        prefix="JobManager READY, ",
        running="JobManager READY, job RUNNING",
    )


# --------------------------------------------------------------------------------------------------
# Simulator step
# --------------------------------------------------------------------------------------------------

FLINK_API_VERSION: Final = "flink.apache.org/v1beta1"
FLINK_ERROR_TYPE: Final = "org.apache.flink.kubernetes.operator.exception.ReconciliationException"


def flink_reconciled_spec(body: Mapping[str, Any], first: bool) -> str:
    """``reconciliationStatus.lastReconciledSpec``: the spec plus ``resource_metadata``."""
    return json.dumps(
        {
            "spec": get(body, "spec") or {},
            "resource_metadata": {
                "apiVersion": FLINK_API_VERSION,
                "metadata": {"generation": sim.generation_of(body)},
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
    return sim.changed(new, changes)


def flink_deployment_step(
    body: Mapping[str, Any],
    *,
    failure: Failure | None = None,
    now: str,
    new_id: Callable[[], str] = sim.new_uuid,
) -> Step | None:
    """The Apache Flink Kubernetes operator's lifecycle for an application-mode deployment."""
    old = sim.status_of(body)
    generation = sim.generation_of(body)
    lifecycle = old.get("lifecycleState")
    observed = old.get("observedGeneration")
    job = get(body, "spec", "job")
    has_job = isinstance(job, Mapping)
    suspended = has_job and get(job, "state") == "suspended"
    reconciliation = dict(old.get("reconciliationStatus") or {})
    job_status = dict(old.get("jobStatus") or {})
    name = sim.name_of(body)

    def step(new: dict[str, Any], new_state: str) -> Step | None:
        return None if new == old else Step(status=new, state=new_state, generation=generation)

    def job_in(state: str, **extra: Any) -> dict[str, Any] | object:
        if not has_job:
            return sim.MISSING
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
                jobStatus={k: v for k, v in job_status.items() if k != "state"} or sim.MISSING,
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
        observedGeneration=sim.generation_of(body),
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


def _suspend(spec: dict[str, Any]) -> None:
    job = spec.get("job", {})
    if not isinstance(job, dict):
        raise SpecShape(("job",), job, dict)
    spec["job"] = {**job, "state": "suspended"}


FLINK_DEPLOYMENT = Delegate(
    kind="FlinkDeployment",
    group="flink.apache.org",
    versions=("v1beta1",),
    plural="flinkdeployments",
    template="flinkdeployment.yaml.j2",
    # The Apache operator refuses longer FlinkDeployment names (its JobManager service names).
    name_limit=45,
    operator="the Apache Flink Kubernetes operator (flinkdeployments.flink.apache.org)",
    required=(("job", "jarURI"),),
    judge=lambda body, _: flink_deployment(body),
    suspend=_suspend,
    simulation=Simulation(step=flink_deployment_step, failure_states=FLINK_FAILURE_STATES),
    pods=PodSources(
        roles=(apache_flink_role("jobManager"), apache_flink_role("taskManager")),
        own_service_accounts=frozenset({"flink"}),  # templates/flinkdeployment.yaml.j2
    ),
    namespace_setting=("flinkConfiguration", "kubernetes.namespace"),
)
