"""Readers shared by the Apache Flink operator's kinds (FlinkDeployment, FlinkSessionJob) and,
for Flink's own job states, Lyft's FlinkApplication: the operator's `status.error` JSON, its
generation bookkeeping, and Flink's JobStatus."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from federator.core.delegates import reading as read
from federator.core.fields import as_int, as_str, get
from federator.core.health import (
    REASON_AWAITING_STATUS,
    REASON_MALFORMED,
    REASON_UNRECOGNISED_STATE,
    ChildHealth,
    Health,
)

REASON_FLINK_ERROR: Final = "FlinkError"
REASON_JOB_MANAGER_ERROR: Final = "JobManagerError"
REASON_JOB_FAILED: Final = "JobFailed"
REASON_JOB_FAILING: Final = "JobFailing"
REASON_JOB_FINISHED: Final = "JobFinished"
REASON_JOB_CANCELED: Final = "JobCanceled"
FLINK_PROGRESSING_LIFECYCLES: Final = frozenset(
    {"CREATED", "UPGRADING", "ROLLING_BACK", "DELETING", "DELETED"}
)
FLINK_SETTLED_LIFECYCLES: Final = frozenset({"STABLE", "DEPLOYED"})
JOB_DEGRADED: Final[dict[str, str]] = {
    "FAILED": REASON_JOB_FAILED,
    "FAILING": REASON_JOB_FAILING,
}
# Terminal job states: a streaming job that finished or was cancelled will not come back by itself.
JOB_TERMINAL: Final[dict[str, str]] = {
    "FINISHED": REASON_JOB_FINISHED,
    "CANCELED": REASON_JOB_CANCELED,
}


def error_text(error: str) -> str:
    """The readable part of the Apache operator's ``status.error`` (a JSON object, usually).

    A failed job's top message is Flink's verdict on restarting it ("Recovery is suppressed by
    NoRestartBackoffTimeStrategy", as the real operator 1.7.0 wrote); what went wrong is the
    deepest entry of ``throwableList``, so that cause is shown too."""
    try:
        parsed = json.loads(error)
    except ValueError:
        return error
    message = as_str(get(parsed, "message"))
    if not message:
        return error
    causes = get(parsed, "throwableList")
    if isinstance(causes, list):
        texts = [as_str(get(c, "message")) for c in causes if isinstance(c, Mapping)]
        root = next((t for t in reversed(texts) if t), None)
        if root and root not in message:
            return f"{message} (caused by {root})"
    return message


def observed_generation(status: Mapping[str, Any]) -> int | None:
    """``status.observedGeneration``, else the generation in ``lastReconciledSpec`` (older ones)."""
    observed = as_int(get(status, "observedGeneration"))
    if observed is not None:
        return observed
    spec = as_str(get(status, "reconciliationStatus", "lastReconciledSpec"))
    if not spec:
        return None
    try:
        parsed = json.loads(spec)
    except ValueError:
        return None
    return as_int(get(parsed, "resource_metadata", "metadata", "generation"))


def job_text(job_state: Any, default: str) -> str:
    return f"the Flink job is {job_state}" if isinstance(job_state, str) and job_state else default


def lifecycle_verdict(
    body: Mapping[str, Any],
    status: Mapping[str, Any],
    *,
    failed: str,
    job_manager: Any = None,
) -> ChildHealth | str:
    """The Apache operator's verdict on one of its resources from its generation, lifecycle,
    error and job state; once none of them says more, the settled lifecycle (STABLE or
    DEPLOYED), which the kind judges further. `failed`: the text of a FAILED lifecycle without
    an error; `job_manager`: the FlinkDeployment's jobManagerDeploymentStatus (ERROR is
    Degraded), None for kinds without one."""
    lifecycle = get(status, "lifecycleState")
    job_state = get(status, "jobStatus", "state")
    raw_error = as_str(get(status, "error")) or ""
    error = error_text(raw_error) if raw_error else ""

    stale = read.stale(body, observed_generation(status))
    if stale is not None:
        # An error on a stale generation means the operator rejected the new spec.
        return read.degraded(REASON_FLINK_ERROR, error) if error else stale
    if lifecycle == "FAILED":
        return read.degraded("FAILED", error or job_text(job_state, failed))
    if lifecycle == "ROLLED_BACK":
        text = "the new spec failed and was rolled back to the last stable spec"
        return read.degraded("ROLLED_BACK", f"{text}: {error}" if error else text)
    if job_manager == "ERROR":
        return read.degraded(
            REASON_JOB_MANAGER_ERROR, error or "the JobManager deployment is in ERROR"
        )
    if error:
        return read.degraded(REASON_FLINK_ERROR, error)
    if isinstance(job_state, str) and job_state in JOB_DEGRADED:
        return read.degraded(JOB_DEGRADED[job_state], f"the Flink job is {job_state}")
    if lifecycle == "SUSPENDED":
        return ChildHealth(
            health=Health.SUSPENDED, reason="SUSPENDED", message="the job is suspended"
        )
    if lifecycle is None:
        return read.progressing(REASON_AWAITING_STATUS, "no lifecycleState yet")
    if not isinstance(lifecycle, str):
        return read.unknown(REASON_MALFORMED, "status.lifecycleState is not a string")
    if lifecycle in FLINK_PROGRESSING_LIFECYCLES:
        return read.progressing(lifecycle, f"lifecycle {lifecycle}")
    if lifecycle not in FLINK_SETTLED_LIFECYCLES:
        return read.unknown(REASON_UNRECOGNISED_STATE, f"unrecognised lifecycleState {lifecycle!r}")
    return lifecycle


def job_verdict(lifecycle: str, job_state: Any, *, prefix: str, running: str) -> ChildHealth:
    """A settled resource by its job: Healthy when RUNNING (`running` is the message), Degraded
    when it ended (a streaming job must not), else Progressing (`prefix` leads the message)."""
    if isinstance(job_state, str) and job_state in JOB_TERMINAL:
        return read.degraded(
            JOB_TERMINAL[job_state],
            f"the Flink job is {job_state}; a streaming job must not finish",
        )
    if job_state != "RUNNING":
        shown = job_state if isinstance(job_state, str) and job_state else "not reported"
        return read.progressing(
            shown if isinstance(job_state, str) and job_state else REASON_AWAITING_STATUS,
            f"{prefix}job {shown}",
        )
    return ChildHealth(health=Health.HEALTHY, reason=lifecycle, message=running)
