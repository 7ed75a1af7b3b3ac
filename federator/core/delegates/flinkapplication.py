"""Lyft flinkk8soperator `FlinkApplication` (flink.k8s.io/v1beta1): a streamlet on Flink for
platforms that run Lyft's operator.

Status: `phase` (FlinkApplicationPhase), `deployHash` (the hash of the deployed spec: it has no
observedGeneration), `jobStatus.state` (Flink's JobStatus), `lastSeenError`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final

from federator.core.childpods import PodSources, lyft_flink_role
from federator.core.delegates import flinkstatus as fstatus
from federator.core.delegates import reading as read
from federator.core.delegates import simstep as sim
from federator.core.delegates.base import Delegate, Simulation
from federator.core.delegates.simstep import Failure, Step
from federator.core.fields import as_str, get
from federator.core.health import (
    REASON_MALFORMED,
    REASON_UNRECOGNISED_STATE,
    ChildHealth,
    Health,
)

REASON_FAILED_DEPLOY_HASH: Final = "FailedDeployHash"
REASON_AWAITING_DEPLOY: Final = "AwaitingDeploy"
LYFT_FAILURE_STATES: Final = ("DeployFailed", "FAILED", "RollingBackJob")
"""The failure states the simulator can show (the first is the default)."""


# --------------------------------------------------------------------------------------------------
# Health
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
        as_str(get(status, "reason")) or "",
        as_str(get(status, "lastSeenError", "appError")) or "",
    ]
    return "; ".join(part for part in parts if part)


def flink_application(body: Mapping[str, Any], mark: str | None = None) -> ChildHealth:
    """Health of a Lyft ``FlinkApplication``."""
    status = read.status_of(body)
    if isinstance(status, ChildHealth):
        if status.health is Health.PROGRESSING:
            return read.progressing(REASON_AWAITING_DEPLOY, "waiting for the Lyft Flink operator")
        return status
    raw_phase = get(status, "phase")
    if raw_phase is None:
        raw_phase = ""
    if not isinstance(raw_phase, str):
        return read.unknown(REASON_MALFORMED, "status.phase is not a string")
    phase = raw_phase
    job_state = get(status, "jobStatus", "state")
    deploy_hash = as_str(get(status, "deployHash")) or ""
    failed_hash = as_str(get(status, "failedDeployHash")) or ""
    error = _lyft_error_text(status)

    if phase in ("DeployFailed", "RollingBackJob"):
        return read.degraded(phase, error or f"the Lyft operator reports {phase}")
    if failed_hash:
        text = f"deploy {failed_hash} failed"
        text += f"; running {deploy_hash}" if deploy_hash else ""
        return read.degraded(REASON_FAILED_DEPLOY_HASH, f"{text}: {error}" if error else text)
    if isinstance(job_state, str) and job_state in fstatus.JOB_DEGRADED:
        text = f"the Flink job is {job_state} (phase {phase or 'New'})"
        return read.degraded(fstatus.JOB_DEGRADED[job_state], f"{text}: {error}" if error else text)
    if mark is not None and mark == deploy_hash:
        return read.progressing(
            REASON_AWAITING_DEPLOY,
            f"waiting for the Lyft operator to deploy the updated spec (phase {phase or 'New'},"
            f" deployHash still {deploy_hash or 'empty'})",
        )
    if phase == "Running":
        if isinstance(job_state, str) and job_state in fstatus.JOB_TERMINAL:
            return read.degraded(
                fstatus.JOB_TERMINAL[job_state],
                f"the Flink job is {job_state}; a streaming job must not finish",
            )
        if job_state == "RUNNING":
            return ChildHealth(health=Health.HEALTHY, reason=phase, message="job RUNNING")
        shown = job_state if isinstance(job_state, str) and job_state else "not reported"
        return read.progressing(phase, f"phase Running, job {shown}")
    if phase in LYFT_PROGRESSING_PHASES:
        return read.progressing(phase or "New", error)
    return read.unknown(REASON_UNRECOGNISED_STATE, f"unrecognised FlinkApplication phase {phase!r}")


# --------------------------------------------------------------------------------------------------
# Simulator step
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
    return sim.changed(new, changes)


def flink_application_step(
    body: Mapping[str, Any],
    *,
    failure: Failure | None = None,
    now: str,
    new_id: Callable[[], str] = sim.new_uuid,
) -> Step | None:
    """The Lyft flinkk8soperator's phases; ``deployHash`` is set once the spec is Running."""
    old = sim.status_of(body)
    generation = sim.generation_of(body)
    phase = str(old.get("phase") or "")
    desired_hash = sim.spec_hash(get(body, "spec"))
    deploy_hash = str(old.get("deployHash") or "")
    job_status = dict(old.get("jobStatus") or {})
    job_state = job_status.get("state")
    parallelism = get(body, "spec", "parallelism")
    name = sim.name_of(body)

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


def _run_token(status: Mapping[str, Any]) -> str:
    """deployHash is the hash of the spec the operator deployed: until it changes, the running
    job is still the old spec's."""
    return str(status.get("deployHash") or "")


LYFT_UNDECLARED_SPEC_FIELDS: Final[Mapping[str, Mapping[str, Any]]] = {
    "uiPort": {"type": "integer"},
    "forceRollback": {"type": "boolean"},
    "tearDownVersionHash": {"type": "string"},
}
"""The fields of the Lyft operator's `FlinkApplicationSpec` (its Go type, at the commit the
vendored CRD comes from) that the CRD leaves out of `spec.properties`. The CRD keeps unknown
fields, so the API server stores a typo or a field of another operator (`sidecarContainers`)
without a word, and the operator ignores it: the declared fields and these are all it reads."""

FLINK_APPLICATION = Delegate(
    kind="FlinkApplication",
    group="flink.k8s.io",
    versions=("v1beta1",),
    plural="flinkapplications",
    template="flinkapplication.yaml.j2",
    name_limit=45,
    operator="Lyft's flinkk8soperator (flinkapplications.flink.k8s.io)",
    required=(("jarName",), ("entryClass",)),
    judge=lambda body, j: flink_application(body, j.mark),
    run_token=_run_token,
    argocd_health="flink.k8s.io_FlinkApplication.lua",
    simulation=Simulation(step=flink_application_step, failure_states=LYFT_FAILURE_STATES),
    pods=PodSources(roles=(lyft_flink_role("jobmanager"), lyft_flink_role("taskmanager"))),
    namespace_setting=("flinkConfig", "kubernetes.namespace"),
    undeclared_spec_fields=LYFT_UNDECLARED_SPEC_FIELDS,
)
