"""The FlinkDeployment adapter's state table (federator/core/delegates/flinkdeployment.py):
one row per state its real operator writes, with the health, reason and message federator reads
from it. The delegate contract test (test_delegate_contract.py) requires this file and TABLE."""

from __future__ import annotations

from typing import Any

import pytest
from delegate_tables import (
    APACHE_ERROR,
    APACHE_JOB_FAILED_ERROR,
    check,
    flink_deployment,
    row,
)

from federator.core.delegates.flinkdeployment import flink_deployment as judge_flink_deployment
from federator.core.health import Health

# --------------------------------------------------------------------------------------------------
# FlinkDeployment (Apache)
# --------------------------------------------------------------------------------------------------

TABLE = [
    row(flink_deployment(), Health.HEALTHY, "STABLE", "job RUNNING"),
    row(flink_deployment(status__lifecycleState="DEPLOYED"), Health.HEALTHY, "DEPLOYED"),
    row(flink_deployment(status=...), Health.PROGRESSING, "AwaitingStatus"),
    row(
        flink_deployment(metadata__generation=3),
        Health.PROGRESSING,
        "StaleGeneration",
        "observedGeneration 2, spec is generation 3",
    ),
    row(
        flink_deployment(metadata__generation=3, status__error=APACHE_ERROR),
        Health.DEGRADED,
        "FlinkError",
        "IllegalConfigurationException: Invalid log4j configuration",
    ),
    row(
        # Older operators carry the generation only inside lastReconciledSpec.
        flink_deployment(status__observedGeneration=..., metadata__generation=3),
        Health.PROGRESSING,
        "StaleGeneration",
        "observedGeneration 2",
    ),
    row(
        flink_deployment(status__observedGeneration=...),
        Health.HEALTHY,
        "STABLE",
    ),
    *[
        row(
            flink_deployment(
                status__lifecycleState=state,
                status__jobManagerDeploymentStatus="DEPLOYING",
                status__jobStatus__state=None,
            ),
            Health.PROGRESSING,
            state,
        )
        for state in ("CREATED", "UPGRADING", "ROLLING_BACK")
    ],
    row(
        flink_deployment(
            status__lifecycleState="DEPLOYED",
            status__jobManagerDeploymentStatus="DEPLOYING",
            status__jobStatus__state="RECONCILING",
        ),
        Health.PROGRESSING,
        "DEPLOYING",
        "JobManager is DEPLOYING",
    ),
    row(
        flink_deployment(
            status__lifecycleState="DEPLOYED",
            status__jobManagerDeploymentStatus="DEPLOYED_NOT_READY",
        ),
        Health.PROGRESSING,
        "DEPLOYED_NOT_READY",
    ),
    row(
        flink_deployment(status__jobManagerDeploymentStatus="MISSING"),
        Health.PROGRESSING,
        "MISSING",
    ),
    row(
        flink_deployment(status__lifecycleState="DEPLOYED", status__jobStatus__state="RECONCILING"),
        Health.PROGRESSING,
        "RECONCILING",
        "job RECONCILING",
    ),
    row(
        flink_deployment(status__jobStatus__state="RESTARTING"),
        Health.PROGRESSING,
        "RESTARTING",
    ),
    row(
        flink_deployment(
            status__lifecycleState="FAILED",
            status__jobStatus__state="FAILED",
            status__error=APACHE_ERROR,
        ),
        Health.DEGRADED,
        "FAILED",
        "Invalid log4j configuration",
    ),
    row(
        # As the real operator 1.7.0 wrote it for a job that threw (test_real_flink).
        flink_deployment(
            status__lifecycleState="FAILED",
            status__jobStatus__state="FAILED",
            status__error=APACHE_JOB_FAILED_ERROR,
        ),
        Health.DEGRADED,
        "FAILED",
        "NoRestartBackoffTimeStrategy (caused by java.lang.RuntimeException: simulated job failure",
    ),
    row(
        flink_deployment(
            status__lifecycleState="ROLLED_BACK", status__reconciliationStatus__state="ROLLED_BACK"
        ),
        Health.DEGRADED,
        "ROLLED_BACK",
        "rolled back to the last stable spec",
    ),
    row(
        flink_deployment(status__jobManagerDeploymentStatus="ERROR"),
        Health.DEGRADED,
        "JobManagerError",
    ),
    row(
        flink_deployment(status__error="Job manager pod crashed: CrashLoopBackOff"),
        Health.DEGRADED,
        "FlinkError",
        "CrashLoopBackOff",
    ),
    row(flink_deployment(status__jobStatus__state="FAILING"), Health.DEGRADED, "JobFailing"),
    row(flink_deployment(status__jobStatus__state="FAILED"), Health.DEGRADED, "JobFailed"),
    row(flink_deployment(status__jobStatus__state="FINISHED"), Health.DEGRADED, "JobFinished"),
    row(
        flink_deployment(
            spec__job__state="suspended",
            status__lifecycleState="SUSPENDED",
            status__jobManagerDeploymentStatus="MISSING",
            status__jobStatus__state="FINISHED",
        ),
        Health.SUSPENDED,
        "SUSPENDED",
    ),
    row(
        flink_deployment(spec__job=..., status__jobStatus={}),
        Health.HEALTHY,
        "STABLE",
        "JobManager READY",
    ),
    row(flink_deployment(status__lifecycleState="EXOTIC"), Health.UNKNOWN, "UnrecognisedState"),
    row(flink_deployment(status__lifecycleState=...), Health.PROGRESSING, "AwaitingStatus"),
]
IDS = [
    "stable",
    "deployed",
    "no-status",
    "stale-generation",
    "stale-generation-with-error",
    "stale-generation-from-last-reconciled-spec",
    "current-generation-from-last-reconciled-spec",
    "created",
    "upgrading",
    "rolling-back",
    "deployed-jm-deploying",
    "deployed-jm-not-ready",
    "jm-missing",
    "deployed-job-reconciling",
    "job-restarting",
    "failed",
    "failed-job-with-its-cause",
    "rolled-back",
    "jm-error",
    "status-error",
    "job-failing",
    "job-failed",
    "job-finished",
    "suspended",
    "session-cluster",
    "unrecognised-lifecycle",
    "no-lifecycle",
]


EXAMPLE_STREAMLET: dict[str, Any] = {
    "name": "job",
    "runtime": "flink",
    "flinkOperator": "apache",
    "image": "img",
    "outlets": ["out"],
    "flink": {"job": {"jarURI": "local:///app.jar"}},
}
"""A streamlet of an Application that renders this delegate (the contract test renders it)."""


class TestFlinkDeployment:
    @pytest.mark.parametrize(("body", "expected", "reason", "msg"), TABLE, ids=IDS)
    def test_table(self, body: dict[str, Any], expected: Health, reason: str, msg: str) -> None:
        check(judge_flink_deployment(body), expected, reason, msg)

    def test_unparsable_error_is_shown_verbatim(self) -> None:
        result = judge_flink_deployment(flink_deployment(status__error="{not json"))
        assert result.message == "{not json"
