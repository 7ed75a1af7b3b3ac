"""The SparkApplication adapter's state table (federator/core/delegates/sparkapplication.py):
one row per state its real operator writes, with the health, reason and message federator reads
from it. The delegate contract test (test_delegate_contract.py) requires this file and TABLE."""

from __future__ import annotations

from typing import Any

import pytest
from delegate_tables import (
    SPARK_SUBMISSION,
    check,
    row,
    spark_app,
)

from federator.core import delegates
from federator.core.delegates.sparkapplication import spark_application as judge_spark_application
from federator.core.health import MAX_CHILD_MESSAGE, Health

SPARK_EXECUTORS_ONE_PENDING = {
    "call-record-aggregator-cdr-aggregator-8c1d2e8f9a0b1c2d-exec-1": "RUNNING",
    "call-record-aggregator-cdr-aggregator-8c1d2e8f9a0b1c2d-exec-2": "PENDING",
}


EXAMPLE_STREAMLET: dict[str, Any] = {
    "name": "job",
    "runtime": "spark",
    "image": "img",
    "outlets": ["out"],
    "spark": {"mainApplicationFile": "local:///app.jar"},
}
"""A streamlet of an Application that renders this delegate (the contract test renders it)."""


def spark_state(state: str, error: str | None = None, **changes: Any) -> dict[str, Any]:
    app_state: dict[str, Any] = {"state": state}
    if error is not None:
        app_state["errorMessage"] = error
    return spark_app(status__applicationState=app_state, **changes)


TABLE = [
    row(spark_app(), Health.HEALTHY, "RUNNING", "2/2 executors running"),
    row(
        spark_app(status__executorState=SPARK_EXECUTORS_ONE_PENDING),
        Health.PROGRESSING,
        "ExecutorsPending",
        "1/2 executors running",
    ),
    row(spark_app(status__executorState=...), Health.PROGRESSING, "ExecutorsPending", "0/2"),
    row(spark_app(spec__executor__instances=3), Health.PROGRESSING, "ExecutorsPending", "2/3"),
    row(spark_app(status=...), Health.PROGRESSING, "AwaitingSubmission"),
    row(spark_state(""), Health.PROGRESSING, "AwaitingSubmission"),
    *[
        row(spark_state(state, executorState=None), Health.PROGRESSING, state)
        for state in (
            "SUBMITTED",
            "PENDING_RERUN",
            "INVALIDATING",
            "SUCCEEDING",
            "RESUMING",
            "SUSPENDING",
            "UNKNOWN",
        )
    ],
    row(
        spark_state("FAILED", "driver container failed with ExitCode: 1, Reason: Error"),
        Health.DEGRADED,
        "FAILED",
        "driver container failed with ExitCode: 1",
    ),
    row(
        spark_state(
            "SUBMISSION_FAILED",
            "failed to run spark-submit for SparkApplication lightbend/cdr: exit status 1",
        ),
        Health.DEGRADED,
        "SUBMISSION_FAILED",
        "failed to run spark-submit",
    ),
    row(
        spark_state("FAILING", "driver pod failed"),
        Health.DEGRADED,
        "FAILING",
        "driver pod failed",
    ),
    row(spark_state("FAILED"), Health.DEGRADED, "FAILED", "reports FAILED"),
    row(
        spark_state("COMPLETED"),
        Health.DEGRADED,
        "COMPLETED",
        "a streaming job must not finish",
    ),
    row(spark_state("SUSPENDED"), Health.SUSPENDED, "SUSPENDED"),
    row(spark_state("EXPLODED"), Health.UNKNOWN, "UnrecognisedState", "'EXPLODED'"),
    row(spark_app(status__applicationState={"state": 7}), Health.UNKNOWN, "MalformedStatus"),
]
IDS = [
    "running-all-executors",
    "running-too-few-executors",
    "running-no-executor-state",
    "running-fewer-than-instances",
    "no-status",
    "new",
    *[
        f"{s.lower()}"
        for s in (
            "SUBMITTED",
            "PENDING_RERUN",
            "INVALIDATING",
            "SUCCEEDING",
            "RESUMING",
            "SUSPENDING",
            "UNKNOWN",
        )
    ],
    "failed",
    "submission-failed",
    "failing",
    "failed-without-message",
    "completed",
    "suspended",
    "unrecognised-state",
    "state-not-a-string",
]


class TestSparkApplication:
    @pytest.mark.parametrize(("body", "expected", "reason", "msg"), TABLE, ids=IDS)
    def test_table(self, body: dict[str, Any], expected: Health, reason: str, msg: str) -> None:
        check(judge_spark_application(body), expected, reason, msg)

    @pytest.mark.parametrize(
        ("body", "expected", "reason"),
        [
            (spark_app(), Health.PROGRESSING, "AwaitingResubmission"),
            (spark_state("FAILED", "old failure"), Health.PROGRESSING, "AwaitingResubmission"),
            (spark_state("SUSPENDED"), Health.SUSPENDED, "SUSPENDED"),
            (
                spark_app(status__submissionID="f3a9c0de-1111-4b2a-9c3d-222233334444"),
                Health.HEALTHY,
                "RUNNING",
            ),
            (
                spark_state(
                    "SUBMISSION_FAILED",
                    "bad image",
                    status__submissionID="f3a9c0de-1111-4b2a-9c3d-222233334444",
                ),
                Health.DEGRADED,
                "SUBMISSION_FAILED",
            ),
        ],
        ids=[
            "running-same-submission",
            "failed-same-submission",
            "suspended-same-submission",
            "running-new-submission",
            "new-submission-failed",
        ],
    )
    def test_after_spec_change(self, body: dict[str, Any], expected: Health, reason: str) -> None:
        mark = SPARK_SUBMISSION
        result = judge_spark_application(body, mark)
        assert (result.health, result.reason) == (expected, reason)

    def test_mark_of_unsubmitted_app_waits_for_first_submission(self) -> None:
        mark = ""
        body = spark_state("", status__submissionID=..., status__executorState=...)
        assert (
            delegates.assess("SparkApplication", body, mark=mark).reason == "AwaitingResubmission"
        )
        body = spark_state("SUBMITTED", status__executorState=...)
        assert delegates.assess("SparkApplication", body, mark=mark).reason == "SUBMITTED"

    def test_awaiting_resubmission_shows_the_old_error(self) -> None:
        mark = SPARK_SUBMISSION
        result = judge_spark_application(spark_state("FAILED", "OOMKilled"), mark)
        assert "OOMKilled" in result.message

    @pytest.mark.parametrize(
        ("spec_changes", "expected"),
        [
            ({"spec__executor__instances": ...}, Health.HEALTHY),
            (
                {
                    "spec__executor__instances": ...,
                    "spec__sparkConf": {"spark.executor.instances": "3"},
                },
                Health.PROGRESSING,
            ),
        ],
        ids=["operator-default-one", "spark-conf-instances"],
    )
    def test_expected_executors_defaults(
        self, spec_changes: dict[str, Any], expected: Health
    ) -> None:
        body = spark_app(status__executorState=SPARK_EXECUTORS_ONE_PENDING, **spec_changes)
        assert judge_spark_application(body).health is expected

    def test_dynamic_allocation_expects_the_minimum(self) -> None:
        body = spark_app(
            spec__dynamicAllocation={"enabled": True, "minExecutors": 1, "maxExecutors": 8},
            status__executorState=SPARK_EXECUTORS_ONE_PENDING,
        )
        assert judge_spark_application(body).health is Health.HEALTHY

    def test_error_messages_are_clipped(self) -> None:
        trace = "java.lang.RuntimeException: boom\n" + "\tat com.example.Frame\n" * 500
        result = judge_spark_application(spark_state("FAILED", trace))
        # Too long to show whole: the stack frames go first, the cause stays.
        assert result.message == "java.lang.RuntimeException: boom"
        result = judge_spark_application(spark_state("FAILED", "x" * 5000))
        assert len(result.message) == MAX_CHILD_MESSAGE
