"""Apache Flink Kubernetes Operator `FlinkSessionJob` (flink.apache.org/v1beta1): a streamlet as a
job on a shared session cluster (a FlinkDeployment without a job), many small jobs on one cluster
instead of a cluster each. Selected by the streamlet's `flinkSession: <session FlinkDeployment>`.

Status: `lifecycleState` (ResourceLifecycleState), Flink's `jobStatus.state`, `error` (a JSON
object) and `observedGeneration` (the CRD in third_party/delegate-crds). Its health also depends on
its session cluster (`related`): missing, not a session cluster, or not ready reads as a reason
of its own, since the job cannot run until that is fixed.

The job runs in the session cluster's pods and image: federator creates no pod for it, the
streamlet's wiring reaches the job as program arguments (`--FEDERATOR_... <value>`), and the
`flink` block's `job.jarURI` must name a jar the Flink operator can fetch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from federator.core.childpods import PodSources
from federator.core.delegates import flinkstatus as fstatus
from federator.core.delegates import reading as read
from federator.core.delegates import simstep as sim
from federator.core.delegates.base import Delegate, Env, Ref, Simulation, SpecShape
from federator.core.delegates.flinkdeployment import flink_deployment, flink_error
from federator.core.delegates.simstep import Failure, Step
from federator.core.fields import get
from federator.core.health import (
    ChildHealth,
    Health,
)
from federator.core.model import Runtime, Streamlet

KIND: Final = "FlinkSessionJob"
SESSION_KIND: Final = "FlinkDeployment"
REASON_SESSION_CLUSTER_MISSING: Final = "SessionClusterMissing"
REASON_NOT_A_SESSION_CLUSTER: Final = "NotASessionCluster"
REASON_SESSION_CLUSTER_NOT_READY: Final = "SessionClusterNotReady"
FAILURE_STATES: Final = ("FAILED", "ROLLED_BACK")
"""The failure states the simulator can show (the first is the default)."""


# --------------------------------------------------------------------------------------------------
# Health
# --------------------------------------------------------------------------------------------------


def session_ref(body: Mapping[str, Any]) -> Ref | None:
    """The session cluster a session job names: (FlinkDeployment, its namespace, deploymentName)."""
    name = get(body, "spec", "deploymentName")
    namespace = get(body, "metadata", "namespace")
    if not isinstance(name, str) or not name or not isinstance(namespace, str):
        return None
    return (SESSION_KIND, namespace, name)


def session_cluster(
    body: Mapping[str, Any], related: Mapping[Ref, Mapping[str, Any] | None] | None
) -> ChildHealth | None:
    """What the session cluster says about the job: None when it is ready (or not observed)."""
    ref = session_ref(body)
    if related is None or ref is None or ref not in related:
        return None
    where = f"{ref[1]}/{ref[2]}"
    cluster = related[ref]
    if cluster is None:
        return read.degraded(
            REASON_SESSION_CLUSTER_MISSING,
            f"the session cluster {where} (a FlinkDeployment) does not exist: create it, or "
            "name an existing one in the streamlet's flinkSession",
        )
    if get(cluster, "spec", "job") is not None:
        return read.degraded(
            REASON_NOT_A_SESSION_CLUSTER,
            f"FlinkDeployment {where} runs a job of its own (spec.job): a session job needs a "
            "session cluster, a FlinkDeployment without spec.job",
        )
    judged = flink_deployment(cluster)
    if judged.health is Health.HEALTHY:
        return None
    text = f"the session cluster {where} is {judged.health}: {judged.message or judged.reason}"
    if judged.health is Health.PROGRESSING:
        return read.progressing(REASON_SESSION_CLUSTER_NOT_READY, text)
    return read.degraded(REASON_SESSION_CLUSTER_NOT_READY, text)


def flink_session_job(
    body: Mapping[str, Any], related: Mapping[Ref, Mapping[str, Any] | None] | None = None
) -> ChildHealth:
    """Health of an Apache ``FlinkSessionJob``, and of the session cluster it runs on."""
    session = session_cluster(body, related)
    if session is not None:
        return session
    status = read.status_of(body)
    if isinstance(status, ChildHealth):
        return status
    lifecycle = fstatus.lifecycle_verdict(body, status, failed="the job failed")
    if isinstance(lifecycle, ChildHealth):
        return lifecycle
    session_name = get(body, "spec", "deploymentName")
    return fstatus.job_verdict(
        lifecycle,
        get(status, "jobStatus", "state"),
        prefix="",
        running=f"job RUNNING on the session cluster {session_name}",
    )


# --------------------------------------------------------------------------------------------------
# Rendering: the session, the wiring as program arguments, suspension
# --------------------------------------------------------------------------------------------------


def wiring_args(env: Env) -> list[str]:
    """The wiring as `--NAME value` program arguments (Flink's ParameterTool reads them)."""
    return [part for e in env for part in (f"--{e['name']}", e["value"])]


def _context(streamlet: Streamlet, env: Env) -> Mapping[str, Any]:
    return {"session": streamlet.flink_session, "args": wiring_args(env)}


def _job(spec: dict[str, Any]) -> dict[str, Any]:
    job = spec.get("job", {})
    if not isinstance(job, dict):
        raise SpecShape(("job",), job, dict)
    return job


def _wire(spec: dict[str, Any], env: Env) -> None:
    """The wiring arguments first, the block's own after them; a block's value for a wiring
    argument is dropped (federator sets the wiring, as it does in env lists)."""
    job = _job(spec)
    args = job.get("args", [])
    if not isinstance(args, list):
        raise SpecShape(("job", "args"), args, list)
    ours = {f"--{e['name']}" for e in env}
    kept: list[Any] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in ours:
            skip = True
            continue
        kept.append(arg)
    spec["job"] = {**job, "args": [*wiring_args(env), *kept]}


def _suspend(spec: dict[str, Any]) -> None:
    spec["job"] = {**_job(spec), "state": "suspended"}


def _related(manifest: Mapping[str, Any]) -> tuple[Ref, ...]:
    ref = session_ref(manifest)
    return () if ref is None else (ref,)


# --------------------------------------------------------------------------------------------------
# Simulator step
# --------------------------------------------------------------------------------------------------


def flink_session_job_step(
    body: Mapping[str, Any],
    *,
    failure: Failure | None = None,
    now: str,
    new_id: Callable[[], str] = sim.new_uuid,
) -> Step | None:
    """The Apache operator's lifecycle for a session job: UPGRADING (the job is submitted to
    the session cluster) -> DEPLOYED (job RUNNING) -> STABLE; a spec change upgrades again;
    `job.state: suspended` -> SUSPENDED. (The session cluster's own state is not simulated
    here: it is a FlinkDeployment, with its own step.)"""
    old = sim.status_of(body)
    generation = sim.generation_of(body)
    lifecycle = old.get("lifecycleState")
    observed = old.get("observedGeneration")
    job_status = dict(old.get("jobStatus") or {})
    suspended = get(body, "spec", "job", "state") == "suspended"

    def step(new: dict[str, Any], state: str) -> Step | None:
        return None if new == old else Step(status=new, state=state, generation=generation)

    def status(lifecycle: str, job_state: str, **job: Any) -> dict[str, Any]:
        return {
            "lifecycleState": lifecycle,
            "observedGeneration": generation,
            "reconciliationStatus": {
                "state": "UPGRADING" if lifecycle == "UPGRADING" else "DEPLOYED"
            },
            "jobStatus": {
                **job_status,
                "jobName": sim.name_of(body),
                "state": job_state,
                **job,
            },
        }

    if failure is not None:
        target = failure.state or FAILURE_STATES[0]
        new = status(target, "FAILED" if target == "FAILED" else "RUNNING")
        new["error"] = flink_error(failure.message)
        return step(new, target)
    if suspended:
        return step(status("SUSPENDED", "SUSPENDED"), "SUSPENDED")
    if lifecycle is None or observed != generation or lifecycle in ("FAILED", "SUSPENDED"):
        return step(status("UPGRADING", "RECONCILING"), "UPGRADING")
    if lifecycle == "UPGRADING":
        job_id = job_status.get("jobId") or new_id().replace("-", "")
        return step(status("DEPLOYED", "RUNNING", jobId=job_id, startTime=now), "DEPLOYED")
    if lifecycle in ("DEPLOYED", "ROLLED_BACK"):
        return step(status("STABLE", "RUNNING"), "STABLE")
    return None


FLINK_SESSION_JOB = Delegate(
    kind=KIND,
    group="flink.apache.org",
    versions=("v1beta1",),
    plural="flinksessionjobs",
    template="flinksessionjob.yaml.j2",
    name_limit=63,
    operator="the Apache Flink Kubernetes operator (flinksessionjobs.flink.apache.org)",
    required=(("job", "jarURI"),),
    judge=lambda body, j: flink_session_job(body, j.related),
    suspend=_suspend,
    selects=lambda s: s.runtime is Runtime.FLINK and s.flink_session is not None,
    context=_context,
    wire=_wire,
    related=_related,
    pods=PodSources(roles=()),  # the session cluster's pods run the job
    simulation=Simulation(step=flink_session_job_step, failure_states=FAILURE_STATES),
)
