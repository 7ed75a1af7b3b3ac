"""The Spark health adapter over statuses the REAL kubeflow spark-operator v2.5.2 wrote.

The data (tests/unit/data/spark-operator-v2.5.2/) was captured from the real operator run against
the embedded control plane: every distinct status of the seed application's three
SparkApplications (statuses.jsonl, transitions.txt) and one whole SparkApplication, RUNNING with no
executor (running-without-executors.json), and the errorMessage of a submission refused by
PodSecurity (submission-failed-podsecurity.errorMessage.txt). Finding 4 of issue 13 is decided here.

Aspects covered:
- every real state reads as documented: RUNNING with its executors Healthy, FAILING/FAILED with
  the operator's errorMessage Degraded, the rerun and suspend states Progressing/Suspended;
- a 12 KB spark-submit errorMessage (SUBMISSION_FAILED) shows its cause, not its log noise;
- RUNNING without any executor pod: Progressing (ExecutorsPending) while the submission is young
  or no time is given, Degraded (NoExecutors) after the grace; executors that exist but are not
  all running stay Progressing whatever the time.
"""

from __future__ import annotations

import copy
import datetime
import json
from pathlib import Path
from typing import Any

import pytest

from federator.core import delegates, health
from federator.core.delegates import sparkapplication
from federator.core.health import Health

DATA = Path(__file__).resolve().parent / "data" / "spark-operator-v2.5.2"
RUNNING_WITHOUT_EXECUTORS: dict[str, Any] = json.loads(
    (DATA / "running-without-executors.json").read_text()
)
STATUSES: list[dict[str, Any]] = [
    json.loads(line) for line in (DATA / "statuses.jsonl").read_text().splitlines() if line
]


def with_status(status: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(RUNNING_WITHOUT_EXECUTORS)
    body["status"] = copy.deepcopy(status)
    return body


def after_submission(body: dict[str, Any], seconds: float) -> str:
    start = datetime.datetime.fromisoformat(
        body["status"]["lastSubmissionAttemptTime"].replace("Z", "+00:00")
    )
    return (start + datetime.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def expected(status: dict[str, Any]) -> tuple[Health, str]:
    state = (status.get("applicationState") or {}).get("state") or ""
    running = list((status.get("executorState") or {}).values()).count("RUNNING")
    if state == "RUNNING":
        return (
            (Health.HEALTHY, "RUNNING")
            if running == 2
            else (Health.PROGRESSING, "ExecutorsPending")
        )
    if state in ("FAILING", "FAILED", "COMPLETED"):
        return Health.DEGRADED, state
    if state == "SUSPENDED":
        return Health.SUSPENDED, state
    if state == "":
        return Health.PROGRESSING, "AwaitingSubmission"
    return Health.PROGRESSING, state


@pytest.mark.parametrize(
    "record", STATUSES, ids=[f"{i}-{r['name'][-14:]}" for i, r in enumerate(STATUSES)]
)
def test_every_real_status_reads_as_documented(record: dict[str, Any]) -> None:
    verdict = delegates.assess("SparkApplication", with_status(record["status"]))
    assert (verdict.health, verdict.reason) == expected(record["status"]), verdict
    error = (record["status"].get("applicationState") or {}).get("errorMessage")
    if error:
        assert verdict.message == error  # the operator's own words


def test_the_real_transitions_cover_every_lifecycle_state() -> None:
    states = {(r["status"].get("applicationState") or {}).get("state") for r in STATUSES}
    assert states >= {
        "SUBMITTED", "RUNNING", "FAILING", "FAILED", "PENDING_RERUN", "SUCCEEDING",
        "COMPLETED", "INVALIDATING", "SUSPENDING", "SUSPENDED", "RESUMING",
    }  # fmt: skip


def test_running_without_executors_is_progressing_without_a_clock() -> None:
    verdict = delegates.assess("SparkApplication", RUNNING_WITHOUT_EXECUTORS)
    assert (verdict.health, verdict.reason) == (Health.PROGRESSING, "ExecutorsPending")
    assert verdict.message == "0/2 executors running; the Spark operator reports no executor pod"


@pytest.mark.parametrize(
    ("seconds", "expected_health", "reason"),
    [
        (0, Health.PROGRESSING, "ExecutorsPending"),
        (sparkapplication.SPARK_EXECUTOR_GRACE_SECONDS - 1, Health.PROGRESSING, "ExecutorsPending"),
        (sparkapplication.SPARK_EXECUTOR_GRACE_SECONDS, Health.DEGRADED, "NoExecutors"),
        (3600, Health.DEGRADED, "NoExecutors"),
    ],
    ids=["at-submission", "just-inside-grace", "grace-over", "an-hour-later"],
)
def test_running_without_executors_degrades_after_the_grace(
    seconds: float, expected_health: Health, reason: str
) -> None:
    body = RUNNING_WITHOUT_EXECUTORS
    verdict = delegates.assess("SparkApplication", body, now=after_submission(body, seconds))
    assert (verdict.health, verdict.reason) == (expected_health, reason)
    assert verdict.message.startswith("0/2 executors running; the Spark operator reports no")


def test_executors_that_exist_but_do_not_all_run_stay_progressing() -> None:
    pending = next(
        r["status"]
        for r in STATUSES
        if "PENDING" in (r["status"].get("executorState") or {}).values()
    )
    body = with_status(pending)
    verdict = delegates.assess("SparkApplication", body, now=after_submission(body, 3600))
    assert (verdict.health, verdict.reason) == (Health.PROGRESSING, "ExecutorsPending")
    assert verdict.message == "0/2 executors running"


@pytest.mark.parametrize("now", ["not a time", "2026-11-29T14:20:00"], ids=["garbage", "naive"])
def test_an_unreadable_time_judges_no_duration(now: str) -> None:
    verdict = delegates.assess("SparkApplication", RUNNING_WITHOUT_EXECUTORS, now=now)
    assert verdict.health is Health.PROGRESSING


def test_a_long_submission_failure_shows_its_cause_not_spark_submits_noise() -> None:
    """The real errorMessage of a driver pod refused by PodSecurity: 12 KB of spark-submit
    output whose cause comes after WARN lines a plain clip would keep instead."""
    error = (DATA / "submission-failed-podsecurity.errorMessage.txt").read_text()
    assert len(error) > health.MAX_CHILD_MESSAGE and error.find("violates PodSecurity") > 1024
    body = with_status(
        {
            **RUNNING_WITHOUT_EXECUTORS["status"],
            "applicationState": {"state": "SUBMISSION_FAILED", "errorMessage": error},
        }
    )
    verdict = delegates.assess("SparkApplication", body)
    assert (verdict.health, verdict.reason) == (Health.DEGRADED, "SUBMISSION_FAILED")
    assert verdict.message.startswith("failed to submit spark application")
    assert 'Exception in thread "main"' in verdict.message
    assert "violates PodSecurity" in verdict.message
    assert "WARN" not in verdict.message and "\tat " not in verdict.message
    assert len(verdict.message) <= health.MAX_CHILD_MESSAGE
