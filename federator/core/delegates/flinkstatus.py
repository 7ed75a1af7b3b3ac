"""Readers shared by the Apache Flink operator's kinds (FlinkDeployment, FlinkSessionJob) and,
for Flink's own job states, Lyft's FlinkApplication: the operator's `status.error` JSON, its
generation bookkeeping, and Flink's JobStatus."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from federator.core.fields import as_int, as_str, get

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
