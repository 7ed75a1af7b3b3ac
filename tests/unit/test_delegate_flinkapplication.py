"""The FlinkApplication adapter's state table (federator/core/delegates/flinkapplication.py):
one row per state its real operator writes, with the health, reason and message federator reads
from it. The delegate contract test (test_delegate_contract.py) requires this file and TABLE."""

from __future__ import annotations

from typing import Any

import pytest
from delegate_tables import (
    check,
    lyft_app,
    row,
)

from federator.core.delegates.flinkapplication import flink_application as judge_flink_application
from federator.core.health import Health

# --------------------------------------------------------------------------------------------------
# FlinkApplication (Lyft)
# --------------------------------------------------------------------------------------------------

TABLE = [
    row(lyft_app(), Health.HEALTHY, "Running", "job RUNNING"),
    row(lyft_app(status=...), Health.PROGRESSING, "AwaitingDeploy"),
    row(lyft_app(status__phase="", status__deployHash=""), Health.PROGRESSING, "New"),
    *[
        row(lyft_app(status__phase=phase), Health.PROGRESSING, phase)
        for phase in (
            "Updating",
            "Rescaling",
            "ClusterStarting",
            "SubmittingJob",
            "Savepointing",
            "Cancelling",
            "Deleting",
            "Recovering",
            "DualRunning",
        )
    ],
    row(
        lyft_app(status__jobStatus__state="FAILED"),
        Health.DEGRADED,
        "JobFailed",
        "the Flink job is FAILED (phase Running)",
    ),
    row(lyft_app(status__jobStatus__state="FAILING"), Health.DEGRADED, "JobFailing"),
    row(lyft_app(status__jobStatus__state="FINISHED"), Health.DEGRADED, "JobFinished"),
    row(lyft_app(status__jobStatus__state="RESTARTING"), Health.PROGRESSING, "Running"),
    row(
        lyft_app(
            status__phase="DeployFailed",
            status__failedDeployHash="5e3c1a7b",
            status__rollbackHash="d9f8a6a8",
            status__reason="Failed to submit job: deploy timed out",
        ),
        Health.DEGRADED,
        "DeployFailed",
        "deploy timed out",
    ),
    row(
        lyft_app(
            status__phase="RollingBackJob",
            status__lastSeenError={
                "appError": "Job submission failed: NoClassDefFoundError",
                "method": "SubmitJob",
                "errorCode": "500",
                "isRetryable": False,
            },
        ),
        Health.DEGRADED,
        "RollingBackJob",
        "NoClassDefFoundError",
    ),
    row(
        lyft_app(status__failedDeployHash="5e3c1a7b"),
        Health.DEGRADED,
        "FailedDeployHash",
        "deploy 5e3c1a7b failed; running d9f8a6a8",
    ),
    row(lyft_app(status__phase="Teleporting"), Health.UNKNOWN, "UnrecognisedState"),
]
IDS = [
    "running",
    "no-status",
    "new",
    "updating",
    "rescaling",
    "cluster-starting",
    "submitting-job",
    "savepointing",
    "cancelling",
    "deleting",
    "recovering",
    "dual-running",
    "running-job-failed",
    "running-job-failing",
    "running-job-finished",
    "running-job-restarting",
    "deploy-failed",
    "rolling-back-job",
    "failed-deploy-hash",
    "unrecognised-phase",
]


EXAMPLE_STREAMLET: dict[str, Any] = {
    "name": "job",
    "runtime": "flink",
    "flinkOperator": "lyft",
    "image": "img",
    "outlets": ["out"],
    "flink": {"jarName": "app.jar", "entryClass": "A"},
}
"""A streamlet of an Application that renders this delegate (the contract test renders it)."""


class TestFlinkApplication:
    @pytest.mark.parametrize(("body", "expected", "reason", "msg"), TABLE, ids=IDS)
    def test_table(self, body: dict[str, Any], expected: Health, reason: str, msg: str) -> None:
        check(judge_flink_application(body), expected, reason, msg)

    @pytest.mark.parametrize(
        ("body", "expected", "reason"),
        [
            (lyft_app(), Health.PROGRESSING, "AwaitingDeploy"),
            (lyft_app(status__phase="Updating"), Health.PROGRESSING, "AwaitingDeploy"),
            (lyft_app(status__deployHash="0b7e44c2"), Health.HEALTHY, "Running"),
            (
                lyft_app(status__phase="DeployFailed", status__failedDeployHash="0b7e44c2"),
                Health.DEGRADED,
                "DeployFailed",
            ),
        ],
        ids=["running-old-hash", "updating-old-hash", "running-new-hash", "deploy-failed"],
    )
    def test_after_spec_change(self, body: dict[str, Any], expected: Health, reason: str) -> None:
        result = judge_flink_application(body, "d9f8a6a8")
        assert (result.health, result.reason) == (expected, reason)
